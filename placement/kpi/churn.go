package kpi

import (
	"math"

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
// t+1). Memory is O(hosts + containers moved + moves within the horizon).
type ChurnAccumulator struct {
	c        Churn
	cap      map[string][]float64
	lastOver map[string]int64
	// last host each moved container left and went to
	from, to map[string]string
	pending  []pendingMove
}

type pendingMove struct {
	host     string
	deadline int64
}

// NewChurn returns an empty accumulator. window is the span (in ticks)
// a source host's calm is judged over, horizon how many ticks after a
// move its target is watched.
func NewChurn(capacity map[string][]float64, window, horizon int) *ChurnAccumulator {
	return &ChurnAccumulator{
		c:        Churn{Window: window, Horizon: horizon},
		cap:      capacity,
		lastOver: map[string]int64{},
		from:     map[string]string{},
		to:       map[string]string{},
	}
}

// SetCapacity declares or changes a host's capacity.
func (a *ChurnAccumulator) SetCapacity(host string, cap []float64) { a.cap[host] = cap }

func (a *ChurnAccumulator) overloaded(host string, load []float64) bool {
	cp := a.cap[host]
	for m, v := range load {
		if m < len(cp) && cp[m] > 0 && !math.IsInf(cp[m], 0) && capacity.CellOverloaded(v, cp[m]) {
			return true
		}
	}
	return false
}

// AddTick folds one closed tick's actual host loads (after moves).
func (a *ChurnAccumulator) AddTick(tick int64, load map[string][]float64) {
	for h, l := range load {
		if a.overloaded(h, l) {
			a.lastOver[h] = tick
		}
	}
	kept := a.pending[:0]
	for _, p := range a.pending {
		switch {
		case tick > p.deadline:
		case a.overloadedAt(p.host, tick):
			a.c.MovesIntoOverload++
		default:
			kept = append(kept, p)
		}
	}
	a.pending = kept
}

func (a *ChurnAccumulator) overloadedAt(host string, tick int64) bool {
	t, ok := a.lastOver[host]
	return ok && t == tick
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
	if t, ok := a.lastOver[from]; !ok || t <= tick-int64(a.c.Window) {
		a.c.MovesOffCalm++
	}
	a.pending = append(a.pending, pendingMove{host: to, deadline: tick + int64(a.c.Horizon)})
}

// Totals returns the figures so far.
func (a *ChurnAccumulator) Totals() Churn { return a.c }
