// Package packtest holds the checks every initial placement heuristic must
// pass, written without the pack.Book arithmetic they are checking, so a
// heuristic and its test cannot share a bug.
package packtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"hots/placement/capacity"
	"hots/placement/initial/internal/pack"
)

// PlaceFunc is a heuristic under test.
type PlaceFunc func(pack.Problem) ([]int, error)

// CheckCapacity fails t if, summing the demands of the containers dest puts
// on each host (skipping the indices in stuck, which fit nowhere and were
// left where they are), any host exceeds its capacity on any metric at any
// tick.
func CheckCapacity(t testing.TB, p pack.Problem, dest []int, stuck ...int) {
	t.Helper()
	if len(dest) != len(p.Containers) {
		t.Fatalf("%d destinations for %d containers", len(dest), len(p.Containers))
	}
	for h, host := range p.Hosts {
		for m, c := range host.Capacity {
			ticks := 0
			if len(p.Containers) > 0 {
				ticks = len(p.Containers[0].Demand[m])
			}
			for tk := 0; tk < ticks; tk++ {
				var sum float64
				for i, d := range dest {
					if d == h && !slices.Contains(stuck, i) {
						sum += p.Containers[i].Demand[m][tk]
					}
				}
				if sum > c*(1+1e-9) || (sum > 0 && !(c > 0)) {
					t.Errorf("host %s metric %d tick %d: load %v over capacity %v", host.Name, m, tk, sum, c)
				}
			}
		}
	}
}

// Flatness is the sum over hosts of capacity.Flatness of each host's load.
func Flatness(p pack.Problem, dest []int) float64 {
	var total float64
	for h, host := range p.Hosts {
		var load capacity.Series
		for i, d := range dest {
			if d != h {
				continue
			}
			if load == nil {
				load = p.Containers[i].Demand.Clone()
			} else {
				load.Add(p.Containers[i].Demand)
			}
		}
		if load != nil {
			total += capacity.Flatness(load, host.Capacity)
		}
	}
	return total
}

// C builds a container with no current host.
func C(id string, label int, demand ...[]float64) pack.Container {
	return pack.Container{ID: id, Label: label, Demand: capacity.Series(demand), Host: -1}
}

// H builds hosts named h0, h1, … with the same capacity.
func H(n int, capacity ...float64) []pack.Host {
	hs := make([]pack.Host, n)
	for i := range hs {
		hs[i] = pack.Host{Name: fmt.Sprintf("h%d", i), Capacity: capacity}
	}
	return hs
}

// Sine is a demand series base + amp·sin(2π(t+phase)/period) over ticks.
func Sine(ticks int, base, amp, phase, period float64) []float64 {
	s := make([]float64, ticks)
	for t := range s {
		s[t] = base + amp*math.Sin(2*math.Pi*(float64(t)+phase)/period)
	}
	return s
}

// Flat is a constant demand series.
func Flat(ticks int, v float64) []float64 {
	s := make([]float64, ticks)
	for t := range s {
		s[t] = v
	}
	return s
}

