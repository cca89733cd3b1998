package pack

import (
	"fmt"

	"hots/placement/capacity"
)

// Book keeps every host's load as containers are placed, and the answer
// being built. Loads start at zero: like upstream, a heuristic rebuilds the
// placement from scratch rather than starting from the observed one.
type Book struct {
	p        Problem
	headroom float64
	load     []capacity.Series
	used     []bool
	dest     []int
	decided  []bool
}

// Prepare checks a problem's shape and opens its load book: the first
// step of every heuristic.
func Prepare(p Problem, headroom float64) (book *Book, metrics, ticks int, err error) {
	if metrics, ticks, err = p.Shape(); err != nil {
		return nil, 0, 0, err
	}
	book, err = NewBook(p, metrics, ticks, headroom)
	return book, metrics, ticks, err
}

// NewBook prepares an empty placement for p. headroom is the fraction of
// each capacity a host may be filled to, in (0, 1].
func NewBook(p Problem, metrics, ticks int, headroom float64) (*Book, error) {
	if !(headroom > 0 && headroom <= 1) {
		return nil, fmt.Errorf("headroom = %v: must be within (0, 1]", headroom)
	}
	b := &Book{
		p:        p,
		headroom: headroom,
		load:     make([]capacity.Series, len(p.Hosts)),
		used:     make([]bool, len(p.Hosts)),
		dest:     make([]int, len(p.Containers)),
		decided:  make([]bool, len(p.Containers)),
	}
	for h := range b.load {
		b.load[h] = capacity.NewSeries(metrics, ticks)
	}
	return b, nil
}

// Hosts is the number of hosts.
func (b *Book) Hosts() int { return len(b.load) }

// Used reports whether a container has been placed on host h.
func (b *Book) Used(h int) bool { return b.used[h] }

// Load is host h's current load. Callers must not modify it.
func (b *Book) Load(h int) capacity.Series { return b.load[h] }

// Cap is host h's capacity vector.
func (b *Book) Cap(h int) []float64 { return b.p.Hosts[h].Capacity }

// Fits reports whether container i fits on host h on every metric at every
// tick (load + demand <= capacity × headroom).
func (b *Book) Fits(h, i int) bool {
	return capacity.FitsScaled(b.load[h], b.p.Containers[i].Demand, b.p.Hosts[h].Capacity, b.headroom)
}

// FitsPair reports whether containers i and j fit on host h together.
func (b *Book) FitsPair(h, i, j int) bool {
	if !b.Fits(h, i) {
		return false
	}
	b.load[h].Add(b.p.Containers[i].Demand)
	ok := b.Fits(h, j)
	b.load[h].Sub(b.p.Containers[i].Demand)
	return ok
}

// Assign places container i on host h.
func (b *Book) Assign(i, h int) {
	b.load[h].Add(b.p.Containers[i].Demand)
	b.used[h] = true
	b.dest[i] = h
	b.decided[i] = true
}

// Keep records that container i fits nowhere: it stays on its current host.
// Its demand is charged to that host, because it keeps running there and the
// containers placed after it must leave it room.
func (b *Book) Keep(i int) {
	h := b.p.Containers[i].Host
	b.dest[i] = h
	b.decided[i] = true
	if h >= 0 {
		b.load[h].Add(b.p.Containers[i].Demand)
		b.used[h] = true
	}
}

// FirstFit places container i on the first host, in node order, where it
// fits, and keeps it where it is when none does. It returns the chosen host,
// or -1 when the container was kept.
func (b *Book) FirstFit(i int) int {
	for h := range b.load {
		if b.Fits(h, i) {
			b.Assign(i, h)
			return h
		}
	}
	b.Keep(i)
	return -1
}

// Result returns the destination of every container, in problem order.
// Containers no pass decided keep their current host.
func (b *Book) Result() []int {
	out := make([]int, len(b.dest))
	for i := range out {
		if b.decided[i] {
			out[i] = b.dest[i]
		} else {
			out[i] = b.p.Containers[i].Host
		}
	}
	return out
}

// DefaultHeadroom lets hosts fill up to their full capacity, like
// placement.DefaultHeadroom.
const DefaultHeadroom = 1.0

// CheckHeadroom is every heuristic's headroom rule, with the heuristic's
// name in the message.
func CheckHeadroom(heuristic string, headroom float64) error {
	if !(headroom > 0 && headroom <= 1) {
		return fmt.Errorf("%s: headroom = %v: must be within (0, 1]", heuristic, headroom)
	}
	return nil
}
