package placement_test

import (
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"hots/placement"
	"hots/placement/capacity"
	"hots/placement/internal/testtrace"
	"hots/placement/kpi"
)

// traceCase is one shared trace with the parameters it is replayed with.
type traceCase struct {
	dir    string
	fields testtrace.Fields
	params placement.Params
}

// upstreamSample is upstream's sample configuration (spec 1.4).
func upstreamSample(metrics ...string) placement.Params {
	return placement.Params{Metrics: metrics, SepTime: 3, TickIncrement: 2, WindowDuration: 3, Tol: 0.1, TolMove: 0.5}
}

// synthetic is the configuration upstream was measured with on the
// synthetic traces (data/synthetic/UPSTREAM-FIGURES.md).
func synthetic() placement.Params {
	return placement.Params{Metrics: []string{"cpu"}, SepTime: 33, TickIncrement: 5, WindowDuration: 10, Tol: 0.1, TolMove: 0.5}
}

func fields(metrics ...string) testtrace.Fields {
	f := testtrace.Default
	f.Metrics = metrics
	return f
}

func allTraces() []traceCase {
	cm := []string{"cpu", "mem"}
	gen := placement.Params{Metrics: cm, SepTime: 3, TickIncrement: 2, WindowDuration: 3, Tol: 0.1, TolMove: 0.5}
	return []traceCase{
		{"upstream/thesis_ex_10", fields("cpu"), upstreamSample("cpu")},
		{"upstream/thesis_ex_10_v0.1.7", fields("cpu"), upstreamSample("cpu")},
		{"upstream/min_test_3", fields("cpu"), placement.Params{Metrics: []string{"cpu"}, SepTime: 1, TickIncrement: 1, WindowDuration: 2, Tol: 0.1, TolMove: 0.5}},
		{"upstream/random_10", fields("cpu"), upstreamSample("cpu")},
		{"upstream/generated_4", fields(cm...), placement.Params{Metrics: cm, SepTime: 1, TickIncrement: 1, WindowDuration: 2, Tol: 0.1, TolMove: 0.5}},
		{"upstream/generated_7", fields(cm...), placement.Params{Metrics: cm, SepTime: 0, TickIncrement: 1, WindowDuration: 2, Tol: 0.1, TolMove: 0.5}},
		{"upstream/generated_10", fields(cm...), gen},
		{"upstream/generated_25", fields(cm...), placement.Params{Metrics: cm, SepTime: 7, TickIncrement: 3, WindowDuration: 6, Tol: 0.1, TolMove: 0.5}},
		{"upstream/generated_30", fields(cm...), gen},
		{"upstream/alibaba18_10n", fields(cm...), placement.Params{Metrics: cm, SepTime: 16, TickIncrement: 3, WindowDuration: 6, Tol: 0.1, TolMove: 0.2}},
		{"upstream/aw_05-03-21", testtrace.Fields{Tick: "time", Container: "container_id", Host: "host", Metrics: []string{"value"}},
			placement.Params{Metrics: []string{"value"}, SepTime: 45, TickIncrement: 5, WindowDuration: 10, Tol: 0.1, TolMove: 0.2}},
		{"upstream/alibaba_short_time_interval", fields(cm...), placement.Params{Metrics: cm, SepTime: 386600, TickIncrement: 10, WindowDuration: 2, Tol: 0.1, TolMove: 0.1}},
		{"upstream/reference_runs/head_v2.0.2_new_container", fields("cpu"), upstreamSample("cpu")},
		{"synthetic/syn_n20", fields("cpu"), synthetic()},
		{"synthetic/syn_n50", fields("cpu"), synthetic()},
		{"synthetic/syn_n100", fields("cpu"), synthetic()},
		{"synthetic/syn_n200", fields("cpu"), synthetic()},
		{"synthetic/syn_n400", fields("cpu"), synthetic()},
	}
}

// overloads counts (host, tick) cells over capacity per metric, from tick
// `from` on, for hosts with a declared capacity. It is deliberately written
// apart from the engine's own KPI code.
func overloads(ticks []placement.TickBatch, hosts []placement.Host, baseline bool, from int64) []int {
	caps := map[string][]float64{}
	for _, h := range hosts {
		caps[h.Name] = h.Capacity
	}
	var out []int
	for tick, byHost := range testtrace.Loads(ticks, baseline) {
		if tick < from {
			continue
		}
		for h, load := range byHost {
			c, ok := caps[h]
			if !ok {
				continue
			}
			if out == nil {
				out = make([]int, len(load))
			}
			for m := range load {
				if load[m] > c[m]+1e-9 {
					out[m]++
				}
			}
		}
	}
	if out == nil {
		out = []int{0}
	}
	return out
}

