// Package ffd is first-fit decreasing over time series, with the host
// chosen by flatness (spec 4.3's documented intent, HEAD's unused
// allocation_ffd order).
//
// Containers go by decreasing peak demand, then decreasing total demand,
// both scaled by the reference capacity of each metric so CPU and memory
// weigh alike; ties by ID. Each container goes to the host where it fits
// (every metric, every tick, non-strict) and whose load becomes the
// flattest (capacity.FlatnessWith: capacity-scaled variance over time,
// summed over metrics); ties go to the lower resulting peak utilisation,
// then to node order.
//
// Consolidation rule: hosts already holding containers are tried first; an
// empty host is opened only when no used host can take the container, and
// then it is the empty host that scores best by the same key (with equal
// capacities, the first in node order). Without this rule flatness alone
// would prefer every empty host, since one container alone is flatter than
// any mix, and the heuristic would degenerate into spread.
package ffd

import (
	"math"

	"hots/placement/capacity"
	"hots/placement/initial/internal/pack"
)

// Placer runs ffd with fixed Args.
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
	book, metrics, _, err := pack.Prepare(p, pl.args.Headroom)
	if err != nil {
		return nil, err
	}
	for _, i := range p.ByPeakDesc(p.ByID(), p.RefCapacity(metrics)) {
		h := best(book, p, i, true)
		if h < 0 {
			h = best(book, p, i, false)
		}
		if h < 0 {
			book.Keep(i)
			continue
		}
		book.Assign(i, h)
	}
	return book.Result(), nil
}

// best returns the host among the used (or the empty) ones where container
// i fits with the flattest resulting load, -1 if none fits.
func best(book *pack.Book, p pack.Problem, i int, used bool) int {
	d := p.Containers[i].Demand
	bh := -1
	var bFlat, bPeak float64
	for h := range book.Hosts() {
		if book.Used(h) != used || !book.Fits(h, i) {
			continue
		}
		load, c := book.Load(h), book.Cap(h)
		flat := capacity.FlatnessWith(load, d, c)
		peak := capacity.PeakUtil(load, d, c)
		if bh < 0 || less(flat, bFlat) || (same(flat, bFlat) && less(peak, bPeak)) {
			bh, bFlat, bPeak = h, flat, peak
		}
	}
	return bh
}

// same treats scores that differ only by float summation noise as ties, so
// that node order, not rounding, decides between equivalent hosts.
func same(a, b float64) bool {
	return math.Abs(a-b) <= 1e-12*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func less(a, b float64) bool { return a < b && !same(a, b) }
