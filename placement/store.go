package placement

import (
	"math"
	"sort"
)

// closedTick is one closed tick as the engine keeps it: the containers seen,
// their host at that tick and their metric values, in columnar form so that
// a window of thousands of containers is a few flat slices.
type closedTick struct {
	tick int64
	cont []int32   // dense container ids, ascending
	host []int32   // host index per container at that tick
	vals []float64 // len(cont)*M, row-major per container
}

// find returns the row of container id c, or -1.
func (ct *closedTick) find(c int32) int {
	i := sort.Search(len(ct.cont), func(i int) bool { return ct.cont[i] >= c })
	if i < len(ct.cont) && ct.cont[i] == c {
		return i
	}
	return -1
}

// registry maps container names to dense ids. Ids are never reused, so that
// pair keys of a vanished container can never be confused with a newcomer's.
type registry struct {
	ids   map[string]int32
	names []string
}

func (r *registry) id(name string) int32 {
	if id, ok := r.ids[name]; ok {
		return id
	}
	id := int32(len(r.names))
	r.ids[name] = id
	r.names = append(r.names, name)
	return id
}

// windowView is the matrix view of the last ticks for the active
// containers: everything a loop evaluates.
type windowView struct {
	ticks []int64 // the span's ticks, oldest first
	// active containers ordered by name (the deterministic order of every
	// decision), their dense ids and current hosts.
	ids   []int32
	names []string
	hosts []int32
	// series[c] is [metric][tick] over the span, gaps filled (see fill).
	series [][][]float64
	// observed[c] counts ticks with a real sample.
	observed []int
	// posOf maps a dense container id to its view position (-1: not
	// active); a slice, not a map, because pair loops look it up per pair.
	posOf []int32
}

// pos returns the view position of dense id a, or -1.
func (v *windowView) pos(a int32) int32 {
	if int(a) >= len(v.posOf) {
		return -1
	}
	return v.posOf[a]
}

// buildView lays the retained ticks out for the containers present at the
// newest tick. A container's missing ticks are filled with its own mean
// over the ticks it was seen: zero-filling (upstream) would both bias
// distances and understate load, which is the unsafe side for capacity.
func buildView(e *Engine, span []closedTick, hostOf map[int32]int32) *windowView {
	M := len(e.p.Metrics)
	T := len(span)
	newest := span[T-1]
	v := &windowView{posOf: make([]int32, len(e.st.reg.names))}
	for i := range v.posOf {
		v.posOf[i] = -1
	}
	v.ticks = make([]int64, T)
	for t := range span {
		v.ticks[t] = span[t].tick
	}
	order := make([]int32, len(newest.cont))
	copy(order, newest.cont)
	names := e.st.reg.names
	sort.Slice(order, func(i, j int) bool { return names[order[i]] < names[order[j]] })
	n := len(order)
	v.ids = order
	v.names = make([]string, n)
	v.hosts = make([]int32, n)
	v.series = make([][][]float64, n)
	v.observed = make([]int, n)
	buf := make([]float64, n*M*T)
	for i, id := range order {
		v.names[i] = names[id]
		v.posOf[id] = int32(i)
		h, ok := hostOf[id]
		if !ok {
			h = newest.host[newest.find(id)]
		}
		v.hosts[i] = h
		s := make([][]float64, M)
		for m := range s {
			off := (i*M + m) * T
			s[m] = buf[off : off+T : off+T]
			for t := range s[m] {
				s[m][t] = math.NaN()
			}
		}
		v.series[i] = s
	}
	for t := range span {
		ct := &span[t]
		for r, id := range ct.cont {
			i := int(v.posOf[id])
			if i < 0 {
				continue
			}
			v.observed[i]++
			for m := 0; m < M; m++ {
				v.series[i][m][t] = ct.vals[r*M+m]
			}
		}
	}
	for i := range v.series {
		if v.observed[i] == T {
			continue
		}
		for m := range v.series[i] {
			s := v.series[i][m]
			var sum float64
			var k int
			for _, x := range s {
				if !math.IsNaN(x) {
					sum += x
					k++
				}
			}
			mean := 0.0
			if k > 0 {
				mean = sum / float64(k)
			}
			for t, x := range s {
				if math.IsNaN(x) {
					s[t] = mean
				}
			}
		}
	}
	return v
}
