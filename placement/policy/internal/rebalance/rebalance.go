// Package rebalance is the problem shape the rebalancing policies share (a
// policy folder may not import its parent registry, so the shape lives
// here and the registry re-exports it by alias).
package rebalance

import "hots/placement/capacity"

// Host is a machine in node_meta order. Known is false when some capacity
// is undeclared: such a host may be relieved but never receives.
type Host struct {
	Name     string
	Capacity []float64
	Known    bool
}

// Container is one active container with its usage over the evaluated
// window ([metric][tick]).
type Container struct {
	ID    string
	Host  int
	Usage capacity.Series
	// Movable is false during a container's cool-down.
	Movable bool
}

// Problem is one loop's input. Containers are in ID order.
type Problem struct {
	Hosts      []Host
	Containers []Container
	// Budget is the most moves the loop may make (tol_move).
	Budget int
	// Memory holds one counter per host that survives from loop to loop
	// (and across engine snapshots); the policy owns its meaning. It is
	// as long as Hosts.
	Memory []int
}

// Move sends Containers[Container] to Hosts[To].
type Move struct {
	Container int
	To        int
}
