// Package none is the policy that never moves anything: the no-move
// baseline every other policy is compared against, run through the same
// engine and schedule.
package none

import "hots/placement/policy/internal/rebalance"

// Args has no parameters; it exists so every policy has the same shape.
type Args struct{}

// SetDefaults is a no-op.
func SetDefaults(*Args) {}

// Validate accepts anything.
func (Args) Validate() error { return nil }

// Policy makes no moves.
type Policy struct{}

// New returns the policy.
func New(Args) (*Policy, error) { return &Policy{}, nil }

// Rebalance returns no moves.
func (*Policy) Rebalance(*rebalance.Problem) []rebalance.Move { return nil }
