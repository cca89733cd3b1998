// Package initial holds the initial placement heuristics run at the end of
// the analysis period. Each heuristic lives in its own folder with its Args,
// defaults and validation side by side; this file is the shared problem
// shape and the registry the engine uses.
package initial

import "hots/placement/capacity"

// Host is a placement target, in node_meta order.
type Host struct {
	Name     string
	Capacity []float64 // one per metric
}

// Container is one container to place.
type Container struct {
	ID     string
	Label  int             // cluster label
	Demand capacity.Series // [metric][tick] over the analysis period
	Host   int             // index into Problem.Hosts where it runs now, -1 if unknown
}

// Problem is the input of every heuristic. Containers are sorted by ID.
type Problem struct {
	Hosts      []Host
	Containers []Container
}

// Heuristic returns, for each container of the problem (same order), the
// index of the host it should run on. A container that fits nowhere keeps
// its current host (p.Containers[i].Host). Every metric of every host stays
// within capacity at every tick for the containers it placed.
type Heuristic interface {
	Place(p Problem) ([]int, error)
}
