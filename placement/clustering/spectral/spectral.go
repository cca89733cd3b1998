// Package spectral is normalised spectral clustering (Ng, Jordan and Weiss
// 2001): embed the rows with the eigenvectors of the graph Laplacian, then
// run k-means on the embedding. It finds clusters k-means alone cannot,
// such as rings or interleaved arcs, as long as each cluster is a connected
// region of the k-nearest-neighbour graph.
//
// Affinity graph: k-nearest-neighbour connectivity, symmetrised as
// W = (A + Aᵀ)/2 (1 for mutual neighbours, 1/2 one way). It was chosen over
// a Gaussian kernel with a median-distance bandwidth because a single global
// bandwidth links everything when cluster sizes or densities differ (the
// median distance is of the order of the gaps between clusters), whereas
// neighbourhoods adapt to local density, the graph is sparse, and there is
// no scale parameter to tune per trace.
//
// Identical rows are collapsed before the graph is built: otherwise a group
// of more than Neighbors identical containers (idle ones, typically) would
// be its own component and take a cluster for itself. They share a label.
//
// The dense eigendecomposition costs O(n³) time and n² float64 memory, so
// inputs above MaxRows (default 2,000 distinct rows) are refused with an
// error.
package spectral

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"hots/placement/clustering/internal/labels"
	"hots/placement/clustering/internal/rows"
	"hots/placement/clustering/kmeans"
)

// Args tune spectral clustering. Zero values mean "default".
type Args struct {
	// Seed, Restarts and MaxIter are passed to the k-means run on the
	// embedding.
	Seed     int64 `json:"seed"`
	Restarts int   `json:"restarts"`
	MaxIter  int   `json:"max_iter"`
	// Neighbors is the k of the k-nearest-neighbour graph.
	Neighbors int `json:"neighbors"`
	// MaxRows bounds the number of distinct rows, since time grows with its
	// cube.
	MaxRows int `json:"max_rows"`
}

// Defaults. Ten neighbours is scikit-learn's default for the same graph.
const (
	DefaultNeighbors = 10
	DefaultMaxRows   = 2000
)

// SetDefaults fills zero fields.
func SetDefaults(a *Args) {
	km := kmeans.Args{Restarts: a.Restarts, MaxIter: a.MaxIter}
	kmeans.SetDefaults(&km)
	a.Restarts, a.MaxIter = km.Restarts, km.MaxIter
	if a.Neighbors == 0 {
		a.Neighbors = DefaultNeighbors
	}
	if a.MaxRows == 0 {
		a.MaxRows = DefaultMaxRows
	}
}

// Validate reports the first field out of range.
func Validate(a Args) error {
	if err := kmeans.Validate(a.kmeans()); err != nil {
		return fmt.Errorf("spectral: %w", err)
	}
	if a.Neighbors < 1 {
		return fmt.Errorf("spectral: neighbors = %d: must be >= 1", a.Neighbors)
	}
	if a.MaxRows < 1 {
		return fmt.Errorf("spectral: max_rows = %d: must be >= 1", a.MaxRows)
	}
	return nil
}

func (a Args) kmeans() kmeans.Args {
	return kmeans.Args{Seed: a.Seed, Restarts: a.Restarts, MaxIter: a.MaxIter}
}

// Spectral clusters rows by normalised spectral clustering. It holds no
// state between calls and is safe for concurrent use.
type Spectral struct {
	args Args
}

// New returns spectral clustering with a's zero fields defaulted. Invalid
// Args are reported by Cluster.
func New(a Args) *Spectral {
	SetDefaults(&a)
	return &Spectral{args: a}
}

