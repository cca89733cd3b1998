package pack

import (
	"math"
	"slices"
	"strings"
	"testing"

	"hots/placement/capacity"
)

func ctr(id string, label int, demand ...[]float64) Container {
	return Container{ID: id, Label: label, Demand: capacity.Series(demand), Host: -1}
}

func TestShape(t *testing.T) {
	hosts := []Host{{"a", []float64{4, 8}}, {"b", []float64{4, 8}}}
	tests := []struct {
		name         string
		p            Problem
		metrics, tks int
		err          string
	}{
		{"empty", Problem{}, 0, 0, ""},
		{"no containers", Problem{Hosts: hosts}, 2, 0, ""},
		{"ok", Problem{Hosts: hosts, Containers: []Container{ctr("x", 0, []float64{1, 2, 3}, []float64{1, 1, 1})}}, 2, 3, ""},
		{"host capacity length", Problem{Hosts: []Host{{"a", []float64{4}}, {"b", []float64{4, 8}}}}, 0, 0, `host "b" has 2 capacities`},
		{"metric count", Problem{Hosts: hosts, Containers: []Container{ctr("x", 0, []float64{1})}}, 0, 0, `container "x" has demand for 1 metrics`},
		{"ragged ticks", Problem{Hosts: hosts, Containers: []Container{ctr("x", 0, []float64{1, 2}, []float64{1})}}, 0, 0, `metric 1 has 1 ticks, want 2`},
		{"ticks differ between containers", Problem{Hosts: hosts, Containers: []Container{
			ctr("x", 0, []float64{1, 2}, []float64{1, 1}), ctr("y", 0, []float64{1}, []float64{1})}}, 0, 0, `container "y" metric 0 has 1 ticks`},
		{"nan demand", Problem{Hosts: hosts, Containers: []Container{ctr("x", 0, []float64{math.NaN()}, []float64{1})}}, 0, 0, "not finite"},
		{"host out of range", Problem{Hosts: hosts, Containers: []Container{{ID: "x", Demand: capacity.Series{{1}, {1}}, Host: 2}}}, 0, 0, "host index 2, want -1..1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, tk, err := tt.p.Shape()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil || m != tt.metrics || tk != tt.tks {
				t.Fatalf("Shape() = %d, %d, %v; want %d, %d, nil", m, tk, err, tt.metrics, tt.tks)
			}
		})
	}
}

