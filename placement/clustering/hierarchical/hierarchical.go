// Package hierarchical is agglomerative clustering (Ward or average
// linkage) cut at k clusters.
//
// Upstream cut its tree at height K (criterion "distance"), so K never was
// a cluster count; here the tree is cut where exactly k clusters remain.
//
// The method keeps the full dissimilarity matrix, n(n-1)/2 float64 values:
// 1,000 rows take 4 MB, 5,000 rows (the default MaxRows) about 100 MB.
// Above MaxRows Cluster returns an error instead of exhausting memory; use
// kmeans for larger inputs. Time is O(n²) on typical data (1,000 × 24 in
// well under a second) and O(n³) at worst, when many clusters have one of
// the merged pair as nearest neighbour and must be rescanned.
package hierarchical

import (
	"fmt"
	"math"

	"hots/placement/clustering/internal/labels"
	"hots/placement/clustering/internal/rows"
)

// Args tune hierarchical clustering. Zero values mean "default".
type Args struct {
	// Linkage: "ward" (merge the pair that least increases the within-
	// cluster sum of squares) or "average" (mean pairwise distance, UPGMA).
	Linkage string `json:"linkage"`
	// MaxRows bounds the input size, since memory grows with its square.
	MaxRows int `json:"max_rows"`
}

// Defaults.
const (
	DefaultLinkage = "ward"
	DefaultMaxRows = 5000
)

// SetDefaults fills zero fields.
func SetDefaults(a *Args) {
	if a.Linkage == "" {
		a.Linkage = DefaultLinkage
	}
	if a.MaxRows == 0 {
		a.MaxRows = DefaultMaxRows
	}
}

// Validate reports the first field out of range.
func Validate(a Args) error {
	switch a.Linkage {
	case "ward", "average":
	default:
		return fmt.Errorf("hierarchical: linkage = %q: must be one of ward, average", a.Linkage)
	}
	if a.MaxRows < 1 {
		return fmt.Errorf("hierarchical: max_rows = %d: must be >= 1", a.MaxRows)
	}
	return nil
}

// Hierarchical clusters rows agglomeratively. It holds no state between
// calls and is safe for concurrent use.
type Hierarchical struct {
	args Args
}

// New returns hierarchical clustering with a's zero fields defaulted.
// Invalid Args are reported by Cluster.
func New(a Args) *Hierarchical {
	SetDefaults(&a)
	return &Hierarchical{args: a}
}

// Cluster merges the closest pair of clusters (lowest index pair on equal
// dissimilarity) until k clusters remain, and returns canonical labels.
// Identical rows always share a cluster, so fewer than k clusters come back
// when there are fewer than k distinct rows.
func (h *Hierarchical) Cluster(x [][]float64, k int) ([]int, error) {
	if err := Validate(h.args); err != nil {
		return nil, err
	}
	if k < 1 {
		return nil, fmt.Errorf("hierarchical: k = %d: must be >= 1", k)
	}
	flat, d, err := rows.Flatten(x)
	if err != nil {
		return nil, fmt.Errorf("hierarchical: %w", err)
	}
	n := len(x)
	if n == 0 {
		return []int{}, nil
	}
	if n > h.args.MaxRows {
		return nil, fmt.Errorf("hierarchical: %d rows exceed max_rows = %d: the dissimilarity matrix would need %d MiB; raise max_rows or use kmeans",
			n, h.args.MaxRows, n*(n-1)/2*8>>20)
	}
	t := newTree(flat, n, d, h.args.Linkage == "ward")
	// Identical rows are merged before anything else, whatever k says: they
	// are the same profile, and splitting them would be arbitrary.
	clusters := n
	for i, f := range rows.FirstEqual(flat, n, d) {
		if f != i {
			t.merge(t.root(f), i)
			clusters--
		}
	}
	t.agglomerate(clusters, k)
	out := make([]int, n)
	for i := range out {
		out[i] = t.root(i)
	}
	labels.Canonical(out)
	return out, nil
}

