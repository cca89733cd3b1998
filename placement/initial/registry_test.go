package initial

import (
	"slices"
	"strings"
	"testing"

	"hots/placement/capacity"
)

func TestNew(t *testing.T) {
	// Two anti-phase containers and one flat one on two hosts of 4.
	p := Problem{
		Hosts: []Host{{"h0", []float64{4, 4}}, {"h1", []float64{4, 4}}},
		Containers: []Container{
			{ID: "a", Label: 0, Demand: capacity.Series{{3, 1}, {1, 1}}, Host: 1},
			{ID: "b", Label: 1, Demand: capacity.Series{{1, 3}, {1, 1}}, Host: 1},
			{ID: "c", Label: 2, Demand: capacity.Series{{2, 2}, {1, 1}}, Host: -1},
		},
	}
	tests := []struct {
		method string
		want   []int
	}{
		// a and b are the complementary pair; c goes first-fit after them.
		{"distant_pairwise", []int{0, 0, 1}},
		// All peaks are 3/4 vs 2/4: a, b first (ID order), c last; b joins
		// a on h0 (used first, [4 4] fits), c cannot and opens h1.
		{"ffd", []int{0, 0, 1}},
		// Round robin splits the pair; c then fits on neither host and
		// keeps its (unknown) current host.
		{"spread", []int{0, 1, -1}},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			h, err := New(tt.method)
			if err != nil {
				t.Fatal(err)
			}
			got, err := h.Place(p)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Place = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		method string
		o      Options
		want   string
	}{
		{"best_fit", Options{}, `"best_fit": must be one of distant_pairwise, ffd, spread`},
		{"", Options{}, "must be one of"},
		{"ffd", Options{Headroom: 2}, "ffd: headroom = 2"},
		{"spread", Options{Headroom: -1}, "spread: headroom = -1"},
		{"distant_pairwise", Options{Headroom: 1.1}, "distant_pairwise: headroom = 1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			_, err := NewWithOptions(tt.method, tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	for _, m := range Methods {
		if _, err := New(m); err != nil {
			t.Errorf("New(%q): %v", m, err)
		}
	}
}

func TestHeadroomReachesTheHeuristic(t *testing.T) {
	p := Problem{
		Hosts:      []Host{{"h0", []float64{4}}},
		Containers: []Container{{ID: "a", Demand: capacity.Series{{3}}, Host: -1}},
	}
	for _, m := range Methods {
		h, err := NewWithOptions(m, Options{Headroom: 0.5})
		if err != nil {
			t.Fatal(err)
		}
		got, err := h.Place(p)
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != -1 {
			t.Errorf("%s placed 3 on a host of 4 with headroom 0.5", m)
		}
	}
}
