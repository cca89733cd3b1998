package kpi

import (
	"reflect"
	"testing"
)

func TestCompare(t *testing.T) {
	caps := map[string][]float64{"a": {4}, "b": {4}}
	// Baseline: both containers stay on a (load 6 then 2); run: one moved
	// to b after tick 1 (a 6 then 1, b 0 then 1).
	base := New([]string{"cpu"}, caps)
	base.AddTick(1, map[string][]float64{"a": {6}})
	base.AddTick(2, map[string][]float64{"a": {5}})
	run := New([]string{"cpu"}, caps)
	run.AddTick(1, map[string][]float64{"a": {6}})
	run.AddTick(2, map[string][]float64{"a": {3}, "b": {2}})

	got := run.Totals().Compare(base.Totals())
	// Base: overloads 2 (excess 2+1), spreads .75 .625, peak 1.5, hosts 1,
	// variances (.25+0)/2, amplitude 1. Run: overloads 1 (excess 2),
	// spreads .75 .125, peak 1.5, hosts 2 (1, 2 per tick), variances
	// (2.25+1)/2, amplitude 3.
	want := Delta{
		OverloadedCells:    []int{-1},
		OverloadedCellsAny: -1,
		Excess:             []float64{-1},
		MeanSpread:         []float64{-0.25},
		MaxSpread:          []float64{0},
		PeakUtil:           []float64{0},
		HostsUsed:          1,
		MeanHostsUsed:      0.5,
		LoadVariance:       []float64{1.5},
		MaxAmplitude:       []float64{2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Compare =\n%+v\nwant\n%+v", got, want)
	}
}

func TestCompareMissingBaselineMetric(t *testing.T) {
	run := Totals{OverloadedCells: []int{3, 4}, Excess: []float64{1, 2}}
	got := run.Compare(Totals{OverloadedCells: []int{1}})
	if !reflect.DeepEqual(got.OverloadedCells, []int{2, 4}) || !reflect.DeepEqual(got.Excess, []float64{1, 2}) {
		t.Fatalf("Compare = %+v", got)
	}
}
