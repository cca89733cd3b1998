package spectral

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"hots/placement/clustering/internal/labels"
	"hots/placement/clustering/internal/synth"
	"hots/placement/clustering/kmeans"
)

func TestClusterSeparatesShapesKMeansCannot(t *testing.T) {
	rx, rt := synth.Rings(1, 100, 0.2)
	mx, mt := synth.Moons(2, 100, 0.05)
	tests := []struct {
		name  string
		x     [][]float64
		truth []int
	}{
		{"concentric rings", rx, rt},
		{"interleaved half-moons", mx, mt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New(Args{Seed: 1}).Cluster(tt.x, 2)
			if err != nil {
				t.Fatal(err)
			}
			if !labels.SamePartition(got, tt.truth) {
				t.Errorf("spectral partition differs from the shapes:\n got %v\nwant %v", got, tt.truth)
			}
			// The case is only meaningful if k-means gets it wrong.
			km, err := kmeans.New(kmeans.Args{Seed: 1}).Cluster(tt.x, 2)
			if err != nil {
				t.Fatal(err)
			}
			if labels.SamePartition(km, tt.truth) {
				t.Errorf("k-means also separates the shapes; the case proves nothing")
			}
		})
	}
}

func TestClusterRecoversSeparatedBlobs(t *testing.T) {
	tests := []struct {
		name           string
		k, perBlob, d  int
		spread, minSep float64
		blobSeed       uint64
	}{
		{"3 blobs in 24 dims", 3, 30, 24, 2, 30, 1},
		{"5 blobs in 2 dims", 5, 30, 2, 2, 15, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, truth := synth.Blobs(tt.blobSeed, tt.k, tt.perBlob, tt.d, tt.spread, tt.minSep)
			got, err := New(Args{Seed: 4}).Cluster(x, tt.k)
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
	x, _ := synth.Blobs(5, 6, 30, 4, 20, 5)
	for _, a := range []Args{{Seed: 1}, {Seed: 9, Restarts: 3, Neighbors: 5}} {
		want, err := New(a).Cluster(x, 6)
		if err != nil {
			t.Fatal(err)
		}
		for rep := 0; rep < 3; rep++ {
			got, _ := New(a).Cluster(x, 6)
			if !slices.Equal(got, want) {
				t.Fatalf("args %+v: call %d gave %v, first call %v", a, rep, got, want)
			}
		}
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

func TestClusterManyIdenticalRowsDoNotTakeACluster(t *testing.T) {
	// 30 copies of one point inside blob 0: collapsed before the graph is
	// built, they cannot form a component of their own.
	x, truth := synth.Blobs(3, 2, 40, 3, 2, 20)
	for i := 0; i < 30; i++ {
		x = append(x, slices.Clone(x[0]))
		truth = append(truth, truth[0])
	}
	got, err := New(Args{Seed: 1}).Cluster(x, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !labels.SamePartition(got, truth) {
		t.Errorf("got %v, want the partition %v", got, truth)
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
		{"negative neighbors", Args{Neighbors: -2}, [][]float64{{1}}, 1, "neighbors = -2: must be >= 1"},
		{"negative max_rows", Args{MaxRows: -1}, [][]float64{{1}}, 1, "max_rows = -1: must be >= 1"},
		{"negative restarts", Args{Restarts: -1}, [][]float64{{1}}, 1, "restarts = -1: must be >= 1"},
		{"above max_rows", Args{MaxRows: 2}, [][]float64{{1}, {2}, {3}, {3}}, 2, "3 distinct rows exceed max_rows = 2"},
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

func TestKNNAffinity(t *testing.T) {
	// Points 0, 1, 3 on a line with one neighbour each: 0→1, 1→0, 3→1.
	// (0,1) is mutual (1); (1,3) one way (½).
	w := knnAffinity([][]float64{{0}, {1}, {3}}, 1)
	want := mat.NewSymDense(3, []float64{
		0, 1, 0,
		1, 0, 0.5,
		0, 0.5, 0,
	})
	if !mat.Equal(w, want) {
		t.Errorf("W = %v, want %v", mat.Formatted(w), mat.Formatted(want))
	}
}

func TestEmbedFixesEigenvectorSigns(t *testing.T) {
	// Two components {0,1} and {2,3}: the two smallest eigenvalues are 0
	// and the embedding puts each component on one unit vector.
	w := mat.NewSymDense(4, []float64{
		0, 1, 0, 0,
		1, 0, 0, 0,
		0, 0, 0, 1,
		0, 0, 1, 0,
	})
	emb, err := embed(w, 2)
	if err != nil {
		t.Fatal(err)
	}
	for c := 0; c < 2; c++ {
		big := 0.0
		for i := range emb {
			if math.Abs(emb[i][c]) > math.Abs(big) {
				big = emb[i][c]
			}
		}
		if big <= 0 {
			t.Errorf("column %d: largest-magnitude component %v is not positive", c, big)
		}
	}
	if !slices.Equal(emb[0], emb[1]) || !slices.Equal(emb[2], emb[3]) || slices.Equal(emb[0], emb[2]) {
		t.Errorf("embedding does not separate the components: %v", emb)
	}
	for i, row := range emb {
		if n := math.Hypot(row[0], row[1]); math.Abs(n-1) > 1e-12 {
			t.Errorf("row %d has norm %v, want 1", i, n)
		}
	}
}

func TestSetDefaults(t *testing.T) {
	var a Args
	SetDefaults(&a)
	want := Args{Restarts: kmeans.DefaultRestarts, MaxIter: kmeans.DefaultMaxIter, Neighbors: DefaultNeighbors, MaxRows: DefaultMaxRows}
	if a != want {
		t.Errorf("defaults = %+v, want %+v", a, want)
	}
}

func BenchmarkCluster1000x24(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	profiles := make([][]float64, 20)
	for p := range profiles {
		profiles[p] = make([]float64, 24)
		for j := range profiles[p] {
			profiles[p][j] = 100 * rng.Float64()
		}
	}
	x := make([][]float64, 1000)
	for i := range x {
		x[i] = make([]float64, 24)
		p := profiles[rng.IntN(len(profiles))]
		for j := range x[i] {
			x[i][j] = p[j] + 10*rng.NormFloat64()
		}
	}
	s := New(Args{Seed: 1})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Cluster(x, 20); err != nil {
			b.Fatal(err)
		}
	}
}