// Conformance runs the checks shared by every heuristic.
func Conformance(t *testing.T, place PlaceFunc) {
	t.Run("memory binds", func(t *testing.T) {
		// CPU would allow 10 per host; memory allows 2.
		var cs []pack.Container
		for i := range 6 {
			cs = append(cs, C(fmt.Sprintf("c%d", i), i%2, []float64{1, 1, 1}, []float64{2, 1.5, 2}))
		}
		p := pack.Problem{Hosts: H(3, 10, 4), Containers: cs}
		dest := mustPlace(t, place, p)
		CheckCapacity(t, p, dest)
		count := make([]int, 3)
		for _, d := range dest {
			if d < 0 {
				t.Fatalf("a container was left unplaced: %v", dest)
			}
			count[d]++
		}
		if !slices.Equal(count, []int{2, 2, 2}) {
			t.Fatalf("containers per host = %v, want [2 2 2] (memory allows two each)", count)
		}
	})
	t.Run("fit nowhere stays put", func(t *testing.T) {
		p := pack.Problem{Hosts: H(2, 4, 4), Containers: []pack.Container{
			{ID: "a", Demand: capacity.Series{{1, 1}, {1, 1}}, Host: -1},
			{ID: "memspike", Demand: capacity.Series{{1, 1}, {1, 5}}, Host: 1},
			{ID: "nowhere", Demand: capacity.Series{{9, 1}, {1, 1}}, Host: -1},
			{ID: "z", Demand: capacity.Series{{1, 1}, {1, 1}}, Host: 0},
		}}
		dest := mustPlace(t, place, p)
		if dest[1] != 1 || dest[2] != -1 {
			t.Fatalf("dest = %v, want memspike on 1 and nowhere on -1", dest)
		}
		if dest[0] < 0 || dest[3] < 0 {
			t.Fatalf("dest = %v: placeable containers were not placed", dest)
		}
		CheckCapacity(t, p, dest, 1, 2)
	})
	t.Run("unknown capacity never receives", func(t *testing.T) {
		hosts := []pack.Host{{Name: "blind", Capacity: []float64{0, 8}}, {Name: "ok", Capacity: []float64{8, 8}}}
		p := pack.Problem{Hosts: hosts, Containers: []pack.Container{
			C("a", 0, []float64{1}, []float64{1}), C("b", 1, []float64{1}, []float64{1}),
		}}
		dest := mustPlace(t, place, p)
		if !slices.Equal(dest, []int{1, 1}) {
			t.Fatalf("dest = %v, want both on the host with known capacity", dest)
		}
	})
	t.Run("no hosts", func(t *testing.T) {
		p := pack.Problem{Containers: []pack.Container{C("a", 0, []float64{1})}}
		if dest := mustPlace(t, place, p); !slices.Equal(dest, []int{-1}) {
			t.Fatalf("dest = %v, want [-1]", dest)
		}
	})
	t.Run("no containers", func(t *testing.T) {
		if dest := mustPlace(t, place, pack.Problem{Hosts: H(2, 1)}); len(dest) != 0 {
			t.Fatalf("dest = %v, want empty", dest)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		p := pack.Problem{Hosts: H(1, 4, 4), Containers: []pack.Container{C("a", 0, []float64{1})}}
		if _, err := place(p); err == nil {
			t.Fatal("a container with one metric on two-metric hosts was accepted")
		}
	})
	t.Run("shuffled input, same answer", func(t *testing.T) {
		// Equal demands in two shapes and labels: only IDs can break ties.
		var cs []pack.Container
		for i := range 12 {
			d := []float64{2, 1, 2}
			if i%3 == 0 {
				d = []float64{1, 2, 1}
			}
			cs = append(cs, C(fmt.Sprintf("c%02d", i), i%3%2, d, []float64{1, 1, 1}))
		}
		p := pack.Problem{Hosts: H(5, 6, 4), Containers: cs}
		want := byID(p, mustPlace(t, place, p))
		CheckCapacity(t, p, mustPlace(t, place, p))
		rng := rand.New(rand.NewPCG(1, 2))
		for range 5 {
			q := pack.Problem{Hosts: p.Hosts, Containers: slices.Clone(cs)}
			rng.Shuffle(len(q.Containers), func(i, j int) { q.Containers[i], q.Containers[j] = q.Containers[j], q.Containers[i] })
			got := byID(q, mustPlace(t, place, q))
			for id, h := range want {
				if got[id] != h {
					t.Fatalf("shuffled input put %s on %d, sorted input on %d", id, got[id], h)
				}
			}
		}
	})
}

func mustPlace(t *testing.T, place PlaceFunc, p pack.Problem) []int {
	t.Helper()
	dest, err := place(p)
	if err != nil {
		t.Fatalf("Place: %v", err)
	}
	return dest
}

func byID(p pack.Problem, dest []int) map[string]int {
	m := map[string]int{}
	for i, c := range p.Containers {
		m[c.ID] = dest[i]
	}
	return m
}

// Bench returns the benchmark problem: 1,000 containers of 4 profile
// families over 100 hosts, 12 ticks, 2 metrics, filled to about 70 %.
func Bench() pack.Problem {
	const n, hosts, ticks = 1000, 100, 12
	rng := rand.New(rand.NewPCG(7, 11))
	cs := make([]pack.Container, n)
	for i := range cs {
		fam := i % 4
		scale := 0.5 + rng.Float64()
		cpu := Sine(ticks, 0.7*scale, 0.5*scale, float64(fam)*3, ticks)
		mem := Flat(ticks, 1.4*scale)
		cs[i] = C(fmt.Sprintf("c%04d", i), fam, cpu, mem)
		cs[i].Host = i % hosts
	}
	return pack.Problem{Hosts: H(hosts, 10, 20), Containers: cs}
}
