package codecs

import "errors"

// ErrStaleCheckpoint is what a checkpoint store returns when it holds a
// newer tick than the one saved: another instance owns the domain now.
var ErrStaleCheckpoint = errors.New("checkpoint is stale: another owner moved on")

// Checkpoint is one domain's saved state as the window hands it to a
// connector's store (live mode). Data is opaque outside the window.
type Checkpoint struct {
	// LastClosedTick is the newest tick whose effects the state holds.
	LastClosedTick int64
	Data           []byte
	// Offsets covered per input topic and partition: the offset after the
	// last record folded into this state (Kafka's commit convention).
	Offsets map[string]map[int32]int64
}

// Record is one input record read again after a restore (catch-up).
type Record struct {
	Offset int64
	Key    string
	Value  []byte
}

// HostState is one host of a domain as of a loop: capacity, the
// containers on it once the loop's moves apply, and its recent load.
type HostState struct {
	Name       string
	Capacity   map[string]float64
	Containers []string
	// RecentLoad per metric: the summed usage of the host's containers per
	// closed tick, oldest first.
	RecentLoad map[string][]float64
}
