// Package kmeans is Lloyd's k-means with k-means++ seeding, several seeded
// restarts and fixed tie rules, so that the same rows and seed always give
// the same labels.
package kmeans

import (
	"fmt"
	"math"
	"math/rand/v2"

	"hots/placement/clustering/internal/labels"
	"hots/placement/clustering/internal/rows"
)

// Args tune k-means. Zero values mean "default".
type Args struct {
	// Seed of the random source. Restart r draws from PCG(Seed, r), so a
	// restart's result does not depend on how many restarts ran before it.
	Seed int64 `json:"seed"`
	// Restarts is how many seeded runs are made; the lowest inertia wins
	// and, on equal inertia, the earlier restart.
	Restarts int `json:"restarts"`
	// MaxIter bounds the Lloyd iterations of one run; a run stops earlier
	// as soon as no label changes.
	MaxIter int `json:"max_iter"`
}

// Defaults.
const (
	DefaultRestarts = 10
	DefaultMaxIter  = 100
)

// SetDefaults fills zero fields.
func SetDefaults(a *Args) {
	if a.Restarts == 0 {
		a.Restarts = DefaultRestarts
	}
	if a.MaxIter == 0 {
		a.MaxIter = DefaultMaxIter
	}
}

// Validate reports the first field out of range.
func Validate(a Args) error {
	if a.Restarts < 1 {
		return fmt.Errorf("kmeans: restarts = %d: must be >= 1", a.Restarts)
	}
	if a.MaxIter < 1 {
		return fmt.Errorf("kmeans: max_iter = %d: must be >= 1", a.MaxIter)
	}
	return nil
}

// KMeans clusters rows by k-means. It holds no state between calls and is
// safe for concurrent use.
type KMeans struct {
	args Args
}

// New returns k-means with a's zero fields defaulted. Invalid Args are
// reported by Cluster.
func New(a Args) *KMeans {
	SetDefaults(&a)
	return &KMeans{args: a}
}

// Cluster partitions the rows of x into at most k clusters and returns
// canonical labels (in order of first appearance over the rows). With fewer
// than k distinct rows it returns one cluster per distinct row: identical
// rows always share a cluster.
func (m *KMeans) Cluster(x [][]float64, k int) ([]int, error) {
	if err := Validate(m.args); err != nil {
		return nil, err
	}
	if k < 1 {
		return nil, fmt.Errorf("kmeans: k = %d: must be >= 1", k)
	}
	flat, d, err := rows.Flatten(x)
	if err != nil {
		return nil, fmt.Errorf("kmeans: %w", err)
	}
	n := len(x)
	if n == 0 {
		return []int{}, nil
	}
	first := rows.FirstEqual(flat, n, d)
	if distinct := rows.Distinct(first); k >= distinct {
		// Every distinct row its own cluster: inertia 0, nothing to search.
		labels.Canonical(first)
		return first, nil
	}
	var best []int
	bestInertia := math.Inf(1)
	r := newRun(flat, n, d, k)
	for restart := 0; restart < m.args.Restarts; restart++ {
		rng := rand.New(rand.NewPCG(uint64(m.args.Seed), uint64(restart)))
		inertia := r.solve(rng, m.args.MaxIter)
		// Strictly lower only: on equal inertia the earlier restart stays.
		if inertia < bestInertia {
			bestInertia = inertia
			best = append(best[:0], r.labels...)
		}
	}
	labels.Canonical(best)
	return best, nil
}

// run holds the buffers of one k-means run, reused across restarts.
//
// Assignment follows Hamerly (2010): each row keeps an upper bound on the
// distance to its own centre and a lower bound on the distance to any other
// centre, and is only rescanned when the bounds cannot prove its centre is
// still strictly the nearest. The skip test is strict and has a relative
// margin far above rounding error, so every row whose label could change,
// or tie, is scanned in full with the plain rule (nearest, lower index on
// ties): the labels are exactly those of plain Lloyd iterations.
type run struct {
	x       []float64
	n, d, k int
	centres []float64 // k*d
	old     []float64 // centres before the last update
	labels  []int
	counts  []int
	upper   []float64 // ≥ distance of each row to its centre
	lower   []float64 // ≤ distance of each row to any other centre
	half    []float64 // half the distance of each centre to the nearest other
	moved   []float64 // distance each centre moved in the last update
}

// margin keeps the bound test away from rounding error: bounds drift by a
// few ulps per iteration, far below one part in 10⁹.
const margin = 1 - 1e-9

func newRun(x []float64, n, d, k int) *run {
	return &run{
		x: x, n: n, d: d, k: k,
		centres: make([]float64, k*d),
		old:     make([]float64, k*d),
		labels:  make([]int, n),
		counts:  make([]int, k),
		upper:   make([]float64, n),
		lower:   make([]float64, n),
		half:    make([]float64, k),
		moved:   make([]float64, k),
	}
}

func (r *run) row(i int) []float64    { return r.x[i*r.d : (i+1)*r.d] }
func (r *run) centre(c int) []float64 { return r.centres[c*r.d : (c+1)*r.d] }

func sqDist(a, b []float64) float64 {
	b = b[:len(a)]
	s := 0.0
	for j, v := range a {
		t := v - b[j]
		s += t * t
	}
	return s
}