// hostVariance is the mean over hosts of the population variance of the
// host's load over time (first metric).
func hostVariance(ticks []placement.TickBatch, baseline bool) float64 {
	series := map[string][]float64{}
	loads := testtrace.Loads(ticks, baseline)
	keys := make([]int64, 0, len(loads))
	for t := range loads {
		keys = append(keys, t)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	hosts := map[string]bool{}
	for _, m := range loads {
		for h := range m {
			hosts[h] = true
		}
	}
	for _, t := range keys {
		for h := range hosts {
			v := 0.0
			if l, ok := loads[t][h]; ok {
				v = l[0]
			}
			series[h] = append(series[h], v)
		}
	}
	var sum float64
	for _, s := range series {
		sum += capacity.Variance(s)
	}
	return sum / float64(len(series))
}

func TestNeverMoreOverloadsThanNoMoves(t *testing.T) {
	data := testtrace.DataDir(t)
	for _, tc := range allTraces() {
		t.Run(tc.dir, func(t *testing.T) {
			if testing.Short() && (tc.dir == "synthetic/syn_n400" || tc.dir == "upstream/alibaba_short_time_interval") {
				t.Skip("large trace skipped in -short")
			}
			tr := testtrace.Load(t, filepath.Join(data, tc.dir), tc.fields)
			res, err := placement.Replay("default", tc.params, tr.Hosts, tr.Ticks)
			if err != nil {
				t.Fatal(err)
			}
			base := overloads(res.Ticks, tr.Hosts, true, math.MinInt64)
			ours := overloads(res.Ticks, tr.Hosts, false, math.MinInt64)
			for m := range base {
				if ours[m] > base[m] {
					t.Errorf("metric %s: %d overloaded cells with moves, %d without", tc.params.Metrics[m], ours[m], base[m])
				}
			}
			checkMoves(t, res)
			sb, so := spread(res.Ticks, tr.Hosts, tc.params.Metrics, true), spread(res.Ticks, tr.Hosts, tc.params.Metrics, false)
			loop := loopTime(t, tc.params, tr)
			containers := map[string]bool{}
			for _, tb := range tr.Ticks {
				for _, s := range tb.Samples {
					containers[s.Container] = true
				}
			}
			// One row of the closing note's table (run with -v).
			t.Logf("| %s | %d | %d | %v → %v | %.3f → %.3f | %d | %.2f ms |", tc.dir, len(containers), len(tr.Hosts), base, ours, sb, so, len(res.Moves), loop*1e3)
		})
	}
}

// spread is the mean over ticks of the std-dev across hosts of the first
// metric's utilisation (kpi's MeanSpread).
func spread(ticks []placement.TickBatch, hosts []placement.Host, metrics []string, baseline bool) float64 {
	caps := map[string][]float64{}
	for _, h := range hosts {
		caps[h.Name] = h.Capacity
	}
	acc := kpi.New(metrics, caps)
	loads := testtrace.Loads(ticks, baseline)
	for _, tb := range ticks {
		acc.AddTick(tb.Tick, loads[tb.Tick])
	}
	return acc.Totals().MeanSpread[0]
}

// loopTime is the mean wall time of the engine calls that ran a loop.
func loopTime(t *testing.T, p placement.Params, tr *testtrace.Trace) float64 {
	e, err := placement.New("d", p, tr.Hosts)
	if err != nil {
		t.Fatal(err)
	}
	var total time.Duration
	loops := 0
	reloc := map[string]string{}
	for _, tb := range tr.Ticks {
		ss := make([]placement.Sample, len(tb.Samples))
		for i, s := range tb.Samples {
			if h, ok := reloc[s.Container]; ok {
				s.Host = h
			}
			ss[i] = s
		}
		start := time.Now()
		d, err := e.CloseTick(placement.TickBatch{Tick: tb.Tick, Samples: ss})
		el := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if d != nil && d.Kind == "loop" {
			total += el
			loops++
			for _, m := range d.Moves {
				reloc[m.Container] = m.NewHost
			}
		}
	}
	if loops == 0 {
		return 0
	}
	return total.Seconds() / float64(loops)
}

// checkMoves asserts the churn rules every run must keep: no no-op moves,
// old_host is where the container was, and ids are unique.
func checkMoves(t *testing.T, res *placement.ReplayResult) {
	t.Helper()
	where := map[string]string{}
	ids := map[string]bool{}
	mi := 0
	for _, tb := range res.Ticks {
		for _, s := range tb.Samples {
			where[s.Container] = s.Host
		}
		for mi < len(res.Moves) && res.Moves[mi].Tick == tb.Tick {
			m := res.Moves[mi]
			if m.OldHost == m.NewHost {
				t.Errorf("no-op move %+v", m)
			}
			if where[m.Container] != m.OldHost {
				t.Errorf("move %s at %d: old_host %s but container is on %s", m.Container, m.Tick, m.OldHost, where[m.Container])
			}
			where[m.Container] = m.NewHost
			if ids[m.ID] {
				t.Errorf("duplicate move id %s", m.ID)
			}
			ids[m.ID] = true
			mi++
		}
	}
	if mi != len(res.Moves) {
		t.Errorf("%d moves at ticks not in the trace", len(res.Moves)-mi)
	}
}

func TestDeterministicMoves(t *testing.T) {
	data := testtrace.DataDir(t)
	for _, dir := range []string{"synthetic/syn_n200", "upstream/generated_30"} {
		t.Run(dir, func(t *testing.T) {
			tc := allTraces()[0]
			for _, c := range allTraces() {
				if c.dir == dir {
					tc = c
				}
			}
			// generated_30 moves only through the conflict graph, so it
			// keeps that path's determinism exercised.
			tc.params.ConflictMoves = dir == "upstream/generated_30"
			tr := testtrace.Load(t, filepath.Join(data, dir), tc.fields)
			a, err := placement.Replay("d", tc.params, tr.Hosts, tr.Ticks)
			if err != nil {
				t.Fatal(err)
			}
			// Same input in another sample order: still the same moves.
			shuffled := testtrace.Load(t, filepath.Join(data, dir), tc.fields)
			for _, tb := range shuffled.Ticks {
				for i, j := 0, len(tb.Samples)-1; i < j; i, j = i+1, j-1 {
					tb.Samples[i], tb.Samples[j] = tb.Samples[j], tb.Samples[i]
				}
			}
			b, err := placement.Replay("d", tc.params, shuffled.Hosts, shuffled.Ticks)
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Moves) == 0 {
				t.Fatalf("%s: no moves at all, determinism is not exercised", dir)
			}
			if !reflect.DeepEqual(a.Moves, b.Moves) {
				t.Fatalf("moves differ between two runs:\n%v\n%v", a.Moves, b.Moves)
			}
		})
	}
}

