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
type run struct {
	x       []float64
	n, d, k int
	centres []float64 // k*d
	labels  []int
	dist    []float64 // squared distance of each row to its centre
	counts  []int
}

func newRun(x []float64, n, d, k int) *run {
	return &run{
		x: x, n: n, d: d, k: k,
		centres: make([]float64, k*d),
		labels:  make([]int, n),
		dist:    make([]float64, n),
		counts:  make([]int, k),
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
	for it := 0; it < maxIter; it++ {
		if !r.assign() {
			break
		}
		r.reseedEmpty()
		r.updateCentres()
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
	first := rng.IntN(r.n)
	copy(r.centre(0), r.row(first))
	for i := 0; i < r.n; i++ {
		r.dist[i] = sqDist(r.row(i), r.centre(0))
	}
	for c := 1; c < r.k; c++ {
		total := 0.0
		for _, v := range r.dist {
			total += v
		}
		target := rng.Float64() * total
		pick, cum := -1, 0.0
		for i, v := range r.dist {
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
			if v := sqDist(r.row(i), r.centre(c)); v < r.dist[i] {
				r.dist[i] = v
			}
		}
	}
}

// assign moves each row to its nearest centre (ties: the lower centre
// index) and reports whether any label changed.
func (r *run) assign() bool {
	changed := false
	for c := range r.counts {
		r.counts[c] = 0
	}
	for i := 0; i < r.n; i++ {
		xi := r.row(i)
		best, bestD := 0, math.Inf(1)
		for c := 0; c < r.k; c++ {
			if v := sqDist(xi, r.centre(c)); v < bestD {
				best, bestD = c, v
			}
		}
		if r.labels[i] != best {
			r.labels[i] = best
			changed = true
		}
		r.dist[i] = bestD
		r.counts[best]++
	}
	return changed
}

// reseedEmpty gives each empty cluster, in index order, the row farthest
// from its centre (lowest row index on ties) among clusters that can spare
// one, and makes that row the new centre.
func (r *run) reseedEmpty() {
	for c := 0; c < r.k; c++ {
		if r.counts[c] > 0 {
			continue
		}
		far, farD := -1, 0.0
		for i := 0; i < r.n; i++ {
			if r.counts[r.labels[i]] > 1 && r.dist[i] > farD {
				far, farD = i, r.dist[i]
			}
		}
		if far < 0 {
			// Every row sits on its centre: nothing to split.
			return
		}
		r.counts[r.labels[far]]--
		r.labels[far] = c
		r.counts[c] = 1
		r.dist[far] = 0
		copy(r.centre(c), r.row(far))
	}
}

// updateCentres sets each non-empty cluster's centre to its mean. Sums run
// in row order so the result is reproducible bit for bit.
func (r *run) updateCentres() {
	for c := 0; c < r.k; c++ {
		if r.counts[c] == 0 {
			continue
		}
		clear(r.centre(c))
	}
	for i := 0; i < r.n; i++ {
		ce := r.centre(r.labels[i])
		for j, v := range r.row(i) {
			ce[j] += v
		}
	}
	for c := 0; c < r.k; c++ {
		if r.counts[c] == 0 {
			continue
		}
		inv := 1 / float64(r.counts[c])
		ce := r.centre(c)
		for j := range ce {
			ce[j] *= inv
		}
	}
}