// solve runs k-means++ seeding then Lloyd iterations and returns the
// inertia of the final labels around their means.
func (r *run) solve(rng *rand.Rand, maxIter int) float64 {
	r.seed(rng)
	for i := range r.labels {
		r.labels[i] = -1
	}
	clear(r.counts)
	r.forgetBounds()
	for it := 0; it < maxIter; it++ {
		if !r.assign() {
			break
		}
		if r.reseedEmpty() {
			r.forgetBounds()
		}
		r.updateCentres()
		r.shiftBounds()
	}
	r.updateCentres()
	inertia := 0.0
	for i := 0; i < r.n; i++ {
		inertia += sqDist(r.row(i), r.centre(r.labels[i]))
	}
	return inertia
}

// seed is k-means++: the first centre uniformly, each next one with
// probability proportional to its squared distance to the nearest centre
// chosen so far. Callers guarantee at least k distinct rows, so the total
// distance stays positive until k centres are chosen.
func (r *run) seed(rng *rand.Rand) {
	dist := r.upper // free until the first assignment
	first := rng.IntN(r.n)
	copy(r.centre(0), r.row(first))
	for i := 0; i < r.n; i++ {
		dist[i] = sqDist(r.row(i), r.centre(0))
	}
	for c := 1; c < r.k; c++ {
		total := 0.0
		for _, v := range dist {
			total += v
		}
		target := rng.Float64() * total
		pick, cum := -1, 0.0
		for i, v := range dist {
			if v == 0 {
				continue
			}
			pick = i
			cum += v
			if cum > target {
				break
			}
		}
		// pick is the last row with positive weight when rounding left cum
		// short of target.
		copy(r.centre(c), r.row(pick))
		for i := 0; i < r.n; i++ {
			if v := sqDist(r.row(i), r.centre(c)); v < dist[i] {
				dist[i] = v
			}
		}
	}
}

// forgetBounds makes the next assignment scan every row in full.
func (r *run) forgetBounds() {
	for i := range r.upper {
		r.upper[i], r.lower[i] = math.Inf(1), 0
	}
}

// assign moves each row to its nearest centre (ties: the lower centre
// index) and reports whether any label changed.
func (r *run) assign() bool {
	for c := 0; c < r.k; c++ {
		h := math.Inf(1)
		for o := 0; o < r.k; o++ {
			if o != c {
				h = min(h, sqDist(r.centre(c), r.centre(o)))
			}
		}
		r.half[c] = math.Sqrt(h) / 2
	}
	changed := false
	for i := 0; i < r.n; i++ {
		a := r.labels[i]
		xi := r.row(i)
		if a >= 0 {
			bound := max(r.half[a], r.lower[i]) * margin
			if r.upper[i] < bound {
				continue
			}
			r.upper[i] = math.Sqrt(sqDist(xi, r.centre(a)))
			if r.upper[i] < bound {
				continue
			}
		}
		best, d1, d2 := 0, math.Inf(1), math.Inf(1)
		for c := 0; c < r.k; c++ {
			v := sqDist(xi, r.centre(c))
			if v < d1 {
				best, d1, d2 = c, v, d1
			} else if v < d2 {
				d2 = v
			}
		}
		r.upper[i], r.lower[i] = math.Sqrt(d1), math.Sqrt(d2)
		if best != a {
			if a >= 0 {
				r.counts[a]--
			}
			r.counts[best]++
			r.labels[i] = best
			changed = true
		}
	}
	return changed
}

// reseedEmpty gives each empty cluster, in index order, the row farthest
// from its centre (lowest row index on ties) among clusters that can spare
// one, and makes that row the new centre. It reports whether it moved any
// row.
func (r *run) reseedEmpty() bool {
	var dist []float64
	reseeded := false
	for c := 0; c < r.k; c++ {
		if r.counts[c] > 0 {
			continue
		}
		if dist == nil {
			// Bounds are not distances: measure them, once.
			dist = make([]float64, r.n)
			for i := range dist {
				dist[i] = sqDist(r.row(i), r.centre(r.labels[i]))
			}
		}
		far, farD := -1, 0.0
		for i := 0; i < r.n; i++ {
			if r.counts[r.labels[i]] > 1 && dist[i] > farD {
				far, farD = i, dist[i]
			}
		}
		if far < 0 {
			// Every row sits on its centre: nothing to split.
			return reseeded
		}
		r.counts[r.labels[far]]--
		r.labels[far] = c
		r.counts[c] = 1
		dist[far] = 0
		copy(r.centre(c), r.row(far))
		reseeded = true
	}
	return reseeded
}

// updateCentres sets each non-empty cluster's centre to its mean and
// records how far each centre moved. Sums run in row order so the result is
// reproducible bit for bit.
func (r *run) updateCentres() {
	copy(r.old, r.centres)
	for c := 0; c < r.k; c++ {
		if r.counts[c] > 0 {
			clear(r.centre(c))
		}
	}
	for i := 0; i < r.n; i++ {
		ce := r.centre(r.labels[i])
		for j, v := range r.row(i) {
			ce[j] += v
		}
	}
	for c := 0; c < r.k; c++ {
		ce := r.centre(c)
		if r.counts[c] > 0 {
			n := float64(r.counts[c])
			for j := range ce {
				ce[j] /= n
			}
		}
		r.moved[c] = math.Sqrt(sqDist(ce, r.old[c*r.d:(c+1)*r.d]))
	}
}

// shiftBounds loosens the bounds by how far the centres moved, so they
// stay valid for the new centres.
func (r *run) shiftBounds() {
	top, second, topC := 0.0, 0.0, -1
	for c, m := range r.moved {
		if m > top {
			top, second, topC = m, top, c
		} else if m > second {
			second = m
		}
	}
	for i, a := range r.labels {
		r.upper[i] += r.moved[a]
		if a == topC {
			r.lower[i] -= second
		} else {
			r.lower[i] -= top
		}
	}
}