// tree is the generic agglomerative algorithm (Müllner 2011, "generic
// clustering") with a nearest-neighbour cache per active cluster: each
// step takes the globally closest pair, so the lowest-index tie rule holds
// exactly and the cut at k is simply stopping after n-k merges. Cluster i
// keeps its lower index when it absorbs j.
type tree struct {
	n      int
	ward   bool
	dis    []float64 // condensed upper triangle, see at
	size   []int
	active []bool
	parent []int
	nn     []int // nearest active cluster, lowest index on ties
	nnd    []float64
}

func newTree(x []float64, n, d int, ward bool) *tree {
	t := &tree{
		n: n, ward: ward,
		dis:    make([]float64, n*(n-1)/2),
		size:   make([]int, n),
		active: make([]bool, n),
		parent: make([]int, n),
		nn:     make([]int, n),
		nnd:    make([]float64, n),
	}
	p := 0
	for i := 0; i < n; i++ {
		xi := x[i*d : (i+1)*d]
		for j := i + 1; j < n; j++ {
			xj := x[j*d : (j+1)*d]
			s := 0.0
			for c, v := range xi {
				u := v - xj[c]
				s += u * u
			}
			// Ward's Lance–Williams update is exact on squared distances;
			// average linkage averages plain distances.
			if !ward {
				s = math.Sqrt(s)
			}
			t.dis[p] = s
			p++
		}
		t.size[i], t.active[i], t.parent[i] = 1, true, i
	}
	for i := 0; i < n; i++ {
		t.findNN(i)
	}
	return t
}

// at indexes the condensed matrix; i != j.
func (t *tree) at(i, j int) *float64 {
	if i > j {
		i, j = j, i
	}
	return &t.dis[i*t.n-i*(i+1)/2+j-i-1]
}

func (t *tree) findNN(i int) {
	t.nn[i], t.nnd[i] = -1, math.Inf(1)
	for m := 0; m < t.n; m++ {
		if m == i || !t.active[m] {
			continue
		}
		if v := *t.at(i, m); v < t.nnd[i] {
			t.nn[i], t.nnd[i] = m, v
		}
	}
}

func (t *tree) agglomerate(clusters, k int) {
	for clusters > k {
		// The first row holding the minimum is the lower index of the lowest
		// closest pair, and its cached neighbour the higher one.
		a := -1
		for i := 0; i < t.n; i++ {
			if t.active[i] && (a < 0 || t.nnd[i] < t.nnd[a]) {
				a = i
			}
		}
		t.merge(a, t.nn[a])
		clusters--
	}
}

// merge folds cluster j into cluster i (i < j) and updates dissimilarities
// by the Lance–Williams formula.
func (t *tree) merge(i, j int) {
	ni, nj := float64(t.size[i]), float64(t.size[j])
	dij := *t.at(i, j)
	t.active[j] = false
	t.parent[j] = i
	for m := 0; m < t.n; m++ {
		if !t.active[m] || m == i {
			continue
		}
		dmi, dmj := t.at(m, i), t.at(m, j)
		if t.ward {
			nm := float64(t.size[m])
			*dmi = ((nm+ni)**dmi + (nm+nj)**dmj - nm*dij) / (nm + ni + nj)
		} else {
			*dmi = (ni**dmi + nj**dmj) / (ni + nj)
		}
	}
	t.size[i] += t.size[j]
	for m := 0; m < t.n; m++ {
		if !t.active[m] || m == i {
			continue
		}
		if t.nn[m] == i || t.nn[m] == j {
			t.findNN(m)
			continue
		}
		if v := *t.at(m, i); v < t.nnd[m] || (v == t.nnd[m] && i < t.nn[m]) {
			t.nn[m], t.nnd[m] = i, v
		}
	}
	t.findNN(i)
}

func (t *tree) root(i int) int {
	for t.parent[i] != i {
		i = t.parent[i]
	}
	return i
}
