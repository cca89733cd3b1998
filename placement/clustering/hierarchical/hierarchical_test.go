package hierarchical

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
		linkage        string
		k, perBlob, d  int
		spread, minSep float64
		blobSeed       uint64
	}{
		{"ward 3 blobs in 24 dims", "ward", 3, 30, 24, 2, 30, 1},
		{"average 3 blobs in 24 dims", "average", 3, 30, 24, 2, 30, 1},
		{"ward 6 blobs in 2 dims", "ward", 6, 25, 2, 2, 15, 2},
		{"average 6 blobs in 2 dims", "average", 6, 25, 2, 2, 15, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, truth := synth.Blobs(tt.blobSeed, tt.k, tt.perBlob, tt.d, tt.spread, tt.minSep)
			got, err := New(Args{Linkage: tt.linkage}).Cluster(x, tt.k)
			if err != nil {
				t.Fatal(err)
			}
			if !labels.SamePartition(got, truth) {
				t.Errorf("partition differs from the blobs:\n got %v\nwant %v", got, truth)
			}
		})
	}
}

// TestWardAndAverageDiffer uses five points on a line, rows in the order
// 7.5, 0, 8, 4, 7 (rows 0..4). Both linkages first build R = {7, 7.5, 8}:
//
//	ward (on ΔSSE = nA·nB/(nA+nB)·(μA−μB)²): {7.5}+{8} costs 0.125 (tied
//	with {7.5}+{7}; the lower pair (0,2) wins), then {7.5,8}+{7} costs
//	2/3·0.75² = 0.375, both below {0}+{4} (8) and {4}+{7} (4.5).
//	average: 7.5–8 at 0.5 (tied with 7.5–7, lower pair wins), then
//	{7.5,8}–7 at (0.5+1)/2 = 0.75, below every other distance (≥ 3).
//
// Three clusters remain: P = {0}, Q = {4}, R (mean 7.5). For k = 2:
//
//	ward:    Δ(P,Q) = ½·4² = 8,   Δ(Q,R) = ¾·3.5² = 9.19, Δ(P,R) = 42.2
//	         → P+Q: {0, 4} | {7, 7.5, 8}
//	average: d(P,Q) = 4, d(Q,R) = (3+3.5+4)/3 = 3.5, d(P,R) = 7.5
//	         → Q+R: {0} | {4, 7, 7.5, 8}
func TestWardAndAverageDiffer(t *testing.T) {
	x := [][]float64{{7.5}, {0}, {8}, {4}, {7}}
	tests := []struct {
		linkage string
		want    []int
	}{
		{"ward", []int{0, 1, 0, 1, 0}},
		{"average", []int{0, 1, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.linkage, func(t *testing.T) {
			got, err := New(Args{Linkage: tt.linkage}).Cluster(x, 2)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClusterCutsAtKNotAtAHeight(t *testing.T) {
	// Far-apart points: upstream's cut at height K=2 would keep all four
	// apart; the cut at k=2 pairs the two closest couples.
	x := [][]float64{{0}, {100}, {10}, {110}}
	for _, linkage := range []string{"ward", "average"} {
		got, err := New(Args{Linkage: linkage}).Cluster(x, 2)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{0, 1, 0, 1}; !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", linkage, got, want)
		}
	}
}

func TestClusterTiesTakeLowestPair(t *testing.T) {
	// Equally spaced points: every neighbour pair is at distance 1. The
	// lowest pair (0,1) merges first; then, for ward, {0,1}–2 costs
	// 2/3·1.5² = 1.5 > ½ for (2,3), so (2,3) merges; k=2 stops there.
	x := [][]float64{{0}, {1}, {2}, {3}}
	got, err := New(Args{}).Cluster(x, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 0, 1, 1}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// Average linkage on 0, 1, 2: (0,1) and (1,2) tie at 1; (0,1) wins.
	got, err = New(Args{Linkage: "average"}).Cluster([][]float64{{0}, {1}, {2}}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 0, 1}; !slices.Equal(got, want) {
		t.Errorf("average: got %v, want %v", got, want)
	}
}

func TestClusterIsDeterministic(t *testing.T) {
	x, _ := synth.Blobs(5, 6, 40, 4, 20, 5)
	for _, linkage := range []string{"ward", "average"} {
		want, err := New(Args{Linkage: linkage}).Cluster(x, 6)
		if err != nil {
			t.Fatal(err)
		}
		for rep := 0; rep < 3; rep++ {
			got, _ := New(Args{Linkage: linkage}).Cluster(x, 6)
			if !slices.Equal(got, want) {
				t.Fatalf("%s: call %d gave %v, first call %v", linkage, rep, got, want)
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
		{"identical rows kept together at k = n", [][]float64{c, a, b, a}, 4, []int{0, 1, 2, 1}},
		{"k one", [][]float64{a, b, c}, 1, []int{0, 0, 0}},
	}
	for _, linkage := range []string{"ward", "average"} {
		for _, tt := range tests {
			t.Run(linkage+" "+tt.name, func(t *testing.T) {
				got, err := New(Args{Linkage: linkage}).Cluster(tt.x, tt.k)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("got %v, want %v", got, tt.want)
				}
			})
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
		{"ragged", Args{}, [][]float64{{1, 2}, {3}}, 2, "row 1 has 1 columns"},
		{"unknown linkage", Args{Linkage: "single"}, [][]float64{{1}}, 1, `linkage = "single": must be one of ward, average`},
		{"negative max_rows", Args{MaxRows: -1}, [][]float64{{1}}, 1, "max_rows = -1: must be >= 1"},
		{"above max_rows", Args{MaxRows: 2}, [][]float64{{1}, {2}, {3}}, 1, "3 rows exceed max_rows = 2"},
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

func TestSetDefaults(t *testing.T) {
	var a Args
	SetDefaults(&a)
	if a != (Args{Linkage: DefaultLinkage, MaxRows: DefaultMaxRows}) {
		t.Errorf("defaults = %+v", a)
	}
	if err := Validate(a); err != nil {
		t.Errorf("defaulted args invalid: %v", err)
	}
}

func benchmarkCluster(b *testing.B, linkage string, n, d, k int) {
	rng := rand.New(rand.NewPCG(1, 1))
	profiles := make([][]float64, 20)
	for p := range profiles {
		profiles[p] = make([]float64, d)
		for j := range profiles[p] {
			profiles[p][j] = 100 * rng.Float64()
		}
	}
	x := make([][]float64, n)
	for i := range x {
		x[i] = make([]float64, d)
		p := profiles[rng.IntN(len(profiles))]
		for j := range x[i] {
			x[i][j] = p[j] + 10*rng.NormFloat64()
		}
	}
	h := New(Args{Linkage: linkage})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Cluster(x, k); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClusterWard1000x24(b *testing.B)    { benchmarkCluster(b, "ward", 1000, 24, 20) }
func BenchmarkClusterAverage1000x24(b *testing.B) { benchmarkCluster(b, "average", 1000, 24, 20) }

// TestNearestNeighbourCacheMatchesFullScan replays each input with a plain
// search over all active pairs at every step (lowest pair on ties) and
// checks the cached algorithm merged exactly the same clusters.
func TestNearestNeighbourCacheMatchesFullScan(t *testing.T) {
	blobs, _ := synth.Blobs(8, 5, 30, 3, 15, 5)
	var grid [][]float64 // many exact ties
	for i := 0; i < 7; i++ {
		for j := 0; j < 6; j++ {
			grid = append(grid, []float64{float64(i), float64(2 * j)})
		}
	}
	for _, linkage := range []string{"ward", "average"} {
		for name, x := range map[string][][]float64{"blobs": blobs, "grid": grid} {
			for _, k := range []int{1, 2, 5, 13} {
				got, err := New(Args{Linkage: linkage}).Cluster(x, k)
				if err != nil {
					t.Fatal(err)
				}
				if want := fullScan(x, k, linkage == "ward"); !slices.Equal(got, want) {
					t.Errorf("%s %s k=%d:\n got %v\nwant %v", linkage, name, k, got, want)
				}
			}
		}
	}
}

func fullScan(x [][]float64, k int, ward bool) []int {
	var flat []float64
	for _, row := range x {
		flat = append(flat, row...)
	}
	n := len(x)
	tr := newTree(flat, n, len(x[0]), ward)
	for clusters := n; clusters > k; clusters-- {
		bi, bj, bd := -1, -1, math.Inf(1)
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				if tr.active[i] && tr.active[j] && *tr.at(i, j) < bd {
					bi, bj, bd = i, j, *tr.at(i, j)
				}
			}
		}
		tr.merge(bi, bj)
	}
	out := make([]int, n)
	for i := range out {
		out[i] = tr.root(i)
	}
	labels.Canonical(out)
	return out
}
