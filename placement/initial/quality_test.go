package initial

import (
	"testing"

	"hots/placement/initial/internal/packtest"
)

// TestQualityOnPhasedSines runs every method on the benchmark problem (four
// families of sines a quarter period apart, so families 0/2 and 1/3 are
// anti-phase) and pins the ranking the method exists for: pairing
// complementary clusters gives the flattest hosts, flatness-driven ffd
// comes next, profile-blind spread last; and the consolidating heuristics
// use fewer hosts than spread.
func TestQualityOnPhasedSines(t *testing.T) {
	bench := packtest.Bench()
	p := Problem{Hosts: make([]Host, len(bench.Hosts)), Containers: make([]Container, len(bench.Containers))}
	for i, h := range bench.Hosts {
		p.Hosts[i] = Host(h)
	}
	for i, c := range bench.Containers {
		p.Containers[i] = Container(c)
	}
	flat := map[string]float64{}
	hosts := map[string]int{}
	for _, m := range Methods {
		h, err := New(m)
		if err != nil {
			t.Fatal(err)
		}
		dest, err := h.Place(p)
		if err != nil {
			t.Fatal(err)
		}
		packtest.CheckCapacity(t, bench, dest)
		used := map[int]bool{}
		for _, d := range dest {
			if d < 0 {
				t.Fatalf("%s left a container unplaced on a problem at 70 %% load", m)
			}
			used[d] = true
		}
		flat[m], hosts[m] = packtest.Flatness(bench, dest), len(used)
	}
	t.Logf("sum of host flatness %v, hosts used %v", flat, hosts)
	if !(flat["distant_pairwise"] < flat["ffd"] && flat["ffd"] < flat["spread"]) {
		t.Errorf("flatness %v: want distant_pairwise < ffd < spread", flat)
	}
	if !(hosts["distant_pairwise"] < hosts["spread"] && hosts["ffd"] < hosts["spread"]) {
		t.Errorf("hosts used %v: want both consolidating heuristics below spread", hosts)
	}
}
