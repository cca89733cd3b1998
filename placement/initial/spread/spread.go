// Package spread is upstream's `spread` initial placement (spec 4.2): round
// robin over every host in node order, so consecutive containers land on
// different hosts. It ignores profiles and is the baseline the profile-aware
// heuristics are measured against.
//
// Differences from upstream: containers go in ID order (upstream: order of
// first appearance in the data, which is the same for sorted traces); the
// fit test checks every metric at every tick, non-strict; and a container
// that fits on no host stays where it runs instead of opening a host index
// past the last one (spec 4.2's index error).
package spread

import (
	"hots/placement/initial/internal/pack"
)

// Placer runs spread with fixed Args.
type Placer struct {
	args Args
}

// New returns a Placer after applying defaults and validating args.
func New(args Args) (*Placer, error) {
	SetDefaults(&args)
	if err := args.Validate(); err != nil {
		return nil, err
	}
	return &Placer{args: args}, nil
}

// Place returns, per container of p, the index of its host.
func (pl *Placer) Place(p pack.Problem) ([]int, error) {
	book, _, _, err := pack.Prepare(p, pl.args.Headroom)
	if err != nil {
		return nil, err
	}
	hosts := len(p.Hosts)
	n := 0
	for _, i := range p.ByID() {
		placed := false
		for s := range hosts {
			h := (n + s) % hosts
			if book.Fits(h, i) {
				book.Assign(i, h)
				n = (h + 1) % hosts
				placed = true
				break
			}
		}
		if !placed {
			book.Keep(i)
		}
	}
	return book.Result(), nil
}
