package state

import (
	"context"
	"fmt"
	"testing"
	"time"

	"hots/connectors/kafka/devbroker"
)

// BenchmarkSaveProgress measures one read-your-writes save (emit, process,
// visible in the view) of a 4 KiB checkpoint, round-robin over 8 domains.
func BenchmarkSaveProgress(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	br, err := devbroker.Start(devbroker.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	s, err := Open(ctx, StateOptions{Brokers: br.Addrs(), Group: "bench-state", Partitions: 3})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.WaitRecovered(ctx); err != nil {
		b.Fatal(err)
	}
	checkpoint := make([]byte, 4096)
	var tick int64
	for b.Loop() {
		tick++
		p := Progress{LastClosedTick: tick, Checkpoint: checkpoint, Offsets: map[string]map[int32]int64{"usage": {0: tick}}}
		if err := s.SaveProgress(ctx, fmt.Sprintf("d%d", tick%8), p); err != nil {
			b.Fatal(err)
		}
	}
}