func TestByPeakDescTiesByID(t *testing.T) {
	p := Problem{
		Hosts: []Host{{"a", []float64{4, 10}}},
		Containers: []Container{
			ctr("d", 0, []float64{1, 1}, []float64{1, 1}), // peak .25, total .7
			ctr("b", 0, []float64{2, 0}, []float64{0, 0}), // peak .5, total .5
			ctr("c", 0, []float64{1, 1}, []float64{1, 1}), // same as d
			ctr("a", 0, []float64{0, 0}, []float64{5, 5}), // peak .5, total 1
		},
	}
	ref := p.RefCapacity(2)
	got := p.ByPeakDesc([]int{0, 1, 2, 3}, ref)
	want := []int{3, 1, 2, 0} // a, b, c, d
	if !slices.Equal(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
}

func TestRefCapacitySkipsUnknown(t *testing.T) {
	p := Problem{Hosts: []Host{{"a", []float64{4, 0}}, {"b", []float64{8, -1}}, {"c", []float64{math.NaN(), 0}}}}
	if got := p.RefCapacity(2); !slices.Equal(got, []float64{6, 1}) {
		t.Fatalf("RefCapacity = %v, want [6 1]", got)
	}
}

func TestClustersAndPairVariance(t *testing.T) {
	p := Problem{
		Hosts: []Host{{"a", []float64{2}}, {"b", []float64{2}}},
		Containers: []Container{
			ctr("c2", 0, []float64{2, 2}),
			ctr("c4", 7, []float64{1, 1}),
			ctr("c1", 0, []float64{0, 2}),
			ctr("c3", 5, []float64{2, 0}),
		},
	}
	cs := p.Clusters(1, 2)
	wantLabels := []int{0, 5, 7}
	wantMembers := [][]int{{2, 0}, {3}, {1}}
	wantProfiles := [][]float64{{1, 2}, {2, 0}, {1, 1}}
	if len(cs) != 3 {
		t.Fatalf("%d clusters, want 3", len(cs))
	}
	for k, c := range cs {
		if c.Label != wantLabels[k] || !slices.Equal(c.Members, wantMembers[k]) || !slices.Equal(c.Profile[0], wantProfiles[k]) {
			t.Errorf("cluster %d = %+v, want label %d members %v profile %v", k, c, wantLabels[k], wantMembers[k], wantProfiles[k])
		}
	}
	// Sums scaled by 2: {0,5}: [1.5 1] → .0625; {0,7}: [1 1.5] → .0625;
	// {5,7}: [1.5 .5] → .25.
	s := PairVariance(cs, p.RefCapacity(1))
	want := [][]float64{{0, .0625, .0625}, {.0625, 0, .25}, {.0625, .25, 0}}
	for a := range want {
		for b := range want[a] {
			if math.Abs(s[a][b]-want[a][b]) > 1e-12 {
				t.Errorf("S[%d][%d] = %v, want %v", a, b, s[a][b], want[a][b])
			}
		}
	}
}

func TestBookKeepChargesCurrentHost(t *testing.T) {
	p := Problem{
		Hosts: []Host{{"a", []float64{4}}, {"b", []float64{4}}},
		Containers: []Container{
			{ID: "huge", Demand: capacity.Series{{3, 9}}, Host: 1},
			{ID: "x", Demand: capacity.Series{{2, 2}}, Host: -1},
			{ID: "lost", Demand: capacity.Series{{5, 5}}, Host: -1},
		},
	}
	b, err := NewBook(p, 1, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	b.Assign(1, 0)
	b.Assign(1, 0)
	// Two copies of x fill host a at 4; huge fits nowhere and stays on b,
	// whose load now holds it.
	if b.FirstFit(0) != -1 {
		t.Fatal("huge was placed")
	}
	if !slices.Equal(b.Load(1)[0], []float64{3, 9}) || !b.Used(1) {
		t.Fatalf("host b load = %v used=%v, want [3 9] used", b.Load(1)[0], b.Used(1))
	}
	if h := b.FirstFit(2); h != -1 {
		t.Fatalf("lost placed on %d", h)
	}
	if got := b.Result(); !slices.Equal(got, []int{1, 0, -1}) {
		t.Fatalf("Result = %v, want [1 0 -1]", got)
	}
	if _, err := NewBook(p, 1, 2, 0); err == nil {
		t.Fatal("headroom 0 accepted")
	}
}

func TestMinHosts(t *testing.T) {
	two := []Container{ctr("x", 0, []float64{3, 5}, []float64{1, 1}), ctr("y", 0, []float64{3, 1}, []float64{1, 7})}
	tests := []struct {
		name     string
		hosts    []Host
		cs       []Container
		headroom float64
		want     int
	}{
		{"no hosts", nil, two, 1, 0},
		{"no demand", []Host{{"a", []float64{4, 4}}, {"b", []float64{4, 4}}}, nil, 1, 1},
		// Peaks: cpu 6 at tick 0, memory 8 at tick 1.
		{"cpu binds", []Host{{"a", []float64{4, 10}}, {"b", []float64{4, 10}}, {"c", []float64{4, 10}}}, two, 1, 2},
		{"memory binds", []Host{{"a", []float64{10, 3}}, {"b", []float64{10, 3}}, {"c", []float64{10, 3}}, {"d", []float64{10, 3}}}, two, 1, 3},
		{"headroom", []Host{{"a", []float64{10, 4}}, {"b", []float64{10, 4}}, {"c", []float64{10, 4}}, {"d", []float64{10, 4}}}, two, 0.5, 4},
		{"unknown capacity adds nothing", []Host{{"a", []float64{0, 10}}, {"b", []float64{6, 10}}}, two, 1, 2},
		{"never enough", []Host{{"a", []float64{1, 1}}}, two, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Problem{Hosts: tt.hosts, Containers: tt.cs}
			if got := p.MinHosts(2, 2, tt.headroom); got != tt.want {
				t.Fatalf("MinHosts = %d, want %d", got, tt.want)
			}
		})
	}
}
