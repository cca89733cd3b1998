package kmeans

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"hots/placement/clustering/internal/labels"
	"hots/placement/clustering/internal/synth"
)

func TestClusterRecoversSeparatedBlobs(t *testing.T) {
	tests := []struct {
		name           string
		k, perBlob, d  int
		spread, minSep float64
		seed, blobSeed uint64
		restarts       int
	}{
		{"3 blobs in 24 dims", 3, 30, 24, 2, 30, 1, 1, 0},
		{"5 blobs in 2 dims", 5, 40, 2, 3, 20, 7, 2, 0},
		{"8 blobs in 24 dims", 8, 25, 24, 1, 25, 3, 3, 0},
		{"4 blobs one restart", 4, 20, 3, 1, 15, 11, 4, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, truth := synth.Blobs(tt.blobSeed, tt.k, tt.perBlob, tt.d, tt.spread, tt.minSep)
			got, err := New(Args{Seed: int64(tt.seed), Restarts: tt.restarts}).Cluster(x, tt.k)
			if err != nil {
				t.Fatal(err)
			}
			if !labels.SamePartition(got, truth) {
				t.Errorf("partition differs from the blobs:\n got %v\nwant %v", got, truth)
			}
		})
	}
}

func TestClusterIsDeterministic(t *testing.T) {
	// Overlapping blobs make many local optima, so restarts really differ.
	x, _ := synth.Blobs(5, 6, 50, 4, 20, 5)
	for _, a := range []Args{{Seed: 1}, {Seed: 1, Restarts: 1}, {Seed: 42, Restarts: 25}, {Seed: -3, MaxIter: 2}} {
		m := New(a)
		want, err := m.Cluster(x, 6)
		if err != nil {
			t.Fatal(err)
		}
		for rep := 0; rep < 3; rep++ {
			got, err := New(a).Cluster(x, 6)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("args %+v: call %d gave %v, first call %v", a, rep, got, want)
			}
		}
	}
}

func TestMoreRestartsNeverWorse(t *testing.T) {
	// Restart r draws from PCG(seed, r), so R+1 restarts see the R runs of
	// R restarts plus one: the kept inertia can only go down.
	x, _ := synth.Blobs(9, 7, 30, 3, 25, 5)
	prev := math.Inf(1)
	for r := 1; r <= 12; r++ {
		got, err := New(Args{Seed: 3, Restarts: r}).Cluster(x, 7)
		if err != nil {
			t.Fatal(err)
		}
		in := inertia(x, got)
		if in > prev {
			t.Errorf("restarts %d: inertia %v above %v with fewer restarts", r, in, prev)
		}
		prev = in
	}
}

func TestClusterLabelsAreCanonical(t *testing.T) {
	x, _ := synth.Blobs(13, 10, 10, 5, 5, 10)
	got, err := New(Args{Seed: 8}).Cluster(x, 10)
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	for i, l := range got {
		switch {
		case l == next:
			next++
		case l > next || l < 0:
			t.Fatalf("row %d has label %d before label %d appeared: %v", i, l, next, got)
		}
	}
	if next != 10 {
		t.Errorf("%d clusters, want 10", next)
	}
}

