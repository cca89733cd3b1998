package placement

import (
	"reflect"
	"testing"
)

func TestConflictGraphStats(t *testing.T) {
	tests := []struct {
		name  string
		n     int
		edges [][2]int32
		want  GraphStats
	}{
		{"empty", 4, nil, GraphStats{}},
		{"star", 5, [][2]int32{{0, 1}, {0, 2}, {0, 3}}, GraphStats{Nodes: 4, Edges: 3, MaxDegree: 3, MeanDeg: 1.5}},
		{"duplicates collapse", 3, [][2]int32{{0, 1}, {0, 1}, {1, 2}}, GraphStats{Nodes: 3, Edges: 2, MaxDegree: 2, MeanDeg: 4.0 / 3}},
		{"triangle", 3, [][2]int32{{1, 2}, {0, 1}, {0, 2}}, GraphStats{Nodes: 3, Edges: 3, MaxDegree: 2, MeanDeg: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := newConflictGraph(tc.n, tc.edges).stats; got != tc.want {
				t.Errorf("stats %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSelectMovers(t *testing.T) {
	first := func(c, p int) int { return c }
	second := func(c, p int) int { return p }
	all := func(int) bool { return true }
	tests := []struct {
		name     string
		n        int
		edges    [][2]int32
		budget   int
		tie      func(c, p int) int
		eligible func(int) bool
		want     []int
	}{
		// Hub 0 (degree 3) moves first; its leaves become isolated.
		{"star: hub moves", 4, [][2]int32{{0, 1}, {0, 2}, {0, 3}}, 5, first, all, []int{0}},
		// Two disjoint edges: each degree-1 pair yields one mover chosen by
		// the tie rule; equal degrees go in container order.
		{"pairs use tie rule", 4, [][2]int32{{0, 1}, {2, 3}}, 5, second, all, []int{1, 3}},
		{"pairs use tie rule (first)", 4, [][2]int32{{0, 1}, {2, 3}}, 5, first, all, []int{0, 2}},
		// Budget stops selection.
		{"budget", 4, [][2]int32{{0, 1}, {2, 3}}, 1, first, all, []int{0}},
		// Path 0-1-2-3: 1 and 2 have degree 2, 1 wins the tie by order;
		// then 2-3 remains an edge, 2 has degree 1 and the tie picks 2.
		{"path", 4, [][2]int32{{0, 1}, {1, 2}, {2, 3}}, 5, first, all, []int{1, 2}},
		// Triangle: 0 moves (degree 2, first), then 1-2 is a pair.
		{"triangle", 3, [][2]int32{{0, 1}, {1, 2}, {0, 2}}, 5, second, all, []int{0, 2}},
		// Cool-down: the hub may not move, its conflicts still count.
		{"ineligible hub", 4, [][2]int32{{0, 1}, {0, 2}, {0, 3}}, 5, first, func(i int) bool { return i != 0 }, nil},
		// Ineligible tie winner: the other end of the pair moves.
		{"ineligible tie winner", 2, [][2]int32{{0, 1}}, 5, first, func(i int) bool { return i != 0 }, []int{1}},
		{"zero budget", 2, [][2]int32{{0, 1}}, 0, first, all, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newConflictGraph(tc.n, tc.edges)
			got := selectMovers(g, tc.budget, tc.tie, tc.eligible)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("movers %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConflictEdgesUnionOfPairs(t *testing.T) {
	// Four active containers; groups are given directly.
	v := &windowView{ids: []int32{0, 1, 2, 3}, names: []string{"a", "b", "c", "d"}, posOf: []int32{0, 1, 2, 3}}
	table := func(groups []int32, vals map[[2]int]float64) *pairTable {
		return buildPairs(v, 4, groups, func(i, j int) float64 { return vals[[2]int{i, j}] })
	}
	prev := table([]int32{0, 0, 1, 1}, map[[2]int]float64{{0, 1}: 1.0, {2, 3}: 0.5})
	tests := []struct {
		name string
		cur  *pairTable
		want [][2]int32
	}{
		{"unchanged", table([]int32{0, 0, 1, 1}, map[[2]int]float64{{0, 1}: 1.0, {2, 3}: 0.5}), nil},
		{"small drift below tol", table([]int32{0, 0, 1, 1}, map[[2]int]float64{{0, 1}: 1.05, {2, 3}: 0.45}), nil},
		{"drift above tol", table([]int32{0, 0, 1, 1}, map[[2]int]float64{{0, 1}: 1.2, {2, 3}: 0.5}), [][2]int32{{0, 1}}},
		// b joins c and d: pair (a,b) vanished (|0-1| > tol), (b,c) and
		// (b,d) appeared with values 0.05 and 0.3 (only the latter counts).
		{"regrouped", table([]int32{0, 1, 1, 1}, map[[2]int]float64{{1, 2}: 0.05, {1, 3}: 0.3, {2, 3}: 0.5}), [][2]int32{{0, 1}, {1, 3}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := newConflictGraph(4, conflictEdges(v, tc.cur, prev, 0.1))
			var edges [][2]int32
			for i := 0; i < 4; i++ {
				for _, j := range got.adj[got.start[i]:got.start[i+1]] {
					if int32(i) < j {
						edges = append(edges, [2]int32{int32(i), j})
					}
				}
			}
			if !reflect.DeepEqual(edges, tc.want) {
				t.Errorf("edges %v, want %v", edges, tc.want)
			}
		})
	}
}

func TestBandedGroupsComparePairsStably(t *testing.T) {
	n := maxGroup + 11
	v := &windowView{}
	for i := 0; i < n; i++ {
		v.ids = append(v.ids, int32(i))
		v.posOf = append(v.posOf, int32(i))
	}
	groups := make([]int32, n)
	calls := 0
	p := buildPairs(v, n, groups, func(i, j int) float64 { calls++; return float64(i*100000 + j) })
	if want := n * (maxGroup / 2); calls != want {
		t.Fatalf("banded group computed %d pairs, want n*maxGroup/2 = %d", calls, want)
	}
	// A pair inside the band is found with its own value in either order;
	// one outside is grouped but not compared.
	if val, grouped, compared := p.get(5, 7); !grouped || !compared || val != 5*100000+7 {
		t.Errorf("get(5,7) = %v %v %v", val, grouped, compared)
	}
	if val, _, compared := p.get(int32(n-1), 3); !compared || val != float64((n-1)*100000+3) {
		t.Errorf("wrap-around pair get(n-1,3) = %v %v", val, compared)
	}
	if _, grouped, compared := p.get(0, int32(n/2)); !grouped || compared {
		t.Errorf("pair outside the band: grouped %v compared %v, want true false", grouped, compared)
	}
	// Same table twice: no conflicts (out-of-band pairs are not "missing").
	if e := conflictEdges(v, p, p, 0.1); len(e) != 0 {
		t.Errorf("%d conflict edges between identical banded tables", len(e))
	}
}
