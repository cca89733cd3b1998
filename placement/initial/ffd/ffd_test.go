package ffd

import (
	"fmt"
	"slices"
	"testing"

	"hots/placement/initial/internal/pack"
	"hots/placement/initial/internal/packtest"
)

func TestConformance(t *testing.T) {
	pl, err := New(Args{})
	if err != nil {
		t.Fatal(err)
	}
	packtest.Conformance(t, pl.Place)
}

func TestArgs(t *testing.T) {
	tests := []struct {
		args    Args
		wantErr bool
	}{
		{Args{}, false},
		{Args{Headroom: 0.9}, false},
		{Args{Headroom: -1}, true},
		{Args{Headroom: 1.01}, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.args.Headroom), func(t *testing.T) {
			if _, err := New(tt.args); (err != nil) != tt.wantErr {
				t.Fatalf("New(%+v) error = %v, wantErr %v", tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestChoices(t *testing.T) {
	tests := []struct {
		name    string
		hosts   []pack.Host
		demands [][]float64 // CPU per container; IDs c0, c1, … in this order
		want    []int
	}{
		{
			// Order: c0 (peak 3), then c1 and c2 (peak 2, total 3: by ID).
			// c0 opens h0; c1 makes it [3 3 3]; c2 still fits on h0
			// ([5 4 3] ≤ 6), and a used host beats an empty one.
			"used hosts before empty ones",
			packtest.H(3, 6),
			[][]float64{{3, 2, 1}, {0, 1, 2}, {2, 1, 0}},
			[]int{0, 0, 0},
		},
		{
			// c0 opens h0, c1 does not fit there and opens h1. c2 leaves
			// both hosts flat (variance 0); peaks 4/4 on h0, 3/4 on h1.
			"equal flatness: lower peak",
			packtest.H(3, 4),
			[][]float64{{3, 3, 3}, {2, 2, 2}, {1, 1, 1}},
			[]int{0, 1, 1},
		},
		{
			// c0 and c1 fill h0 to [6 6]; c2 does not fit and opens h1 at
			// [5 0]. c3 [0 4]: h0 → [6 10], variance 4/100; h1 → [5 4],
			// variance 0.25/100: the flatter, later host wins.
			"flattest used host",
			packtest.H(2, 10),
			[][]float64{{6, 0}, {0, 6}, {5, 0}, {0, 4}},
			[]int{0, 0, 1, 1},
		},
		{
			// c0 and c1 take one host each; c2 scores the same on both.
			"full tie: node order",
			packtest.H(3, 10),
			[][]float64{{8, 8}, {8, 8}, {1, 1}},
			[]int{0, 1, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cs []pack.Container
			for k, d := range tt.demands {
				cs = append(cs, packtest.C(fmt.Sprintf("c%d", k), 0, d))
			}
			p := pack.Problem{Hosts: tt.hosts, Containers: cs}
			pl, err := New(Args{})
			if err != nil {
				t.Fatal(err)
			}
			dest, err := pl.Place(p)
			if err != nil {
				t.Fatal(err)
			}
			packtest.CheckCapacity(t, p, dest)
			if !slices.Equal(dest, tt.want) {
				t.Fatalf("dest = %v, want %v", dest, tt.want)
			}
		})
	}
}

func BenchmarkPlace(b *testing.B) {
	p := packtest.Bench()
	pl, _ := New(Args{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pl.Place(p); err != nil {
			b.Fatal(err)
		}
	}
}
