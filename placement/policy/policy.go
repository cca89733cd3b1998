// Package policy holds the rebalancing policies the engine can run in place
// of the HOTS method, on the same schedule (a loop every tick_increment
// ticks over the last window_duration ticks), the same move budget
// (tol_move) and the same cool-down. Each policy lives in its own folder
// with its Args, defaults and validation side by side; this file is the
// registry and the problem shape.
//
// The HOTS method itself is the engine's own loop (placement/loop.go): it
// needs the clustering state and pair tables the engine keeps, so it is
// named here but built by the engine.
package policy

import (
	"fmt"
	"strings"

	"hots/placement/policy/internal/rebalance"
	"hots/placement/policy/lownodeload"
	"hots/placement/policy/none"
)

// Names accepted by New, as in the policy parameter.
const (
	HOTS        = "hots"
	LowNodeLoad = "lownodeload"
	None        = "none"
)

// Names lists every policy, HOTS first.
var Names = []string{HOTS, LowNodeLoad, None}

// The problem shape, shared with the policy folders.
type (
	Host      = rebalance.Host
	Container = rebalance.Container
	Problem   = rebalance.Problem
	Move      = rebalance.Move
)

// Policy decides one loop's moves. It may update p.Memory; it must not
// keep other state, so that an engine restored from a snapshot decides
// exactly what the original would have.
type Policy interface {
	Rebalance(p *Problem) []Move
}

// Args select a policy and carry every policy's parameters (one block per
// policy, the others ignored).
type Args struct {
	Name        string           `json:"name"`
	LowNodeLoad lownodeload.Args `json:"lownodeload"`
}

// SetDefaults fills zero fields: the HOTS method, and each policy's own
// defaults.
func SetDefaults(a *Args) {
	if a.Name == "" {
		a.Name = HOTS
	}
	lownodeload.SetDefaults(&a.LowNodeLoad)
}

// Validate checks a after SetDefaults.
func (a Args) Validate() error {
	switch a.Name {
	case HOTS, None:
		return nil
	case LowNodeLoad:
		return a.LowNodeLoad.Validate()
	}
	return fmt.Errorf("policy = %q: must be one of %s", a.Name, strings.Join(Names, ", "))
}

// New returns the policy a names, or nil for the HOTS method (which the
// engine runs itself).
func New(a Args) (Policy, error) {
	SetDefaults(&a)
	if err := a.Validate(); err != nil {
		return nil, err
	}
	switch a.Name {
	case LowNodeLoad:
		return lownodeload.New(a.LowNodeLoad)
	case None:
		return none.New(none.Args{})
	}
	return nil, nil
}
