// Package state keeps hots's live-mode state in goka group tables (Kafka
// compacted topics), as DESIGN.md "State and recovery" describes: a
// per-host table and a per-domain progress table. Writes go as update
// events through a goka Emitter to a state stream; a goka Processor with
// goka.Persist folds them into its group table; goka Views read the tables
// back from any instance, so the new owner of a domain after a crash or a
// rebalance restores what the old one saved.
package state

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// Progress is what a domain's owner needs to resume exactly where the last
// checkpoint ended.
type Progress struct {
	// LastClosedTick is the newest tick whose effects the checkpoint holds.
	LastClosedTick int64 `json:"last_closed_tick"`
	// Checkpoint is the engine's open state, opaque here (base64 in JSON).
	// A record must stay under the broker's message.max.bytes (1 MB by
	// default, after goka's snappy compression).
	Checkpoint []byte `json:"checkpoint,omitempty"`
	// Offsets covered per input topic and partition, as the next offset to
	// read (Kafka's commit convention: last applied + 1).
	Offsets map[string]map[int32]int64 `json:"offsets,omitempty"`
	// The table record itself never holds a large Checkpoint: SaveProgress
	// writes it as Chunks records of the chunk table (generation Gen, in
	// the slots of parity Gen%2, so a crash mid-write leaves the previous
	// generation whole) and LoadProgress puts it back together, checking
	// Size and Sum (SHA-256, hex).
	Gen    int64  `json:"gen,omitempty"`
	Chunks int    `json:"chunks,omitempty"`
	Size   int    `json:"size,omitempty"`
	Sum    string `json:"sum,omitempty"`
}

// Chunk is one piece of a domain's checkpoint: a record of the chunk table,
// binary (a checkpoint is gzipped already, base64 would only grow it).
type Chunk struct {
	Tick int64
	Gen  int64
	Data []byte
}

// HostState is one host as the domain owner last saw it.
type HostState struct {
	Domain string `json:"domain,omitempty"`
	// Tick the state is as of.
	Tick int64 `json:"tick"`
	// Capacity per metric name.
	Capacity map[string]float64 `json:"capacity"`
	// Containers running on the host, sorted.
	Containers []string `json:"containers"`
	// RecentLoad per metric name: the host's load over its last ticks,
	// oldest first.
	RecentLoad map[string][]float64 `json:"recent_load,omitempty"`
}

func (p Progress) tick() int64  { return p.LastClosedTick }
func (h HostState) tick() int64 { return h.Tick }
func (c Chunk) tick() int64     { return c.Tick }

type ticked interface {
	Progress | HostState | Chunk
	tick() int64
}

// chunkCodec is the goka codec of Chunk: tick and generation as 8 bytes
// each, then the data.
type chunkCodec struct{}

func (chunkCodec) Encode(value any) ([]byte, error) {
	var c Chunk
	switch v := value.(type) {
	case Chunk:
		c = v
	case *Chunk:
		c = *v
	default:
		return nil, fmt.Errorf("state codec: got %T, want Chunk", value)
	}
	out := make([]byte, 16, 16+len(c.Data))
	binary.BigEndian.PutUint64(out, uint64(c.Tick))
	binary.BigEndian.PutUint64(out[8:], uint64(c.Gen))
	return append(out, c.Data...), nil
}

func (chunkCodec) Decode(data []byte) (any, error) {
	if len(data) < 16 {
		return nil, fmt.Errorf("state codec: a chunk of %d bytes", len(data))
	}
	return Chunk{Tick: int64(binary.BigEndian.Uint64(data)), Gen: int64(binary.BigEndian.Uint64(data[8:])),
		Data: append([]byte(nil), data[16:]...)}, nil
}

// jsonCodec is the goka codec for one value type: JSON, so the tables stay
// readable with kcat.
type jsonCodec[T ticked] struct{}

func (jsonCodec[T]) Encode(value any) ([]byte, error) {
	switch v := value.(type) {
	case T:
		return json.Marshal(v)
	case *T:
		return json.Marshal(v)
	default:
		var zero T
		return nil, fmt.Errorf("state codec: got %T, want %T", value, zero)
	}
}

func (jsonCodec[T]) Decode(data []byte) (any, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		var zero T
		return nil, fmt.Errorf("state codec: decode %T: %w", zero, err)
	}
	return v, nil
}
