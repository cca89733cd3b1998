package placement

// state is the open state of one domain. (Implementation in progress.)
type state struct {
	e       *Engine
	last    int64
	hasLast bool
	hostOf  map[string]string
}

func newState(e *Engine) *state { return &state{e: e, hostOf: map[string]string{}} }

// CloseTick feeds one closed tick. It returns a Decision when the tick ends
// the analysis period or is a loop tick, nil otherwise.
func (e *Engine) CloseTick(b TickBatch) (*Decision, error) {
	s := e.st
	if s.hasLast && b.Tick <= s.last {
		return nil, ErrLateTick
	}
	s.last, s.hasLast = b.Tick, true
	for _, smp := range b.Samples {
		s.hostOf[smp.Container] = smp.Host
	}
	return nil, nil
}

// LastTick returns the last closed tick.
func (e *Engine) LastTick() (int64, bool) { return e.st.last, e.st.hasLast }

// Placement returns container -> current host, including this engine's own
// moves.
func (e *Engine) Placement() map[string]string {
	m := make(map[string]string, len(e.st.hostOf))
	for k, v := range e.st.hostOf {
		m[k] = v
	}
	return m
}
