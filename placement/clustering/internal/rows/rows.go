// Package rows checks and packs the feature matrix every clustering method
// receives, so that each method reports bad input the same way.
package rows

import (
	"fmt"
	"math"
)

// Flatten checks that x is rectangular and finite and packs it row-major
// into one slice: the methods scan rows many times, and one contiguous
// block keeps those scans cache-friendly. It returns the packed data and
// the number of columns.
func Flatten(x [][]float64) ([]float64, int, error) {
	if len(x) == 0 {
		return nil, 0, nil
	}
	d := len(x[0])
	flat := make([]float64, 0, len(x)*d)
	for i, row := range x {
		if len(row) != d {
			return nil, 0, fmt.Errorf("row %d has %d columns, row 0 has %d: all rows must have the same number of features", i, len(row), d)
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, 0, fmt.Errorf("row %d, column %d: value %v is not finite", i, j, v)
			}
		}
		flat = append(flat, row...)
	}
	return flat, d, nil
}

// FirstEqual returns, for each row of the packed matrix, the index of the
// first row with exactly the same values (itself when it is the first).
// Methods use it to keep identical containers together whatever numerical
// noise their own computation adds.
func FirstEqual(flat []float64, n, d int) []int {
	first := make([]int, n)
	seen := make(map[string]int, n)
	key := make([]byte, 8*d)
	for i := 0; i < n; i++ {
		for j, v := range flat[i*d : (i+1)*d] {
			// +0 folds -0 into 0 so that equal values share a key.
			b := math.Float64bits(v + 0)
			for s := 0; s < 8; s++ {
				key[8*j+s] = byte(b >> (8 * s))
			}
		}
		if f, ok := seen[string(key)]; ok {
			first[i] = f
			continue
		}
		seen[string(key)] = i
		first[i] = i
	}
	return first
}

// Distinct counts the distinct rows given the result of FirstEqual.
func Distinct(first []int) int {
	c := 0
	for i, f := range first {
		if f == i {
			c++
		}
	}
	return c
}
