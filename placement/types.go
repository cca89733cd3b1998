// Package placement is the HOTS method as plain Go: windows of closed ticks,
// clustering of usage profiles, initial placement, conflict evaluation from
// closed-form marginal costs, capacity-aware re-placement and KPIs.
//
// Nothing in here knows about Watermill, Kafka, files or wall clocks: every
// mode of the service (file replay, live Kafka, benchmarks, tests) feeds the
// same Engine with closed ticks and gets the same decisions back, which is
// what makes "file replay equals Kafka run" a testable promise.
package placement

import (
	"crypto/sha1"
	"encoding/hex"
	"strconv"
)

// DefaultDomain is the domain of samples that name none.
const DefaultDomain = "default"

// Sample is one container's usage at one tick.
type Sample struct {
	Domain    string    `json:"domain,omitempty"`
	Tick      int64     `json:"tick"`
	Container string    `json:"container"`
	Host      string    `json:"host"`
	Values    []float64 `json:"values"` // aligned with Params.Metrics
	// TraceHost is the host the trace recorded when a replay re-attributed
	// the sample to the container's new host after a move; empty otherwise.
	// It lets a replay compute the no-move baseline from the same stream.
	TraceHost string `json:"trace_host,omitempty"`
	// Pinned: the input says this container must not move (the pinned
	// column or field, connector.parameters.pinned_field). The newest
	// sample of a container decides: while it says pinned no policy moves
	// the container, as if controls.pin named it; a later sample without
	// the mark unpins it.
	Pinned bool `json:"pinned,omitempty"`
}

// Host is a machine containers can run on, with one capacity per metric
// (aligned with Params.Metrics).
type Host struct {
	Name     string    `json:"name"`
	Capacity []float64 `json:"capacity"`
	// Cordoned hosts are never a move target (a nodes record with
	// schedulable: false); what runs there stays unless it must go.
	Cordoned bool `json:"cordoned,omitempty"`
}

// TickBatch is every sample of one domain for one closed tick. Samples may
// come in any order; the engine sorts what it needs.
type TickBatch struct {
	Domain  string
	Tick    int64
	Samples []Sample
}

// Move reasons.
const (
	ReasonInitial  = "initial_placement"
	ReasonConflict = "placement_conflict"
	ReasonOverload = "overload_relief"
	// ReasonRebalance: a move decided by a baseline policy (policy.Names).
	ReasonRebalance = "rebalance"
	// ReasonDrain: the source host is in Controls.DrainHosts.
	ReasonDrain = "drain"
)

// Move is a decision to run a container elsewhere from tick Tick+1 on.
type Move struct {
	ID        string `json:"id"`
	Domain    string `json:"domain"`
	Tick      int64  `json:"tick"`
	Container string `json:"container_name"`
	OldHost   string `json:"old_host"`
	NewHost   string `json:"new_host"`
	Reason    string `json:"reason"`
	// Expected effect over the evaluated window, for the operator reading
	// the moves log: the target host's peak utilisation (max over metrics and
	// ticks, load/capacity) before and after receiving the container, and the
	// source host's peak before and after losing it.
	TargetPeakBefore float64 `json:"target_peak_before"`
	TargetPeakAfter  float64 `json:"target_peak_after"`
	SourcePeakBefore float64 `json:"source_peak_before"`
	SourcePeakAfter  float64 `json:"source_peak_after"`
	// Why is the decision in words, from the engine's own numbers.
	Why string `json:"why,omitempty"`
	// DryRun: decided and published, never applied (Controls.DryRun).
	DryRun bool `json:"dry_run,omitempty"`
}

// MoveID is deterministic in (domain, tick, container) so that a consumer
// can drop the duplicates that at-least-once delivery produces.
func MoveID(domain string, tick int64, container string) string {
	h := sha1.New()
	h.Write([]byte(domain))
	h.Write([]byte{0})
	h.Write([]byte(strconv.FormatInt(tick, 10)))
	h.Write([]byte{0})
	h.Write([]byte(container))
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// GraphStats describes one conflict graph.
type GraphStats struct {
	Nodes     int     `json:"nodes"`
	Edges     int     `json:"edges"`
	MaxDegree int     `json:"max_degree"`
	MeanDeg   float64 `json:"mean_degree"`
}

// Decision is what one evaluation at a closed tick produced.
type Decision struct {
	Domain string `json:"domain"`
	Tick   int64  `json:"tick"`
	// Kind is "initial" for the end of the analysis period, "loop" after.
	Kind  string     `json:"kind"`
	Moves []Move     `json:"moves"`
	Loop  LoopReport `json:"loop"`
}

// LoopReport holds the per-loop figures the engine can compute itself. Wall
// time is measured by the caller (the engine has no clock).
type LoopReport struct {
	WindowStart    int64      `json:"window_start"`
	WindowEnd      int64      `json:"window_end"`
	Containers     int        `json:"containers"`
	Hosts          int        `json:"hosts"`
	Clusters       int        `json:"clusters"`
	ClusterGraph   GraphStats `json:"cluster_graph"`
	PlacementGraph GraphStats `json:"placement_graph"`
	ClusterChanges int        `json:"cluster_changes"`
	// Selected counts containers chosen by the conflict graph or by overload
	// relief; Moves counts those that actually found a better feasible host.
	Selected         int `json:"selected"`
	OverloadSelected int `json:"overload_selected"`
	Moves            int `json:"moves"`
	// Window overloads (host, tick) cells, with the placement before and
	// after this loop's moves projected over the window.
	WindowOverloadsBefore int `json:"window_overloads_before"`
	WindowOverloadsAfter  int `json:"window_overloads_after"`
	// InitialRejected (initial evaluation only): the heuristic's placement
	// did not lower the domain's energy over the analysis period and was
	// not applied.
	InitialRejected bool `json:"initial_rejected,omitempty"`
	// HeldBack counts, per limit (Limit* names), the moves the engine had
	// decided (container and target chosen) that an operator limit refused.
	HeldBack map[string]int `json:"held_back,omitempty"`
}
