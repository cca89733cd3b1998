package placement

import (
	"container/heap"
	"slices"
)

// conflictGraph is an undirected graph over view positions, in CSR form.
type conflictGraph struct {
	n      int
	start  []int32 // adjacency of i is adj[start[i]:start[i+1]]
	adj    []int32
	degree []int32
	stats  GraphStats
}

func newConflictGraph(n int, edges [][2]int32) *conflictGraph {
	// Sorting and de-duplicating makes the graph independent of the order
	// edges were found in (map iteration), which upstream's is not.
	slices.SortFunc(edges, func(a, b [2]int32) int {
		if a[0] != b[0] {
			return int(a[0] - b[0])
		}
		return int(a[1] - b[1])
	})
	edges = slices.Compact(edges)
	g := &conflictGraph{n: n, start: make([]int32, n+1), degree: make([]int32, n)}
	for _, e := range edges {
		g.degree[e[0]]++
		g.degree[e[1]]++
	}
	for i := 0; i < n; i++ {
		g.start[i+1] = g.start[i] + g.degree[i]
	}
	g.adj = make([]int32, g.start[n])
	fill := slices.Clone(g.start[:n])
	for _, e := range edges {
		g.adj[fill[e[0]]] = e[1]
		fill[e[0]]++
		g.adj[fill[e[1]]] = e[0]
		fill[e[1]]++
	}
	nodes, maxd, sum := 0, 0, 0
	for _, d := range g.degree {
		if d > 0 {
			nodes++
			sum += int(d)
			maxd = max(maxd, int(d))
		}
	}
	g.stats = GraphStats{Nodes: nodes, Edges: len(edges), MaxDegree: maxd}
	if nodes > 0 {
		g.stats.MeanDeg = float64(sum) / float64(nodes)
	}
	return g
}

type degItem struct {
	pos, deg int32
}

// degHeap orders by degree descending, then view position (= container name
// order) ascending: the documented deterministic tie-break.
type degHeap []degItem

func (h degHeap) Len() int { return len(h) }
func (h degHeap) Less(i, j int) bool {
	if h[i].deg != h[j].deg {
		return h[i].deg > h[j].deg
	}
	return h[i].pos < h[j].pos
}
func (h degHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *degHeap) Push(x any)   { *h = append(*h, x.(degItem)) }
func (h *degHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// selectMovers picks up to budget containers from the graph as upstream
// does (spec 6.4): repeatedly take the node of highest remaining degree; a
// node with several conflicts moves itself; a node with a single conflict
// lets tie(c, partner) choose which of the two moves, and both leave the
// graph. eligible filters out containers that may not move (cool-down);
// they still count in degrees, as their conflicts are real.
func selectMovers(g *conflictGraph, budget int, tie func(c, p int) int, eligible func(i int) bool) []int {
	if budget <= 0 || g.stats.Edges == 0 {
		return nil
	}
	deg := slices.Clone(g.degree)
	removed := make([]bool, g.n)
	h := make(degHeap, 0, g.stats.Nodes)
	for i, d := range deg {
		if d > 0 {
			h = append(h, degItem{int32(i), d})
		}
	}
	heap.Init(&h)
	remove := func(i int32) {
		removed[i] = true
		for _, nb := range g.adj[g.start[i]:g.start[i+1]] {
			if removed[nb] {
				continue
			}
			deg[nb]--
			if deg[nb] > 0 {
				heap.Push(&h, degItem{nb, deg[nb]})
			}
		}
	}
	var out []int
	for h.Len() > 0 && len(out) < budget {
		it := heap.Pop(&h).(degItem)
		if removed[it.pos] || deg[it.pos] != it.deg || it.deg == 0 {
			continue // stale entry
		}
		c := it.pos
		if it.deg > 1 {
			if eligible(int(c)) {
				out = append(out, int(c))
			}
			remove(c)
			continue
		}
		var p int32 = -1
		for _, nb := range g.adj[g.start[c]:g.start[c+1]] {
			if !removed[nb] {
				p = nb
				break
			}
		}
		w := tie(int(c), int(p))
		if !eligible(w) {
			// The tie winner may not move; the other end may.
			if o := int(c) + int(p) - w; eligible(o) {
				w = o
			} else {
				w = -1
			}
		}
		if w >= 0 {
			out = append(out, w)
		}
		remove(c)
		remove(p)
	}
	return out
}
