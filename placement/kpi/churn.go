package kpi

import (
	"math"
	"slices"

	"hots/placement/capacity"
)

// Churn is what a run's moves cost and what they were aimed at: the
// figures an operator reads to decide whether the moves were worth it.
type Churn struct {
	Moves           int `json:"moves"`
	ContainersMoved int `json:"containers_moved"`
	// ReMoves counts moves of a container that had already been moved in
	// the run; MovesBack those that return it to the host its previous
	// move took it from (ping-pong).
	ReMoves   int `json:"re_moves"`
	MovesBack int `json:"moves_back"`
	// MovesOffCalm counts moves off a host that had no overloaded cell in
	// the Window ticks up to the move: moves that relieve nothing
	// measurable.
	MovesOffCalm int `json:"moves_off_calm_hosts"`
	// MovesIntoOverload counts moves onto a host that is overloaded at
	// some tick of the Horizon ticks after the move.
	MovesIntoOverload int `json:"moves_into_overload"`
	Window            int `json:"window"`
	Horizon           int `json:"horizon"`
}

// ChurnAccumulator folds ticks and moves into Churn. Feed a tick's loads
// before the moves decided at that tick (a move at tick t applies from
// t+1). It keeps the moves and each host's overloaded ticks, so the window
// and horizon can be chosen when the totals are read (a run directory
// learns them from the decisions). Memory is O(moves + overloaded cells).
type ChurnAccumulator struct {
	c        Churn
	cap      map[string][]float64
	overAt   map[string][]int64 // host → overloaded ticks, ascending
	from, to map[string]string  // last host each moved container left and went to
	moves    []churnMove
}

type churnMove struct {
	tick     int64
	from, to string
}

// NewChurn returns an empty accumulator for the given host capacities.
func NewChurn(capacity map[string][]float64) *ChurnAccumulator {
	a := &ChurnAccumulator{cap: map[string][]float64{}, overAt: map[string][]int64{}, from: map[string]string{}, to: map[string]string{}}
	for h, c := range capacity {
		a.cap[h] = c
	}
	return a
}

// SetCapacity declares or changes a host's capacity.
func (a *ChurnAccumulator) SetCapacity(host string, cap []float64) { a.cap[host] = cap }

// AddTick folds one closed tick's actual host loads (after moves).
func (a *ChurnAccumulator) AddTick(tick int64, load map[string][]float64) {
	for h, l := range load {
		cp := a.cap[h]
		for m, v := range l {
			if m < len(cp) && cp[m] > 0 && !math.IsInf(cp[m], 0) && capacity.CellOverloaded(v, cp[m]) {
				if ts := a.overAt[h]; len(ts) == 0 || ts[len(ts)-1] < tick {
					a.overAt[h] = append(ts, tick)
				}
				break
			}
		}
	}
}

// AddMove folds one move decided at tick.
func (a *ChurnAccumulator) AddMove(tick int64, container, from, to string) {
	a.c.Moves++
	if prevTo, moved := a.to[container]; moved {
		a.c.ReMoves++
		if prevTo == from && a.from[container] == to {
			a.c.MovesBack++
		}
	} else {
		a.c.ContainersMoved++
	}
	a.from[container], a.to[container] = from, to
	a.moves = append(a.moves, churnMove{tick, from, to})
}

// overloadedIn reports whether host had an overloaded tick in [lo, hi].
func (a *ChurnAccumulator) overloadedIn(host string, lo, hi int64) bool {
	ts := a.overAt[host]
	i, _ := slices.BinarySearch(ts, lo)
	return i < len(ts) && ts[i] <= hi
}

// Totals returns the figures so far, judging a source's calm over the
// window ticks up to each move and a target over the horizon ticks after.
// A move whose horizon has not fully passed counts with the ticks seen.
func (a *ChurnAccumulator) Totals(window, horizon int) Churn {
	c := a.c
	c.Window, c.Horizon = window, horizon
	for _, m := range a.moves {
		if !a.overloadedIn(m.from, m.tick-int64(window)+1, m.tick) {
			c.MovesOffCalm++
		}
		if a.overloadedIn(m.to, m.tick+1, m.tick+int64(horizon)) {
			c.MovesIntoOverload++
		}
	}
	return c
}
