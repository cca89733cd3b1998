package kpi

import "testing"

func TestChurn(t *testing.T) {
	caps := map[string][]float64{"a": {10}, "b": {10}}
	load := func(a, b float64) map[string][]float64 { return map[string][]float64{"a": {a}, "b": {b}} }
	c := NewChurn(caps)
	c.AddTick(1, load(12, 5)) // a overloaded
	c.AddMove(1, "x", "a", "b")
	c.AddTick(2, load(8, 11)) // b overloaded one tick after receiving x
	c.AddTick(3, load(8, 9))
	c.AddTick(4, load(8, 9))
	c.AddMove(4, "x", "b", "a") // b calm over ticks 3-4, and back where x came from
	c.AddMove(4, "y", "a", "b")
	c.AddTick(5, load(8, 9))
	c.AddTick(6, load(8, 12)) // beyond the horizon of the tick-4 moves
	want := Churn{Moves: 3, ContainersMoved: 2, ReMoves: 1, MovesBack: 1, MovesOffCalm: 2, MovesIntoOverload: 1, Window: 2, Horizon: 1}
	if got := c.Totals(2, 1); got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}
