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
	e, err := New(domain, p, hosts)
	if err != nil {
		return nil, err
	}
	ordered := slices.Clone(ticks)
	slices.SortStableFunc(ordered, func(a, b TickBatch) int { return cmp.Compare(a.Tick, b.Tick) })
	res := &ReplayResult{}
	reloc := map[string]string{}
	for _, tb := range ordered {
		eff := TickBatch{Domain: domain, Tick: tb.Tick, Samples: make([]Sample, len(tb.Samples))}
		for i, s := range tb.Samples {
			if h, ok := reloc[s.Container]; ok && h != s.Host {
				s.TraceHost = s.Host
				s.Host = h
			}
			eff.Samples[i] = s
		}
		res.Ticks = append(res.Ticks, eff)
		d, err := e.CloseTick(eff)
		if err != nil {
			return nil, err
		}
		if d == nil {
			continue
		}
		for _, m := range d.Moves {
			reloc[m.Container] = m.NewHost
		}
		res.Decisions = append(res.Decisions, *d)
		res.Moves = append(res.Moves, d.Moves...)
	}
	return res, nil
}
