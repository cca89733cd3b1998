package placement

import (
	"cmp"
	"slices"
)

// ReplayResult is what a whole in-memory replay produced.
type ReplayResult struct {
	Decisions []Decision
	Moves     []Move
	// Ticks are the input ticks as the engine saw them: samples of a moved
	// container re-attributed to its new host from the tick after the move
	// (TraceHost keeps the trace's host).
	Ticks []TickBatch
}

// Replay runs one domain's engine over an in-memory trace, in tick order,
// applying its own moves to later samples exactly as the file connector
// does. It is the reference every transport must reproduce, and what the
// engine's own tests and benchmarks drive.
func Replay(domain string, p Params, hosts []Host, ticks []TickBatch) (*ReplayResult, error) {
	r, err := NewReplayer(domain, p, hosts)
	if err != nil {
		return nil, err
	}
	ordered := slices.Clone(ticks)
	slices.SortStableFunc(ordered, func(a, b TickBatch) int { return cmp.Compare(a.Tick, b.Tick) })
	for _, tb := range ordered {
		if _, _, err := r.Step(tb); err != nil {
			return nil, err
		}
	}
	return r.Result(), nil
}

// Replayer is Replay one tick at a time, for callers that measure each
// step (hots compare times the loops; the engine has no clock).
type Replayer struct {
	e     *Engine
	reloc map[string]Move // container -> its latest move
	res   ReplayResult
}

// NewReplayer returns a replayer over a fresh engine.
func NewReplayer(domain string, p Params, hosts []Host) (*Replayer, error) {
	e, err := New(domain, p, hosts)
	if err != nil {
		return nil, err
	}
	return &Replayer{e: e, reloc: map[string]Move{}}, nil
}

// Step feeds the next tick (ticks in increasing order) with the replay's
// own earlier moves applied, and returns the tick as the engine saw it and
// its decision (nil when the tick ran no evaluation).
func (r *Replayer) Step(tb TickBatch) (TickBatch, *Decision, error) {
	domain := r.e.domain
	eff := TickBatch{Domain: domain, Tick: tb.Tick, Samples: make([]Sample, len(tb.Samples))}
	for i, s := range tb.Samples {
		if m, ok := r.reloc[s.Container]; ok {
			Reattribute(&s, m.NewHost, m.Tick)
		}
		eff.Samples[i] = s
	}
	r.res.Ticks = append(r.res.Ticks, eff)
	d, err := r.e.CloseTick(eff)
	if err != nil || d == nil {
		return eff, nil, err
	}
	for _, m := range d.Moves {
		if !m.DryRun {
			r.reloc[m.Container] = m
		}
	}
	r.res.Decisions = append(r.res.Decisions, *d)
	r.res.Moves = append(r.res.Moves, d.Moves...)
	return eff, d, nil
}

// Result is everything replayed so far.
func (r *Replayer) Result() *ReplayResult { return &r.res }

// Reattribute applies a move to a later sample of its container, the one
// rule every mode follows: a move decided at tick `after` re-attributes
// samples of ticks > after to host, and the sample keeps the host its
// input recorded as TraceHost (the no-move baseline). It reports whether
// the sample changed. The pipeline's window calls it; so does Replay.
func Reattribute(s *Sample, host string, after int64) bool {
	if s.Tick <= after || host == s.Host {
		return false
	}
	if s.TraceHost == "" {
		s.TraceHost = s.Host
	}
	s.Host = host
	return true
}

// Engine is the replayer's engine (capacity updates between steps).
func (r *Replayer) Engine() *Engine { return r.e }
