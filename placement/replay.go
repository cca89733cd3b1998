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
	reloc map[string]string
	res   ReplayResult
}

// NewReplayer returns a replayer over a fresh engine.
func NewReplayer(domain string, p Params, hosts []Host) (*Replayer, error) {
	e, err := New(domain, p, hosts)
	if err != nil {
		return nil, err
	}
	return &Replayer{e: e, reloc: map[string]string{}}, nil
}

// Step feeds the next tick (ticks in increasing order) with the replay's
// own earlier moves applied, and returns the tick as the engine saw it and
// its decision (nil when the tick ran no evaluation).
func (r *Replayer) Step(tb TickBatch) (TickBatch, *Decision, error) {
	domain := r.e.domain
	eff := TickBatch{Domain: domain, Tick: tb.Tick, Samples: make([]Sample, len(tb.Samples))}
	for i, s := range tb.Samples {
		if h, ok := r.reloc[s.Container]; ok && h != s.Host {
			s.TraceHost = s.Host
			s.Host = h
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
			r.reloc[m.Container] = m.NewHost
		}
	}
	r.res.Decisions = append(r.res.Decisions, *d)
	r.res.Moves = append(r.res.Moves, d.Moves...)
	return eff, d, nil
}

// Result is everything replayed so far.
func (r *Replayer) Result() *ReplayResult { return &r.res }

// Engine is the replayer's engine (capacity updates between steps).
func (r *Replayer) Engine() *Engine { return r.e }
