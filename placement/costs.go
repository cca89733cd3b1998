package placement

import (
	"math"
	"sort"
)

// pairTable holds the marginal cost of every pair inside a group (a cluster
// for the clustering costs, a host for the placement costs). Spec 5.4: the
// must-link dual of a pair equals its objective coefficient, so these
// closed-form values are exactly what upstream's LPs report, and only pairs
// inside a group ever carry one. Storing them per group as a triangle keeps
// the work and memory proportional to Σ|group|², never n².
type pairTable struct {
	// gidx and pos are indexed by dense container id: the container's group
	// index (-1: in no group) and its position in that group.
	gidx   []int32
	pos    []int32
	groups []pairGroup
}

type pairGroup struct {
	key     int32   // cluster label or host index
	members []int32 // dense ids, ascending
	// vals is the triangle for positions (i<j) at j*(j-1)/2+i, or, for a
	// banded group (band > 0), n*band values at p*band+d-1.
	vals []float64
	band int32
}

// maxGroup bounds pairwise work: groups (clusters, hosts) up to this size
// compare every pair, as upstream; larger ones compare each member with
// maxGroup/2 neighbours on each side in a stable (id) order. That keeps a
// loop O(n·maxGroup) on domains of tens of thousands of containers, where
// all pairs of a 3-way clustering would be billions; the neighbourhoods are
// stable between loops, so a pair is compared with its own previous value.
const maxGroup = 512

func tri(i, j int32) int32 {
	if i > j {
		i, j = j, i
	}
	return j*(j-1)/2 + i
}

func (p *pairTable) groupOf(a int32) int32 {
	if p == nil || int(a) >= len(p.gidx) {
		return -1
	}
	return p.gidx[a]
}

// get returns the cost of pair (a, b), whether they share a group, and
// whether the pair is compared at all (false for a banded group's pairs
// outside the band: unknown, not zero).
func (p *pairTable) get(a, b int32) (v float64, grouped, compared bool) {
	ga, gb := p.groupOf(a), p.groupOf(b)
	if ga < 0 || ga != gb {
		return 0, false, true
	}
	g := &p.groups[ga]
	pa, pb := p.pos[a], p.pos[b]
	if g.band == 0 {
		return g.vals[tri(pa, pb)], true, true
	}
	n := int32(len(g.members))
	d := ((pb-pa)%n + n) % n
	switch h := g.band; {
	case d >= 1 && d <= h:
		return g.vals[pa*h+d-1], true, true
	case n-d >= 1 && n-d <= h:
		return g.vals[pb*h+n-d-1], true, true
	}
	return 0, true, false
}

// each calls f for every compared pair of group g.
func (p *pairTable) each(g int, f func(a, b int32, v float64)) {
	grp := &p.groups[g]
	ids, vals, h := grp.members, grp.vals, grp.band
	if h == 0 {
		for b := 1; b < len(ids); b++ {
			base := b * (b - 1) / 2
			for a := 0; a < b; a++ {
				f(ids[a], ids[b], vals[base+a])
			}
		}
		return
	}
	n := int32(len(ids))
	for a := int32(0); a < n; a++ {
		for d := int32(1); d <= h; d++ {
			f(ids[a], ids[(a+d)%n], vals[a*h+d-1])
		}
	}
}

// buildPairs fills a table for the given grouping of view positions.
// groupOf[i] is the group key of view position i; cost(i, j) is called once
// per compared pair inside a group, with view positions.
func buildPairs(v *windowView, nIDs int, groupOf []int32, cost func(i, j int) float64) *pairTable {
	p := &pairTable{gidx: make([]int32, nIDs), pos: make([]int32, nIDs)}
	for i := range p.gidx {
		p.gidx[i] = -1
	}
	byGroup := map[int32][]int{}
	var keys []int32
	for i, g := range groupOf {
		if _, ok := byGroup[g]; !ok {
			keys = append(keys, g)
		}
		byGroup[g] = append(byGroup[g], i)
	}
	sort.Slice(keys, func(a, b int) bool { return keys[a] < keys[b] })
	for gi, g := range keys {
		pos := byGroup[g]
		// Stable member order (dense id) keeps banded neighbourhoods the
		// same from one loop to the next.
		sort.Slice(pos, func(a, b int) bool { return v.ids[pos[a]] < v.ids[pos[b]] })
		grp := pairGroup{key: g, members: make([]int32, len(pos))}
		for k, i := range pos {
			id := v.ids[i]
			grp.members[k] = id
			p.gidx[id] = int32(gi)
			p.pos[id] = int32(k)
		}
		n := len(pos)
		if n > maxGroup {
			h := maxGroup / 2
			grp.vals = make([]float64, n*h)
			for a := 0; a < n; a++ {
				for d := 1; d <= h; d++ {
					grp.vals[a*h+d-1] = cost(pos[a], pos[(a+d)%n])
				}
			}
			grp.band = int32(h)
		} else {
			grp.vals = make([]float64, n*(n-1)/2)
			for b := 1; b < n; b++ {
				base := b * (b - 1) / 2
				for a := 0; a < b; a++ {
					grp.vals[base+a] = cost(pos[a], pos[b])
				}
			}
		}
		p.groups = append(p.groups, grp)
	}
	return p
}

// conflictEdges returns the pairs whose cost moved by more than tol between
// prev and cur, over the union of both tables' pairs (a missing pair counts
// as 0, as upstream's dual maps do). Pairs with a container that is no
// longer active are ignored: it left, there is nothing to decide for it.
// Edges are view positions (i < j).
func conflictEdges(v *windowView, cur, prev *pairTable, tol float64) [][2]int32 {
	var edges [][2]int32
	add := func(a, b int32) {
		i, j := v.posOf[a], v.posOf[b]
		if i > j {
			i, j = j, i
		}
		edges = append(edges, [2]int32{i, j})
	}
	for g := range cur.groups {
		cur.each(g, func(a, b int32, cv float64) {
			pv, _, compared := prev.get(a, b)
			if compared && math.Abs(cv-pv) > tol {
				add(a, b)
			}
		})
	}
	if prev == nil {
		return edges
	}
	// Pairs grouped before but not now.
	for g := range prev.groups {
		prev.each(g, func(a, b int32, pv float64) {
			if v.pos(a) < 0 || v.pos(b) < 0 {
				return
			}
			if _, grouped, _ := cur.get(a, b); grouped {
				return // compared above, or outside the band now
			}
			if math.Abs(pv) > tol {
				add(a, b)
			}
		})
	}
	return edges
}
