package clustering

import (
	"fmt"
	"math"
	"slices"

	"hots/placement/clustering/hierarchical"
	"hots/placement/clustering/kmeans"
	"hots/placement/clustering/spectral"
)

// Methods, as spelled in configuration. "stream_kmeans" is upstream's name
// for its streaming k-means option; here it is the same k-means, refitted on
// each window.
const (
	MethodKMeans       = "kmeans"
	MethodStreamKMeans = "stream_kmeans"
	MethodHierarchical = "hierarchical"
	MethodSpectral     = "spectral"
)

// DefaultK is the cluster count when none is configured (the same as the
// engine's default).
const DefaultK = 3

// SetDefaults fills zero fields: k-means with DefaultK clusters, the
// k-means restarts and iterations, Ward linkage.
func SetDefaults(a *Args) {
	if a.Method == "" {
		a.Method = MethodKMeans
	}
	if a.K == 0 {
		a.K = DefaultK
	}
	if a.Restarts == 0 {
		a.Restarts = kmeans.DefaultRestarts
	}
	if a.MaxIter == 0 {
		a.MaxIter = kmeans.DefaultMaxIter
	}
	if a.Linkage == "" {
		a.Linkage = hierarchical.DefaultLinkage
	}
}

// Validate reports the first field out of range, naming the field, its
// value and what is allowed. Call it after SetDefaults: zero values are
// rejected here.
func Validate(a Args) error {
	switch a.Method {
	case MethodKMeans, MethodStreamKMeans, MethodHierarchical, MethodSpectral:
	default:
		return fmt.Errorf("clustering.method = %q: must be one of kmeans, stream_kmeans, hierarchical, spectral", a.Method)
	}
	if a.K < 1 {
		return fmt.Errorf("clustering.k = %d: must be >= 1", a.K)
	}
	if a.Restarts < 1 {
		return fmt.Errorf("clustering.restarts = %d: must be >= 1", a.Restarts)
	}
	if a.MaxIter < 1 {
		return fmt.Errorf("clustering.max_iter = %d: must be >= 1", a.MaxIter)
	}
	switch a.Linkage {
	case "ward", "average":
	default:
		return fmt.Errorf("clustering.linkage = %q: must be one of ward, average", a.Linkage)
	}
	return nil
}

// New returns the method a selects, after defaulting and validating a copy
// of a. The K of a is the caller's to pass to Cluster.
func New(a Args) (Algorithm, error) {
	SetDefaults(&a)
	if err := Validate(a); err != nil {
		return nil, err
	}
	switch a.Method {
	case MethodHierarchical:
		return hierarchical.New(hierarchical.Args{Linkage: a.Linkage}), nil
	case MethodSpectral:
		return spectral.New(spectral.Args{Seed: a.Seed, Restarts: a.Restarts, MaxIter: a.MaxIter}), nil
	default:
		return kmeans.New(kmeans.Args{Seed: a.Seed, Restarts: a.Restarts, MaxIter: a.MaxIter}), nil
	}
}

// Centroids returns the mean row of each label. Negative labels (rows not
// assigned to any cluster) are skipped. labels[i] is the label of x[i]; it
// panics if the lengths differ, which is a caller bug.
func Centroids(x [][]float64, labels []int) map[int][]float64 {
	if len(x) != len(labels) {
		panic(fmt.Sprintf("clustering.Centroids: %d rows but %d labels", len(x), len(labels)))
	}
	sums := make(map[int][]float64)
	counts := make(map[int]int)
	for i, l := range labels {
		if l < 0 {
			continue
		}
		s, ok := sums[l]
		if !ok {
			s = make([]float64, len(x[i]))
			sums[l] = s
		}
		for j, v := range x[i] {
			s[j] += v
		}
		counts[l]++
	}
	for l, s := range sums {
		n := float64(counts[l])
		for j := range s {
			s[j] /= n
		}
	}
	return sums
}

// Nearest returns the label whose centroid is closest to v in Euclidean
// distance; on equal distance the lowest label wins. It returns -1 when
// there are no centroids. Centroids must have v's length.
func Nearest(centroids map[int][]float64, v []float64) int {
	keys := make([]int, 0, len(centroids))
	for l := range centroids {
		keys = append(keys, l)
	}
	// Ascending order makes the first strict minimum the lowest label.
	slices.Sort(keys)
	best, bestD := -1, math.Inf(1)
	for _, l := range keys {
		c := centroids[l]
		if len(c) != len(v) {
			panic(fmt.Sprintf("clustering.Nearest: centroid %d has %d features, v has %d", l, len(c), len(v)))
		}
		d := 0.0
		for j, x := range v {
			t := x - c[j]
			d += t * t
		}
		if d < bestD {
			best, bestD = l, d
		}
	}
	return best
}