func TestClusterSmallAndDegenerateInputs(t *testing.T) {
	a, b, c := []float64{1, 1}, []float64{5, 5}, []float64{9, 0}
	tests := []struct {
		name string
		x    [][]float64
		k    int
		want []int
	}{
		{"no rows", nil, 3, []int{}},
		{"one row", [][]float64{a}, 3, []int{0}},
		{"fewer rows than k", [][]float64{b, a}, 5, []int{0, 1}},
		{"all rows identical", [][]float64{a, a, a, a}, 3, []int{0, 0, 0, 0}},
		{"fewer distinct rows than k", [][]float64{a, b, a, b, a}, 4, []int{0, 1, 0, 1, 0}},
		{"distinct rows equal k", [][]float64{c, a, b, a}, 3, []int{0, 1, 2, 1}},
		{"zero features", [][]float64{{}, {}}, 2, []int{0, 0}},
		{"k one", [][]float64{a, b, c}, 1, []int{0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New(Args{Seed: 1}).Cluster(tt.x, tt.k)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClusterIdenticalRowsShareACluster(t *testing.T) {
	x, _ := synth.Blobs(21, 3, 20, 4, 4, 20)
	// Duplicate every fifth row at the end.
	n := len(x)
	for i := 0; i < n; i += 5 {
		x = append(x, slices.Clone(x[i]))
	}
	got, err := New(Args{Seed: 2}).Cluster(x, 3)
	if err != nil {
		t.Fatal(err)
	}
	for j, i := n, 0; i < n; j, i = j+1, i+5 {
		if got[i] != got[j] {
			t.Errorf("row %d and its copy %d got labels %d and %d", i, j, got[i], got[j])
		}
	}
}

func TestClusterRejectsBadInput(t *testing.T) {
	tests := []struct {
		name string
		args Args
		x    [][]float64
		k    int
		want string
	}{
		{"k zero", Args{}, [][]float64{{1}}, 0, "k = 0: must be >= 1"},
		{"NaN", Args{}, [][]float64{{1, 2}, {math.NaN(), 0}}, 2, "row 1, column 0: value NaN is not finite"},
		{"Inf", Args{}, [][]float64{{1, math.Inf(1)}}, 2, "row 0, column 1: value +Inf is not finite"},
		{"ragged", Args{}, [][]float64{{1, 2}, {3}}, 2, "row 1 has 1 columns"},
		{"negative restarts", Args{Restarts: -1}, [][]float64{{1}}, 1, "restarts = -1: must be >= 1"},
		{"negative max_iter", Args{MaxIter: -5}, [][]float64{{1}}, 1, "max_iter = -5: must be >= 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.args).Cluster(tt.x, tt.k)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSetDefaultsAndValidate(t *testing.T) {
	var a Args
	SetDefaults(&a)
	if a.Restarts != DefaultRestarts || a.MaxIter != DefaultMaxIter {
		t.Errorf("defaults = %+v", a)
	}
	if err := Validate(a); err != nil {
		t.Errorf("defaulted args invalid: %v", err)
	}
	if err := Validate(Args{Restarts: 1}); err == nil || !strings.Contains(err.Error(), "max_iter = 0") {
		t.Errorf("Validate zero max_iter = %v", err)
	}
}

// fresh readies a run for a first assignment, as solve does after seeding.
func fresh(x []float64, d, k int, centres []float64) *run {
	r := newRun(x, len(x)/d, d, k)
	copy(r.centres, centres)
	for i := range r.labels {
		r.labels[i] = -1
	}
	r.forgetBounds()
	return r
}

func TestAssignTieGoesToLowerCentre(t *testing.T) {
	// Row 0 sits halfway between centres 0 and 1; row 1 halfway between
	// centres 1 and 2.
	r := fresh([]float64{1, 3}, 1, 3, []float64{0, 2, 4})
	r.assign()
	if want := []int{0, 1}; !slices.Equal(r.labels, want) {
		t.Errorf("labels = %v, want %v", r.labels, want)
	}
	// A second pass with bounds in place must not skip into another answer.
	r.shiftBounds()
	r.assign()
	if want := []int{0, 1}; !slices.Equal(r.labels, want) {
		t.Errorf("after bounds: labels = %v, want %v", r.labels, want)
	}
}

func TestReseedEmptyTakesFarthestRow(t *testing.T) {
	// All rows go to centre 0 (at 0); centre 1 (at 100) is empty and gets
	// row 2, the farthest from centre 0.
	r := fresh([]float64{0, 1, 10}, 1, 2, []float64{0, 100})
	r.assign()
	if !r.reseedEmpty() {
		t.Fatal("reseedEmpty reported no change")
	}
	r.updateCentres()
	if want := []int{0, 0, 1}; !slices.Equal(r.labels, want) {
		t.Errorf("labels = %v, want %v", r.labels, want)
	}
	if want := []float64{0.5, 10}; !slices.Equal(r.centres, want) {
		t.Errorf("centres = %v, want %v", r.centres, want)
	}
	if want := []int{2, 1}; !slices.Equal(r.counts, want) {
		t.Errorf("counts = %v, want %v", r.counts, want)
	}
}

// TestBoundsGiveLloydLabels checks the Hamerly bounds against plain Lloyd
// iterations (every row against every centre each time) from the same
// seeding: the labels must be identical, not merely as good.
func TestBoundsGiveLloydLabels(t *testing.T) {
	tests := []struct {
		name        string
		blobs, d, k int
		spread      float64
	}{
		{"overlapping blobs", 6, 4, 6, 20},
		{"more clusters than blobs", 3, 2, 9, 10},
		{"one cluster", 3, 3, 1, 10},
		{"integer grid with ties", 0, 2, 4, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var x [][]float64
			if tt.blobs > 0 {
				x, _ = synth.Blobs(17, tt.blobs, 40, tt.d, tt.spread, 5)
			} else {
				for i := 0; i < 8; i++ {
					for j := 0; j < 8; j++ {
						x = append(x, []float64{float64(i), float64(j)})
					}
				}
			}
			var flat []float64
			for _, row := range x {
				flat = append(flat, row...)
			}
			for seed := uint64(0); seed < 5; seed++ {
				r := newRun(flat, len(x), tt.d, tt.k)
				r.solve(rand.New(rand.NewPCG(seed, 0)), 100)
				want := lloyd(flat, len(x), tt.d, tt.k, seed, 100)
				if !slices.Equal(r.labels, want) {
					t.Fatalf("seed %d: bounded %v\nplain Lloyd %v", seed, r.labels, want)
				}
			}
		})
	}
}

// lloyd is the reference: same seeding, then full scans every iteration.
func lloyd(x []float64, n, d, k int, seed uint64, maxIter int) []int {
	r := newRun(x, n, d, k)
	r.seed(rand.New(rand.NewPCG(seed, 0)))
	lab := make([]int, n)
	for i := range lab {
		lab[i] = -1
	}
	for it := 0; it < maxIter; it++ {
		changed := false
		clear(r.counts)
		for i := 0; i < n; i++ {
			best, bestD := 0, math.Inf(1)
			for c := 0; c < k; c++ {
				if v := sqDist(r.row(i), r.centre(c)); v < bestD {
					best, bestD = c, v
				}
			}
			if lab[i] != best {
				lab[i], changed = best, true
			}
			r.counts[best]++
		}
		if !changed {
			break
		}
		copy(r.labels, lab)
		r.reseedEmpty()
		copy(lab, r.labels)
		r.updateCentres()
	}
	return lab
}

func inertia(x [][]float64, l []int) float64 {
	sums := map[int][]float64{}
	counts := map[int]int{}
	for i, row := range x {
		if sums[l[i]] == nil {
			sums[l[i]] = make([]float64, len(row))
		}
		for j, v := range row {
			sums[l[i]][j] += v
		}
		counts[l[i]]++
	}
	s := 0.0
	for i, row := range x {
		for j, v := range row {
			t := v - sums[l[i]][j]/float64(counts[l[i]])
			s += t * t
		}
	}
	return s
}

func benchmarkCluster(b *testing.B, n, d, k int) {
	x := make([][]float64, n)
	// Usage-like data: 20 profiles plus noise, so clusters are neither
	// trivial nor pure noise.
	rng := rand.New(rand.NewPCG(1, 1))
	profiles := make([][]float64, 20)
	for p := range profiles {
		profiles[p] = make([]float64, d)
		for j := range profiles[p] {
			profiles[p][j] = 100 * rng.Float64()
		}
	}
	for i := range x {
		x[i] = make([]float64, d)
		p := profiles[rng.IntN(len(profiles))]
		for j := range x[i] {
			x[i][j] = p[j] + 10*rng.NormFloat64()
		}
	}
	m := New(Args{Seed: 1})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Cluster(x, k); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCluster1000x24k3(b *testing.B)   { benchmarkCluster(b, 1000, 24, 3) }
func BenchmarkCluster1000x24k20(b *testing.B)  { benchmarkCluster(b, 1000, 24, 20) }
func BenchmarkCluster10000x24k3(b *testing.B)  { benchmarkCluster(b, 10000, 24, 3) }
func BenchmarkCluster10000x24k20(b *testing.B) { benchmarkCluster(b, 10000, 24, 20) }
