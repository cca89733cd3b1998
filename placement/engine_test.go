package placement_test

import (
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"testing"

	"hots/placement"
	"hots/placement/clustering"
	"hots/placement/internal/testtrace"
)

func sample(tick int64, c, h string, v ...float64) placement.Sample {
	return placement.Sample{Tick: tick, Container: c, Host: h, Values: v}
}

// wave is a daily-style profile: high in the first half of a 6-tick cycle
// (phase 0) or the second (phase 3).
func wave(t int64, phase int64, lo, hi float64) float64 {
	if (t+phase)%6 < 3 {
		return hi
	}
	return lo
}

func TestContainersAppearAndDisappear(t *testing.T) {
	hosts := []placement.Host{{Name: "h1", Capacity: []float64{10}}, {Name: "h2", Capacity: []float64{10}}}
	p := placement.Params{Metrics: []string{"cpu"}, SepTime: 5, TickIncrement: 2, WindowDuration: 4, Clustering: placementK(2)}
	e, err := placement.New("d", p, hosts)
	if err != nil {
		t.Fatal(err)
	}
	for tick := int64(0); tick < 14; tick++ {
		var ss []placement.Sample
		ss = append(ss, sample(tick, "a1", "h1", wave(tick, 0, 0.5, 3)), sample(tick, "a2", "h1", wave(tick, 0, 0.5, 3)))
		ss = append(ss, sample(tick, "b1", "h2", wave(tick, 3, 0.5, 3)))
		if tick < 8 { // "gone" leaves after tick 7
			ss = append(ss, sample(tick, "gone", "h2", wave(tick, 3, 0.5, 3)))
		}
		if tick >= 7 { // "new" arrives at tick 7 with a's profile, on h2; a loop runs at 7
			ss = append(ss, sample(tick, "new", "h2", wave(tick, 0, 0.5, 3)))
		}
		d, err := e.CloseTick(placement.TickBatch{Domain: "d", Tick: tick, Samples: ss})
		if err != nil {
			t.Fatalf("tick %d: %v", tick, err)
		}
		if d != nil {
			for _, m := range d.Moves {
				if m.Container == "gone" && tick >= 8 {
					t.Errorf("tick %d: move of a container that left: %+v", tick, m)
				}
			}
		}
		if tick == 6 {
			if _, ok := e.Labels()["new"]; ok {
				t.Errorf("container labelled before it appeared")
			}
		}
		if tick == 7 { // loop (5+2) that first sees "new"
			labels := e.Labels()
			if labels["new"] != labels["a1"] || labels["new"] == labels["b1"] {
				t.Errorf("newcomer labels %v: want the label of a1/a2 (same profile), not b1's", labels)
			}
		}
	}
	if _, ok := e.Placement()["gone"]; ok {
		t.Errorf("vanished container still placed: %v", e.Placement())
	}
	if _, ok := e.Labels()["gone"]; ok {
		t.Errorf("vanished container still labelled: %v", e.Labels())
	}
	if got := len(e.Placement()); got != 4 {
		t.Errorf("%d containers placed, want 4 (a1 a2 b1 new)", got)
	}
}

func placementK(k int) (a clustering.Args) {
	a.Method, a.K, a.Seed = "kmeans", k, 1
	return a
}

func TestOverloadReliefRespectsEveryMetric(t *testing.T) {
	// h1 is over its memory capacity at every tick; h2 has cpu room but no
	// memory room, h3 has both. The relieved container must go to h3, and
	// no host may end up over capacity on any metric.
	hosts := []placement.Host{
		{Name: "h1", Capacity: []float64{10, 10}},
		{Name: "h2", Capacity: []float64{10, 4}},
		{Name: "h3", Capacity: []float64{10, 10}},
	}
	p := placement.Params{Metrics: []string{"cpu", "mem"}, SepTime: 2, TickIncrement: 2, WindowDuration: 3, TolMove: 0.5, Clustering: placementK(2)}
	var ticks []placement.TickBatch
	for tick := int64(0); tick < 8; tick++ {
		ticks = append(ticks, placement.TickBatch{Tick: tick, Samples: []placement.Sample{
			sample(tick, "big", "h1", 1, 6),
			sample(tick, "small", "h1", 1, 5),
			sample(tick, "x", "h2", 1, 3.5),
			sample(tick, "y", "h3", 1, 1),
		}})
	}
	res, err := placement.Replay("d", p, hosts, ticks)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Moves) == 0 {
		t.Fatal("no move relieved h1 (mem 11 > 10)")
	}
	m := res.Moves[0]
	if m.OldHost != "h1" || m.NewHost != "h3" || m.Reason != placement.ReasonOverload {
		t.Errorf("first move %+v: want a container from h1 to h3 for overload relief", m)
	}
	caps := map[string][]float64{"h1": {10, 10}, "h2": {10, 4}, "h3": {10, 10}}
	for tick, byHost := range testtrace.Loads(res.Ticks, false) {
		if tick <= m.Tick {
			continue
		}
		for h, l := range byHost {
			for k := range l {
				if l[k] > caps[h][k]+1e-9 {
					t.Errorf("tick %d host %s metric %d: load %.2f over capacity %.2f", tick, h, k, l[k], caps[h][k])
				}
			}
		}
	}
}