// Cluster partitions the rows of x into at most k clusters and returns
// canonical labels.
func (s *Spectral) Cluster(x [][]float64, k int) ([]int, error) {
	if err := Validate(s.args); err != nil {
		return nil, err
	}
	if k < 1 {
		return nil, fmt.Errorf("spectral: k = %d: must be >= 1", k)
	}
	flat, d, err := rows.Flatten(x)
	if err != nil {
		return nil, fmt.Errorf("spectral: %w", err)
	}
	n := len(x)
	if n == 0 {
		return []int{}, nil
	}
	first := rows.FirstEqual(flat, n, d)
	var uniq []int // row index of each distinct row
	slot := make([]int, n)
	for i, f := range first {
		if f == i {
			slot[i] = len(uniq)
			uniq = append(uniq, i)
		} else {
			slot[i] = slot[f]
		}
	}
	m := len(uniq)
	if k >= m {
		labels.Canonical(first)
		return first, nil
	}
	if m > s.args.MaxRows {
		return nil, fmt.Errorf("spectral: %d distinct rows exceed max_rows = %d: the dense eigendecomposition grows with the cube of the rows; raise max_rows or use kmeans",
			m, s.args.MaxRows)
	}
	pts := make([][]float64, m)
	for u, i := range uniq {
		pts[u] = flat[i*d : (i+1)*d]
	}
	emb, err := embed(knnAffinity(pts, s.args.Neighbors), k)
	if err != nil {
		return nil, err
	}
	ul, err := kmeans.New(s.args.kmeans()).Cluster(emb, k)
	if err != nil {
		return nil, fmt.Errorf("spectral: k-means on the embedding: %w", err)
	}
	out := make([]int, n)
	for i := range out {
		out[i] = ul[slot[i]]
	}
	labels.Canonical(out)
	return out, nil
}

// knnAffinity returns the dense symmetric affinity W = (A + Aᵀ)/2 where
// A[i][j] = 1 when j is among the nb nearest other points of i (ties: the
// lower index). pts are distinct, at least two.
func knnAffinity(pts [][]float64, nb int) *mat.SymDense {
	m := len(pts)
	nb = min(nb, m-1)
	w := mat.NewSymDense(m, nil)
	idx := make([]int, 0, nb+1)
	dist := make([]float64, 0, nb+1)
	for i, p := range pts {
		idx, dist = idx[:0], dist[:0]
		for j, q := range pts {
			if j == i {
				continue
			}
			dj := 0.0
			for c, v := range p {
				t := v - q[c]
				dj += t * t
			}
			if len(idx) == nb && dj >= dist[nb-1] {
				continue
			}
			// Insertion into the sorted short list; equal distances keep the
			// earlier (lower) index first.
			// When the list is full its last (farthest) entry drops out.
			if len(idx) < nb {
				idx, dist = append(idx, 0), append(dist, 0)
			}
			pos := len(idx) - 1
			for pos > 0 && dist[pos-1] > dj {
				idx[pos], dist[pos] = idx[pos-1], dist[pos-1]
				pos--
			}
			idx[pos], dist[pos] = j, dj
		}
		for _, j := range idx {
			w.SetSym(i, j, w.At(i, j)+0.5)
		}
	}
	return w
}

// embed returns the Ng–Jordan–Weiss embedding: the eigenvectors of the k
// smallest eigenvalues of L = I − D^-1/2 W D^-1/2, one row per point,
// normalised to unit length.
func embed(w *mat.SymDense, k int) ([][]float64, error) {
	m := w.SymmetricDim()
	inv := make([]float64, m)
	for i := 0; i < m; i++ {
		deg := 0.0
		for j := 0; j < m; j++ {
			deg += w.At(i, j)
		}
		// Every point has at least one neighbour, so deg > 0.
		inv[i] = 1 / math.Sqrt(deg)
	}
	lap := mat.NewSymDense(m, nil)
	for i := 0; i < m; i++ {
		for j := i; j < m; j++ {
			v := -inv[i] * w.At(i, j) * inv[j]
			if i == j {
				v++
			}
			lap.SetSym(i, j, v)
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(lap, true) {
		return nil, fmt.Errorf("spectral: eigendecomposition of the %d×%d Laplacian did not converge", m, m)
	}
	var vecs mat.Dense
	eig.VectorsTo(&vecs) // columns in ascending eigenvalue order
	emb := make([][]float64, m)
	for i := range emb {
		emb[i] = make([]float64, k)
	}
	for c := 0; c < k; c++ {
		// An eigenvector is defined up to sign; make its largest-magnitude
		// component (the first one on ties) positive.
		big, sign := 0.0, 1.0
		for i := 0; i < m; i++ {
			if v := vecs.At(i, c); math.Abs(v) > big {
				big, sign = math.Abs(v), math.Copysign(1, v)
			}
		}
		for i := 0; i < m; i++ {
			emb[i][c] = sign * vecs.At(i, c)
		}
	}
	for _, row := range emb {
		norm := 0.0
		for _, v := range row {
			norm += v * v
		}
		if norm == 0 {
			continue
		}
		norm = math.Sqrt(norm)
		for c := range row {
			row[c] /= norm
		}
	}
	return emb, nil
}
