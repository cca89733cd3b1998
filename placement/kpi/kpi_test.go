package kpi

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
)

type step struct {
	tick int64
	load map[string][]float64
	// setCap, when non-nil, is applied before the tick.
	setCap map[string][]float64
}

func TestTotals(t *testing.T) {
	tests := []struct {
		name    string
		metrics []string
		caps    map[string][]float64
		steps   []step
		want    Totals
	}{
		{
			// a: cap [4 8], b: cap [2 4], c: unknown, first seen at tick 3.
			// Utilisation (a | b): cpu .5|.5, 1.25|1, .75|0, 1|1.5 → spreads
			// 0, .125, .375, .25; mem .5|.5, .5|1.5, 1|0, .25|.25 → 0, .5,
			// .5, 0. Loads over time (c zero-filled): cpu a 2 5 3 4, b 1 2 0
			// 3, c 0 0 1 2 → variances 1.25, 1.25, .6875; mem a 4 4 8 2, b 2
			// 6 0 1, c 0 0 1 3 → 4.75, 5.1875, 1.5.
			name:    "three hosts, one late and unknown",
			metrics: []string{"cpu", "mem"},
			caps:    map[string][]float64{"a": {4, 8}, "b": {2, 4}},
			steps: []step{
				{tick: 1, load: map[string][]float64{"a": {2, 4}, "b": {1, 2}}},
				{tick: 2, load: map[string][]float64{"a": {5, 4}, "b": {2, 6}}},
				{tick: 3, load: map[string][]float64{"a": {3, 8}, "c": {1, 1}}},
				{tick: 4, load: map[string][]float64{"a": {4, 2}, "b": {3, 1}, "c": {2, 3}}},
			},
			want: Totals{
				Metrics:            []string{"cpu", "mem"},
				Ticks:              4,
				OverloadedCells:    []int{2, 1}, // cpu a@2, b@4; mem b@2 (a@3 is exactly full)
				OverloadedCellsAny: 3,
				Excess:             []float64{2, 2},
				MeanSpread:         []float64{0.1875, 0.25},
				MaxSpread:          []float64{0.375, 0.5},
				PeakUtil:           []float64{1.5, 1.5},
				HostsUsed:          3,
				MeanHostsUsed:      2.25, // 2, 2, 2, 3
				LoadVariance:       []float64{3.1875 / 3, 11.4375 / 3},
				MaxAmplitude:       []float64{3, 6},
			},
		},
		{
			// x knows only cpu (cap 2), y only mem (cap 4), z nothing.
			// Load variances: cpu x 3 1 → 1, y 1 2 → .25, z 0 9 → 20.25;
			// mem x 5 1 → 4, y 5 2 → 2.25, z 0 9 → 20.25.
			name:    "unknown capacities per metric",
			metrics: []string{"cpu", "mem"},
			caps:    map[string][]float64{"x": {2}, "y": {-1, 4}},
			steps: []step{
				{tick: 10, load: map[string][]float64{"x": {3, 5}, "y": {1, 5}}},
				{tick: 11, load: map[string][]float64{"x": {1, 1}, "y": {2, 2}, "z": {9, 9}}},
			},
			want: Totals{
				Metrics:            []string{"cpu", "mem"},
				Ticks:              2,
				OverloadedCells:    []int{1, 1},
				OverloadedCellsAny: 2,
				Excess:             []float64{1, 1},
				MeanSpread:         []float64{0, 0}, // one known host per metric
				MaxSpread:          []float64{0, 0},
				PeakUtil:           []float64{1.5, 1.25},
				HostsUsed:          3,
				MeanHostsUsed:      2.5,
				LoadVariance:       []float64{21.5 / 3, 26.5 / 3},
				MaxAmplitude:       []float64{9, 9},
			},
		},
		{
			// a's capacity arrives after tick 1, b (idle) before tick 3;
			// ticks 2 and 1 fed again are ignored. Spread: tick 1 has no
			// known host (left out), tick 2 only a (0), tick 3 a at 1 and b
			// at 0 (.5). a's load 2 2 1 → variance 2/9; b 0 0 0.
			name:    "late capacities and re-delivered ticks",
			metrics: []string{"cpu"},
			steps: []step{
				{tick: 1, load: map[string][]float64{"a": {2}}},
				{tick: 2, load: map[string][]float64{"a": {2}}, setCap: map[string][]float64{"a": {1}}},
				{tick: 2, load: map[string][]float64{"a": {100}}},
				{tick: 1, load: map[string][]float64{"a": {100}}},
				{tick: 3, load: map[string][]float64{"a": {1}}, setCap: map[string][]float64{"b": {4}}},
			},
			want: Totals{
				Metrics:            []string{"cpu"},
				Ticks:              3,
				OverloadedCells:    []int{1},
				OverloadedCellsAny: 1,
				Excess:             []float64{1},
				MeanSpread:         []float64{0.25},
				MaxSpread:          []float64{0.5},
				PeakUtil:           []float64{2},
				HostsUsed:          1,
				MeanHostsUsed:      1,
				LoadVariance:       []float64{1.0 / 9},
				MaxAmplitude:       []float64{1},
			},
		},
		{
			name:    "nothing fed",
			metrics: []string{"cpu", "mem"},
			caps:    map[string][]float64{"a": {4, 8}},
			want: Totals{
				Metrics:         []string{"cpu", "mem"},
				OverloadedCells: []int{0, 0},
				Excess:          []float64{0, 0},
				MeanSpread:      []float64{0, 0},
				MaxSpread:       []float64{0, 0},
				PeakUtil:        []float64{0, 0},
				LoadVariance:    []float64{0, 0},
				MaxAmplitude:    []float64{0, 0},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := New(tt.metrics, tt.caps)
			for _, s := range tt.steps {
				for h, c := range s.setCap {
					a.SetCapacity(h, c)
				}
				a.AddTick(s.tick, s.load)
			}
			assertTotals(t, a.Totals(), tt.want)
			// Totals must not disturb the accumulator.
			assertTotals(t, a.Totals(), tt.want)
		})
	}
}

