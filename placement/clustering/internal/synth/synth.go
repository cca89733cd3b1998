// Package synth generates labelled point sets with a known partition, for
// the clustering methods' tests and benchmarks. Every generator is seeded.
package synth

import (
	"math"
	"math/rand/v2"
)

// Blobs returns perBlob points around each of k centres in d dimensions.
// Centres are drawn in [0, 100)^d at least minSep apart; points spread
// uniformly within ±spread of their centre on each axis, so with
// minSep > 2*spread*sqrt(d) every blob is separated from the others.
// Rows are interleaved (blob 0, 1, ..., k-1, 0, 1, ...) so that no method
// can succeed by row order alone.
func Blobs(seed uint64, k, perBlob, d int, spread, minSep float64) ([][]float64, []int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	centres := make([][]float64, 0, k)
	for len(centres) < k {
		c := make([]float64, d)
		for j := range c {
			c[j] = 100 * rng.Float64()
		}
		ok := true
		for _, o := range centres {
			if dist(c, o) < minSep {
				ok = false
				break
			}
		}
		if ok {
			centres = append(centres, c)
		}
	}
	x := make([][]float64, 0, k*perBlob)
	truth := make([]int, 0, k*perBlob)
	for p := 0; p < perBlob; p++ {
		for b, c := range centres {
			row := make([]float64, d)
			for j := range row {
				row[j] = c[j] + spread*(2*rng.Float64()-1)
			}
			x = append(x, row)
			truth = append(truth, b)
		}
	}
	return x, truth
}

// Rings returns two concentric circles (radius 1 and 4) with n points each,
// jittered radially by ±noise, interleaved. k-means cannot separate them:
// the inner ring's mean is the outer ring's mean.
func Rings(seed uint64, n int, noise float64) ([][]float64, []int) {
	rng := rand.New(rand.NewPCG(seed, 2))
	var x [][]float64
	var truth []int
	for i := 0; i < n; i++ {
		for ring, radius := range []float64{1, 4} {
			a := 2 * math.Pi * (float64(i) + rng.Float64()) / float64(n)
			r := radius + noise*(2*rng.Float64()-1)
			x = append(x, []float64{r * math.Cos(a), r * math.Sin(a)})
			truth = append(truth, ring)
		}
	}
	return x, truth
}

func dist(a, b []float64) float64 {
	s := 0.0
	for j := range a {
		t := a[j] - b[j]
		s += t * t
	}
	return math.Sqrt(s)
}

// Moons returns two interleaved half circles of radius 1 (the shape of
// scikit-learn's make_moons) with n points each, jittered by ±noise on
// both axes, interleaved. Each moon's mean lies inside the other's arc, so
// k-means cuts across them.
func Moons(seed uint64, n int, noise float64) ([][]float64, []int) {
	rng := rand.New(rand.NewPCG(seed, 3))
	var x [][]float64
	var truth []int
	for i := 0; i < n; i++ {
		a := math.Pi * float64(i) / float64(n-1)
		upper := []float64{math.Cos(a), math.Sin(a)}
		lower := []float64{1 - math.Cos(a), 0.5 - math.Sin(a)}
		for moon, p := range [][]float64{upper, lower} {
			x = append(x, []float64{p[0] + noise*(2*rng.Float64()-1), p[1] + noise*(2*rng.Float64()-1)})
			truth = append(truth, moon)
		}
	}
	return x, truth
}
