// Package lownodeload is a threshold rebalancer on real usage, the way
// Koordinator's LowNodeLoad and the descheduler's LowNodeUtilization work:
// the baseline a platform team would run instead of hots.
//
// Every loop, each host's utilisation per metric is the mean over the
// window of load / capacity. A host above High on some metric is
// abnormal; one below Low on every metric is a low host. A host abnormal
// for Debounce consecutive loops is relieved: its movable containers go,
// biggest first (window-mean usage as a fraction of the host's capacity,
// summed over metrics), each to the least-loaded low host that stays under
// High on every metric after receiving it, until the host is back under
// High or the loop's budget is spent. Loads are updated after every move,
// so two moves of one loop do not land on the same room.
package lownodeload

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"hots/placement/policy/internal/rebalance"
)

// Defaults: Koordinator's sample thresholds and a two-loop debounce, the
// settings the measurement used.
const (
	DefaultLow      = 0.45
	DefaultHigh     = 0.70
	DefaultDebounce = 2
)

// Args are the policy's parameters. Thresholds are fractions of capacity
// and apply to every metric.
type Args struct {
	Low      float64 `json:"low"`
	High     float64 `json:"high"`
	Debounce int     `json:"debounce"`
}

// SetDefaults fills zero fields.
func SetDefaults(a *Args) {
	if a.Low == 0 {
		a.Low = DefaultLow
	}
	if a.High == 0 {
		a.High = DefaultHigh
	}
	if a.Debounce == 0 {
		a.Debounce = DefaultDebounce
	}
}

// Validate checks a after SetDefaults.
func (a Args) Validate() error {
	switch {
	case !(a.Low > 0 && a.Low <= 1):
		return fmt.Errorf("lownodeload.low = %v: must be within (0, 1]", a.Low)
	case !(a.High > 0 && a.High <= 1):
		return fmt.Errorf("lownodeload.high = %v: must be within (0, 1]", a.High)
	case a.Low > a.High:
		return fmt.Errorf("lownodeload.low = %v: must not exceed lownodeload.high (%v)", a.Low, a.High)
	case a.Debounce < 1:
		return fmt.Errorf("lownodeload.debounce = %d: must be >= 1 loop", a.Debounce)
	}
	return nil
}

// Policy runs the rebalancer with fixed Args.
type Policy struct{ args Args }

// New returns a Policy after applying defaults and validating args.
func New(args Args) (*Policy, error) {
	SetDefaults(&args)
	if err := args.Validate(); err != nil {
		return nil, err
	}
	return &Policy{args: args}, nil
}

// Rebalance returns this loop's moves; p.Memory[h] is host h's count of
// consecutive abnormal loops.
func (pl *Policy) Rebalance(p *rebalance.Problem) []rebalance.Move {
	a := pl.args
	H := len(p.Hosts)
	util := make([][]float64, H) // window-mean utilisation per host and metric
	for h, host := range p.Hosts {
		util[h] = make([]float64, len(host.Capacity))
	}
	mean := make([][]float64, len(p.Containers))
	for i, c := range p.Containers {
		mean[i] = make([]float64, len(c.Usage))
		for m, s := range c.Usage {
			var sum float64
			for _, v := range s {
				sum += v
			}
			if len(s) > 0 {
				mean[i][m] = sum / float64(len(s))
			}
			if cp := p.Hosts[c.Host].Capacity[m]; cp > 0 {
				util[c.Host][m] += mean[i][m] / cp
			}
		}
	}
	above := func(h int) bool { return peak(util[h]) > a.High }
	var sources []int
	for h := range p.Hosts {
		if !p.Hosts[h].Known || !above(h) {
			p.Memory[h] = 0
			continue
		}
		p.Memory[h]++
		if p.Memory[h] >= a.Debounce {
			sources = append(sources, h)
		}
	}
	slices.SortStableFunc(sources, func(x, y int) int { return cmp.Compare(peak(util[y]), peak(util[x])) })

	members := make([][]int, H)
	for i, c := range p.Containers {
		members[c.Host] = append(members[c.Host], i)
	}
	var moves []rebalance.Move
	for _, src := range sources {
		size := func(i int) float64 {
			var s float64
			for m, v := range mean[i] {
				s += v / p.Hosts[src].Capacity[m]
			}
			return s
		}
		cands := slices.Clone(members[src])
		slices.SortStableFunc(cands, func(x, y int) int { return cmp.Compare(size(y), size(x)) })
		for _, i := range cands {
			if len(moves) >= p.Budget || !above(src) {
				break
			}
			if !p.Containers[i].Movable {
				continue
			}
			to, best := -1, math.Inf(1)
			for h, host := range p.Hosts {
				if h == src || !host.Known || peak(util[h]) >= a.Low {
					continue
				}
				fits := true
				for m, cp := range host.Capacity {
					if util[h][m]+mean[i][m]/cp >= a.High {
						fits = false
						break
					}
				}
				if load := sum(util[h]); fits && load < best {
					to, best = h, load
				}
			}
			if to < 0 {
				continue
			}
			for m := range mean[i] {
				util[src][m] -= mean[i][m] / p.Hosts[src].Capacity[m]
				util[to][m] += mean[i][m] / p.Hosts[to].Capacity[m]
			}
			moves = append(moves, rebalance.Move{Container: i, To: to})
		}
	}
	return moves
}

func sum(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s
}

// peak is the largest utilisation over metrics (0 for none).
func peak(x []float64) float64 {
	var p float64
	for _, v := range x {
		p = max(p, v)
	}
	return p
}
