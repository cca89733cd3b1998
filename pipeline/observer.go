// Package pipeline builds the Watermill router that every mode runs:
// decode -> window aggregate -> placement -> move publish, with only the
// connectors at both ends changing between file replay and Kafka.
package pipeline

import "hots/placement"

// LoopRecord is one engine evaluation as the run reports it.
type LoopRecord struct {
	Domain string               `json:"domain"`
	Tick   int64                `json:"tick"`
	Kind   string               `json:"kind"` // "initial" or "loop"
	Report placement.LoopReport `json:"report"`
	// LoopSeconds is the wall time of the engine call (clustering update,
	// evaluation and re-placement), measured outside the engine.
	LoopSeconds float64 `json:"loop_seconds"`
}

// Reject is one bad input record that was set aside, never silently lost.
type Reject struct {
	Source    string `json:"source"`              // file path or topic
	Line      int64  `json:"line,omitempty"`      // file line (1-based, header = 1)
	Partition int32  `json:"partition,omitempty"` // Kafka partition
	Offset    int64  `json:"offset,omitempty"`    // Kafka offset
	Field     string `json:"field,omitempty"`     // column or JSON field
	Reason    string `json:"reason"`
	Raw       string `json:"raw,omitempty"`
}

// Observer receives what a run produces, for run directories, metrics and
// progress. Calls come from one goroutine per stage; implementations must
// be safe for concurrent use across methods. Maps passed in must not be
// retained after the call returns.
type Observer interface {
	// TickClosed: each host's load per metric at a closed tick of a domain,
	// after the run's own moves (actual) and as the trace recorded it
	// (baseline, i.e. no moves).
	TickClosed(domain string, tick int64, actual, baseline map[string][]float64)
	// Decided: one engine evaluation and the moves it published.
	Decided(rec LoopRecord, moves []placement.Move)
	// Rejected: one bad input record.
	Rejected(r Reject)
	// Progress: bytes of input consumed so far and the total (0 if unknown).
	Progress(done, total int64)
}
