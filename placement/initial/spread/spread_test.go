package spread

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
		{Args{Headroom: 0.5}, false},
		{Args{Headroom: -1}, true},
		{Args{Headroom: 2}, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.args.Headroom), func(t *testing.T) {
			if _, err := New(tt.args); (err != nil) != tt.wantErr {
				t.Fatalf("New(%+v) error = %v, wantErr %v", tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestRoundRobin(t *testing.T) {
	unit := []float64{1, 1}
	big := []float64{3, 3}
	tests := []struct {
		name     string
		hosts    []pack.Host
		demands  [][]float64 // CPU per container, in ID order
		headroom float64
		want     []int
	}{
		{"pure round robin", packtest.H(3, 4), [][]float64{unit, unit, unit, unit, unit}, 1, []int{0, 1, 2, 0, 1}},
		// The second big one finds h0 too full and takes h1; the cursor then
		// wraps to h0 for the last container.
		{"skips a full host", packtest.H(2, 4), [][]float64{big, unit, big, unit}, 1, []int{0, 1, 1, 0}},
		{"cursor follows the host used", packtest.H(3, 4), [][]float64{big, unit, big, big, unit}, 1, []int{0, 1, 2, 1, 2}},
		{"headroom", packtest.H(2, 4), [][]float64{big, big, unit}, 0.5, []int{-1, -1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cs []pack.Container
			for k, d := range tt.demands {
				cs = append(cs, packtest.C(fmt.Sprintf("c%d", k), 0, d))
			}
			p := pack.Problem{Hosts: tt.hosts, Containers: cs}
			pl, err := New(Args{Headroom: tt.headroom})
			if err != nil {
				t.Fatal(err)
			}
			dest, err := pl.Place(p)
			if err != nil {
				t.Fatal(err)
			}
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