func TestSynN100NoOverloads(t *testing.T) {
	data := testtrace.DataDir(t)
	tr := testtrace.Load(t, filepath.Join(data, "synthetic/syn_n100"), fields("cpu"))
	res, err := placement.Replay("default", synthetic(), tr.Hosts, tr.Ticks)
	if err != nil {
		t.Fatal(err)
	}
	if got := overloads(res.Ticks, tr.Hosts, false, math.MinInt64); got[0] != 0 {
		t.Errorf("syn_n100: %d overloaded cells with our moves, want 0 (upstream: 98)", got[0])
	}
}

func TestSynN200OverloadsAfterFirstLoop(t *testing.T) {
	data := testtrace.DataDir(t)
	tr := testtrace.Load(t, filepath.Join(data, "synthetic/syn_n200"), fields("cpu"))
	for _, initial := range []bool{false, true} {
		t.Run(fmt.Sprintf("initial_placement=%v", initial), func(t *testing.T) {
			p := synthetic()
			p.InitialPlacement = initial
			res, err := placement.Replay("default", p, tr.Hosts, tr.Ticks)
			if err != nil {
				t.Fatal(err)
			}
			// Tick 38 is the first tick any loop can change (first loop at
			// 33+5, moves apply from the tick after).
			base := overloads(res.Ticks, tr.Hosts, true, 39)
			ours := overloads(res.Ticks, tr.Hosts, false, 39)
			t.Logf("syn_n200 initial=%v: overloaded cells after tick 38: %d without moves -> %d with, %d moves", initial, base[0], ours[0], len(res.Moves))
			if base[0] != 110 {
				t.Errorf("baseline: %d overloaded cells, the issue measured 110", base[0])
			}
			if ours[0] > 11 {
				t.Errorf("%d overloaded cells after tick 38 with moves, want at most 11", ours[0])
			}
			if first := res.Decisions[0]; initial && (first.Kind != "initial" || len(first.Moves) == 0 || first.Loop.InitialRejected) {
				t.Errorf("initial placement not applied on syn_n200: %+v", first.Loop)
			}
			for _, m := range res.Decisions[0].Moves {
				// The heuristic's placement fits the analysis period, so the
				// expected peak of every target is within capacity.
				if m.TargetPeakAfter > 1+1e-9 {
					t.Errorf("initial move %s -> %s: expected target peak %.3f over capacity", m.Container, m.NewHost, m.TargetPeakAfter)
				}
			}
		})
	}
}

func TestThesisEx10BeatsUpstream(t *testing.T) {
	data := testtrace.DataDir(t)
	tr := testtrace.Load(t, filepath.Join(data, "upstream/thesis_ex_10"), fields("cpu"))
	res, err := placement.Replay("default", upstreamSample("cpu"), tr.Hosts, tr.Ticks)
	if err != nil {
		t.Fatal(err)
	}
	base, ours := overloads(res.Ticks, tr.Hosts, true, math.MinInt64), overloads(res.Ticks, tr.Hosts, false, math.MinInt64)
	vb, vo := hostVariance(res.Ticks, true), hostVariance(res.Ticks, false)
	t.Logf("thesis_ex_10: overloads %d -> %d, host load variance %.3f -> %.3f, %d moves", base[0], ours[0], vb, vo, len(res.Moves))
	if ours[0] > base[0] {
		t.Errorf("overloads %d -> %d (upstream 1 -> 4)", base[0], ours[0])
	}
	if !(vo < vb) {
		t.Errorf("host load variance %.3f -> %.3f, want lower (upstream 1.18 -> 4.25)", vb, vo)
	}
}
