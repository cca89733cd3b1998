package clustering

import (
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"hots/placement/clustering/hierarchical"
	"hots/placement/clustering/internal/labels"
	"hots/placement/clustering/internal/synth"
	"hots/placement/clustering/kmeans"
	"hots/placement/clustering/spectral"
)

func TestSetDefaults(t *testing.T) {
	var a Args
	SetDefaults(&a)
	want := Args{Method: "kmeans", K: 3, Restarts: 10, MaxIter: 100, Linkage: "ward"}
	if a != want {
		t.Errorf("defaults = %+v, want %+v", a, want)
	}
	kept := Args{Method: "spectral", K: 7, Seed: 5, Restarts: 2, MaxIter: 9, Linkage: "average"}
	a = kept
	SetDefaults(&a)
	if a != kept {
		t.Errorf("SetDefaults changed set fields: %+v, want %+v", a, kept)
	}
}

func TestValidate(t *testing.T) {
	ok := Args{Method: "kmeans", K: 3, Restarts: 10, MaxIter: 100, Linkage: "ward"}
	with := func(f func(*Args)) Args { a := ok; f(&a); return a }
	tests := []struct {
		name string
		args Args
		want string // empty: valid
	}{
		{"defaults", ok, ""},
		{"stream_kmeans alias", with(func(a *Args) { a.Method = "stream_kmeans" }), ""},
		{"hierarchical average", with(func(a *Args) { a.Method, a.Linkage = "hierarchical", "average" }), ""},
		{"spectral", with(func(a *Args) { a.Method = "spectral" }), ""},
		{"unknown method", with(func(a *Args) { a.Method = "dbscan" }), `clustering.method = "dbscan": must be one of kmeans, stream_kmeans, hierarchical, spectral`},
		{"empty method", with(func(a *Args) { a.Method = "" }), `clustering.method = ""`},
		{"k zero", with(func(a *Args) { a.K = 0 }), "clustering.k = 0: must be >= 1"},
		{"negative restarts", with(func(a *Args) { a.Restarts = -2 }), "clustering.restarts = -2: must be >= 1"},
		{"zero max_iter", with(func(a *Args) { a.MaxIter = 0 }), "clustering.max_iter = 0: must be >= 1"},
		{"unknown linkage", with(func(a *Args) { a.Linkage = "single" }), `clustering.linkage = "single": must be one of ward, average`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.args)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestNewPicksTheMethod(t *testing.T) {
	tests := []struct {
		args Args
		want Algorithm
	}{
		{Args{}, kmeans.New(kmeans.Args{})},
		{Args{Method: "stream_kmeans", Seed: 4, Restarts: 2}, kmeans.New(kmeans.Args{Seed: 4, Restarts: 2})},
		{Args{Method: "hierarchical", Linkage: "average"}, hierarchical.New(hierarchical.Args{Linkage: "average"})},
		{Args{Method: "spectral", Seed: 3, MaxIter: 7}, spectral.New(spectral.Args{Seed: 3, MaxIter: 7})},
	}
	for _, tt := range tests {
		got, err := New(tt.args)
		if err != nil {
			t.Fatalf("New(%+v): %v", tt.args, err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("New(%+v) = %#v, want %#v", tt.args, got, tt.want)
		}
	}
	if _, err := New(Args{Method: "kmedoids"}); err == nil || !strings.Contains(err.Error(), `"kmedoids"`) {
		t.Errorf("New with unknown method: error = %v", err)
	}
}

func TestEveryMethodRecoversBlobs(t *testing.T) {
	x, truth := synth.Blobs(1, 4, 20, 6, 2, 25)
	orig := make([][]float64, len(x))
	for i := range x {
		orig[i] = slices.Clone(x[i])
	}
	for _, m := range []string{"kmeans", "stream_kmeans", "hierarchical", "spectral"} {
		alg, err := New(Args{Method: m, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		got, err := alg.Cluster(x, 4)
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if !labels.SamePartition(got, truth) || got[0] != 0 {
			t.Errorf("%s: got %v, want the partition %v with canonical labels", m, got, truth)
		}
		if !reflect.DeepEqual(x, orig) {
			t.Fatalf("%s modified its input", m)
		}
	}
}

func TestMethodsAreSafeForConcurrentUse(t *testing.T) {
	// One Algorithm value shared by several goroutines, as the engine may
	// do across domains; -race checks the sharing, the labels the results.
	x, _ := synth.Blobs(6, 5, 20, 3, 15, 5)
	for _, m := range []string{"kmeans", "hierarchical", "spectral"} {
		alg, err := New(Args{Method: m, Seed: 2})
		if err != nil {
			t.Fatal(err)
		}
		want, err := alg.Cluster(x, 5)
		if err != nil {
			t.Fatal(err)
		}
		results := make([][]int, 4)
		var wg sync.WaitGroup
		for g := range results {
			wg.Go(func() { results[g], _ = alg.Cluster(x, 5) })
		}
		wg.Wait()
		for g, got := range results {
			if !slices.Equal(got, want) {
				t.Errorf("%s: goroutine %d got %v, want %v", m, g, got, want)
			}
		}
	}
}

func TestCentroids(t *testing.T) {
	x := [][]float64{{0, 0}, {2, 4}, {10, 10}, {4, 2}, {7, 7}}
	got := Centroids(x, []int{0, 0, 5, 0, -1})
	want := map[int][]float64{0: {2, 2}, 5: {10, 10}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Centroids = %v, want %v", got, want)
	}
	if got := Centroids(nil, nil); len(got) != 0 {
		t.Errorf("Centroids of nothing = %v", got)
	}
}

func TestNearest(t *testing.T) {
	c := map[int][]float64{7: {0, 0}, 2: {4, 0}, 9: {0, 4}}
	tests := []struct {
		name string
		c    map[int][]float64
		v    []float64
		want int
	}{
		{"closest", c, []float64{3, 1}, 2},
		{"on a centroid", c, []float64{0, 4}, 9},
		{"tie between 7 and 2 goes to 2", c, []float64{2, 0}, 2},
		{"tie between 7 and 9 goes to 7", c, []float64{0, 2}, 7},
		{"three-way tie goes to 2", c, []float64{2, 2}, 2},
		{"no centroids", nil, []float64{1, 1}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for rep := 0; rep < 20; rep++ { // map order varies per range
				if got := Nearest(tt.c, tt.v); got != tt.want {
					t.Fatalf("Nearest(%v) = %d, want %d", tt.v, got, tt.want)
				}
			}
		})
	}
}

func TestNearestOfCentroidsReassignsTheirRows(t *testing.T) {
	// On well-separated blobs every row's nearest centroid is its own.
	x, _ := synth.Blobs(2, 3, 15, 4, 2, 25)
	alg, _ := New(Args{Seed: 2})
	l, err := alg.Cluster(x, 3)
	if err != nil {
		t.Fatal(err)
	}
	c := Centroids(x, l)
	got := make([]int, len(x))
	for i, row := range x {
		got[i] = Nearest(c, row)
	}
	if !slices.Equal(got, l) {
		t.Errorf("nearest centroids %v, labels %v", got, l)
	}
}