func TestLateTickIsRejected(t *testing.T) {
	e, err := placement.New("d", placement.Params{SepTime: 100}, []placement.Host{{Name: "h", Capacity: []float64{1}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tick := range []int64{3, 4} {
		if _, err := e.CloseTick(placement.TickBatch{Tick: tick, Samples: []placement.Sample{sample(tick, "c", "h", 0.1)}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tick := range []int64{4, 2} {
		if _, err := e.CloseTick(placement.TickBatch{Tick: tick}); !errors.Is(err, placement.ErrLateTick) {
			t.Errorf("tick %d after 4: err %v, want ErrLateTick", tick, err)
		}
	}
	if last, _ := e.LastTick(); last != 4 {
		t.Errorf("last tick %d after late ticks, want 4", last)
	}
}

// A restart from a snapshot taken mid-trace must decide exactly what an
// uninterrupted run decides: the recovery promise of DESIGN.md.
func TestSnapshotRestoreContinuesIdentically(t *testing.T) {
	data := testtrace.DataDir(t)
	tr := testtrace.Load(t, filepath.Join(data, "synthetic/syn_n200"), fields("cpu"))
	p := synthetic()
	whole, err := placement.Replay("d", p, tr.Hosts, tr.Ticks)
	if err != nil {
		t.Fatal(err)
	}
	if len(whole.Moves) == 0 {
		t.Fatal("no moves: the comparison would be vacuous")
	}
	e, err := placement.New("d", p, tr.Hosts)
	if err != nil {
		t.Fatal(err)
	}
	var moves []placement.Move
	for i, tb := range whole.Ticks { // effective ticks: moves already applied
		if i == 57 {
			snap, err := e.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			again, err := e.Snapshot()
			if err != nil || !reflect.DeepEqual(snap, again) {
				t.Fatalf("snapshot not deterministic (%v)", err)
			}
			if e, err = placement.Restore(snap); err != nil {
				t.Fatal(err)
			}
		}
		d, err := e.CloseTick(tb)
		if err != nil {
			t.Fatal(err)
		}
		if d != nil {
			moves = append(moves, d.Moves...)
		}
	}
	if !reflect.DeepEqual(moves, whole.Moves) {
		t.Errorf("restored run: %d moves, uninterrupted %d; they differ", len(moves), len(whole.Moves))
	}
}

func TestCooldownAndChurnBudget(t *testing.T) {
	data := testtrace.DataDir(t)
	tr := testtrace.Load(t, filepath.Join(data, "synthetic/syn_n400"), fields("cpu"))
	p := synthetic()
	res, err := placement.Replay("d", p, tr.Hosts, tr.Ticks)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]int64{}
	perTick := map[int64]int{}
	for _, m := range res.Moves {
		if t0, ok := last[m.Container]; ok && m.Tick < t0+int64(p.WindowDuration) {
			t.Errorf("%s moved at %d and again at %d, inside the cool-down of %d ticks", m.Container, t0, m.Tick, p.WindowDuration)
		}
		last[m.Container] = m.Tick
		perTick[m.Tick]++
	}
	budget := int(math.Ceil(400 * p.TolMove))
	for tick, n := range perTick {
		if n > budget {
			t.Errorf("tick %d: %d moves, budget ceil(400*%.1f) = %d", tick, n, p.TolMove, budget)
		}
	}
}
