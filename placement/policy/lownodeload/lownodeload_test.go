package lownodeload

import (
	"reflect"
	"testing"

	"hots/placement/capacity"
	"hots/placement/policy/internal/rebalance"
)

// flat is a constant usage of v over 4 ticks.
func flat(v float64) capacity.Series { return capacity.Series{{v, v, v, v}} }

func problem(memory []int, budget int, cs ...rebalance.Container) *rebalance.Problem {
	p := &rebalance.Problem{Budget: budget, Memory: memory, Containers: cs}
	for _, n := range []string{"h0", "h1", "h2"} {
		p.Hosts = append(p.Hosts, rebalance.Host{Name: n, Capacity: []float64{10}, Known: true})
	}
	return p
}

func TestRebalance(t *testing.T) {
	busy := func(memory []int, budget int, movable bool) *rebalance.Problem {
		// h0 at 80 %, h1 at 10 %, h2 at 40 %.
		return problem(memory, budget,
			rebalance.Container{ID: "a", Host: 0, Usage: flat(5), Movable: movable},
			rebalance.Container{ID: "b", Host: 0, Usage: flat(2), Movable: movable},
			rebalance.Container{ID: "c", Host: 0, Usage: flat(1), Movable: movable},
			rebalance.Container{ID: "d", Host: 1, Usage: flat(1), Movable: true},
			rebalance.Container{ID: "e", Host: 2, Usage: flat(4), Movable: true},
		)
	}
	tests := []struct {
		name       string
		p          *rebalance.Problem
		want       []rebalance.Move
		wantMemory []int
	}{
		{"first abnormal loop is debounced", busy([]int{0, 0, 0}, 10, true), nil, []int{1, 0, 0}},
		// a (5) would push h1 to 60 %, under 70 %; h0 drops to 30 %.
		{"second loop moves the biggest to the least-loaded low host", busy([]int{1, 0, 0}, 10, true),
			[]rebalance.Move{{Container: 0, To: 1}}, []int{2, 0, 0}},
		{"budget zero moves nothing", busy([]int{1, 0, 0}, 0, true), nil, []int{2, 0, 0}},
		{"cool-down is respected", busy([]int{1, 0, 0}, 10, false), nil, []int{2, 0, 0}},
		{"a calm host resets its streak", problem([]int{5, 3, 0}, 10,
			rebalance.Container{ID: "a", Host: 0, Usage: flat(3), Movable: true}), nil, []int{0, 0, 0}},
	}
	pl, err := New(Args{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pl.Rebalance(tt.p)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("moves %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(tt.p.Memory, tt.wantMemory) {
				t.Errorf("memory %v, want %v", tt.p.Memory, tt.wantMemory)
			}
		})
	}
}

func TestArgs(t *testing.T) {
	for _, tt := range []struct {
		a  Args
		ok bool
	}{
		{Args{}, true},
		{Args{Low: 0.8, High: 0.5}, false},
		{Args{High: 1.5}, false},
		{Args{Debounce: -1}, false},
	} {
		SetDefaults(&tt.a)
		if err := tt.a.Validate(); (err == nil) != tt.ok {
			t.Errorf("%+v: err %v, want ok=%v", tt.a, err, tt.ok)
		}
	}
}