func TestPartialTotalsThenMore(t *testing.T) {
	a := New([]string{"cpu"}, map[string][]float64{"a": {4}, "b": {4}})
	a.AddTick(1, map[string][]float64{"a": {4}})
	first := a.Totals()
	if first.Ticks != 1 || first.MaxSpread[0] != 0.5 || first.LoadVariance[0] != 0 {
		t.Fatalf("after one tick: %+v", first)
	}
	a.AddTick(2, map[string][]float64{"b": {4}})
	// a: 4 0, b: 0 4 → variance 4 each; spreads .5, .5.
	got := a.Totals()
	if got.Ticks != 2 || got.LoadVariance[0] != 4 || got.MeanSpread[0] != 0.5 || got.MeanHostsUsed != 1 || got.HostsUsed != 2 {
		t.Fatalf("after two ticks: %+v", got)
	}
	if first.Ticks != 1 {
		t.Fatal("an earlier Totals changed with later ticks")
	}
}

func TestJSONNames(t *testing.T) {
	b, err := json.Marshal(New([]string{"cpu"}, nil).Totals())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"ticks"`, `"overloaded_cells"`, `"overloaded_cells_any"`, `"excess"`, `"mean_spread"`,
		`"max_spread"`, `"peak_util"`, `"hosts_used"`, `"mean_hosts_used"`, `"load_variance"`, `"max_amplitude"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON %s lacks %s", b, key)
		}
	}
	if strings.Contains(string(b), "null") {
		t.Errorf("JSON %s has null slices", b)
	}
}

func assertTotals(t *testing.T, got, want Totals) {
	t.Helper()
	near := func(a, b []float64) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if math.Abs(a[i]-b[i]) > 1e-12 {
				return false
			}
		}
		return true
	}
	if !slices.Equal(got.Metrics, want.Metrics) || got.Ticks != want.Ticks {
		t.Errorf("metrics/ticks = %v/%d, want %v/%d", got.Metrics, got.Ticks, want.Metrics, want.Ticks)
	}
	if !slices.Equal(got.OverloadedCells, want.OverloadedCells) || got.OverloadedCellsAny != want.OverloadedCellsAny {
		t.Errorf("overloaded cells = %v any %d, want %v any %d", got.OverloadedCells, got.OverloadedCellsAny, want.OverloadedCells, want.OverloadedCellsAny)
	}
	if got.HostsUsed != want.HostsUsed || math.Abs(got.MeanHostsUsed-want.MeanHostsUsed) > 1e-12 {
		t.Errorf("hosts used = %d mean %v, want %d mean %v", got.HostsUsed, got.MeanHostsUsed, want.HostsUsed, want.MeanHostsUsed)
	}
	for _, f := range []struct {
		name      string
		got, want []float64
	}{
		{"excess", got.Excess, want.Excess},
		{"mean spread", got.MeanSpread, want.MeanSpread},
		{"max spread", got.MaxSpread, want.MaxSpread},
		{"peak util", got.PeakUtil, want.PeakUtil},
		{"load variance", got.LoadVariance, want.LoadVariance},
		{"max amplitude", got.MaxAmplitude, want.MaxAmplitude},
	} {
		if !near(f.got, f.want) {
			t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
		}
	}
}
