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
	group map[int32]int32 // dense container id -> group key
	pos   map[int32]int32 // dense container id -> position in its group
	// members[g] lists the group's dense ids; vals[g] is the triangle for
	// positions (i<j) at j*(j-1)/2+i.
	members map[int32][]int32
	vals    map[int32][]float64
	// band[g] > 0 marks a group too large for all its pairs (see maxGroup):
	// each member is then paired with the next band[g] members of the group
	// in id order (a ring), and vals[g] holds n*band values at p*band+d-1.
	band map[int32]int32
}

// maxGroup bounds pairwise work: groups (clusters, hosts) up to this size
// compare every pair, as upstream; larger ones compare each member with
// maxGroup/2 neighbours on each side in a stable (id) order. That keeps a
// loop O(n·maxGroup) on domains of tens of thousands of containers, where
// all pairs of a 3-way clustering would be billions; the neighbourhoods are
// stable between loops, so a pair is compared with its own previous value.
const maxGroup = 1024

func newPairTable() *pairTable {
	return &pairTable{group: map[int32]int32{}, pos: map[int32]int32{}, members: map[int32][]int32{}, vals: map[int32][]float64{}, band: map[int32]int32{}}
}

func tri(i, j int32) int32 {
	if i > j {
		i, j = j, i
	}
	return j*(j-1)/2 + i
}

// get returns the cost of pair (a, b), whether they share a group, and
// whether the pair is compared at all (false for a banded group's pairs
// outside the band: unknown, not zero).
func (p *pairTable) get(a, b int32) (v float64, grouped, compared bool) {
	if p == nil {
		return 0, false, true
	}
	ga, ok := p.group[a]
	if !ok {
		return 0, false, true
	}
	gb, ok := p.group[b]
	if !ok || ga != gb {
		return 0, false, true
	}
	pa, pb := p.pos[a], p.pos[b]
	h := p.band[ga]
	if h == 0 {
		return p.vals[ga][tri(pa, pb)], true, true
	}
	n := int32(len(p.members[ga]))
	d := ((pb-pa)%n + n) % n
	switch {
	case d >= 1 && d <= h:
		return p.vals[ga][pa*h+d-1], true, true
	case n-d >= 1 && n-d <= h:
		return p.vals[ga][pb*h+n-d-1], true, true
	}
	return 0, true, false
}

// each calls f for every compared pair of group g (member positions).
func (p *pairTable) each(g int32, f func(a, b int32, v float64)) {
	ids, vals, h := p.members[g], p.vals[g], p.band[g]
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
// per unordered pair inside a group, positions in view order.
func buildPairs(v *windowView, groupOf []int32, cost func(i, j int) float64) *pairTable {
	p := newPairTable()
	byGroup := map[int32][]int{}
	var keys []int32
	for i, g := range groupOf {
		if _, ok := byGroup[g]; !ok {
			keys = append(keys, g)
		}
		byGroup[g] = append(byGroup[g], i)
	}
	for _, g := range keys {
		pos := byGroup[g]
		// Stable member order (dense id) keeps banded neighbourhoods the
		// same from one loop to the next.
		sort.Slice(pos, func(a, b int) bool { return v.ids[pos[a]] < v.ids[pos[b]] })
		ids := make([]int32, len(pos))
		for k, i := range pos {
			ids[k] = v.ids[i]
			p.group[v.ids[i]] = g
			p.pos[v.ids[i]] = int32(k)
		}
		n := len(pos)
		p.members[g] = ids
		if n > maxGroup {
			h := maxGroup / 2
			vals := make([]float64, n*h)
			for a := 0; a < n; a++ {
				for d := 1; d <= h; d++ {
					vals[a*h+d-1] = cost(pos[a], pos[(a+d)%n])
				}
			}
			p.band[g] = int32(h)
			p.vals[g] = vals
			continue
		}
		vals := make([]float64, n*(n-1)/2)
		for b := 1; b < n; b++ {
			base := b * (b - 1) / 2
			for a := 0; a < b; a++ {
				vals[base+a] = cost(pos[a], pos[b])
			}
		}
		p.vals[g] = vals
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
		i, j := int32(v.index[a]), int32(v.index[b])
		if i > j {
			i, j = j, i
		}
		edges = append(edges, [2]int32{i, j})
	}
	for g := range cur.members {
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
	for g := range prev.members {
		prev.each(g, func(a, b int32, pv float64) {
			if _, ok := v.index[a]; !ok {
				return
			}
			if _, ok := v.index[b]; !ok {
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
