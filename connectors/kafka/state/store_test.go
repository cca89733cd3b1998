package state

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"hots/connectors/kafka/devbroker"
)

func open(ctx context.Context, t *testing.T, brokers []string) *Store {
	t.Helper()
	s, err := Open(ctx, StateOptions{Brokers: brokers, Group: "test-state", Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitRecovered(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func progress(tick int64, checkpoint string, offset int64) Progress {
	return Progress{
		LastClosedTick: tick,
		Checkpoint:     []byte(checkpoint),
		Offsets:        map[string]map[int32]int64{"usage": {0: offset, 2: offset + 7}},
	}
}

func host(tick int64, containers ...string) HostState {
	return HostState{
		Domain: "eu", Tick: tick,
		Capacity:   map[string]float64{"cpu": 8, "mem": 32},
		Containers: containers,
		RecentLoad: map[string][]float64{"cpu": {1.5, 2.25, float64(tick)}},
	}
}

// Saves are visible at once in the same process, and a fresh Store (a new
// process: new group member, empty local storage) restores the latest value
// of every key from Kafka alone.
func TestSavedStateIsRestoredByAFreshStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b, err := devbroker.Start(devbroker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	wantProgress := map[string]Progress{}
	wantHosts := map[string]HostState{}
	s1 := open(ctx, t, b.Addrs())
	steps := []struct {
		domain string
		p      Progress
	}{
		{"eu", progress(10, "eu-10", 100)},
		{"us", progress(4, "us-4", 40)},
		{"eu", progress(12, "eu-12", 130)},  // overwrite: the latest must win
		{"eu", progress(12, "eu-12b", 131)}, // same tick, new checkpoint: still the latest
	}
	for _, st := range steps {
		if err := s1.SaveProgress(ctx, st.domain, st.p); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s1.LoadProgress(st.domain)
		if err != nil || !ok || !reflect.DeepEqual(got, st.p) {
			t.Fatalf("read after save of %s: got %+v ok=%v err=%v, want %+v", st.domain, got, ok, err, st.p)
		}
		wantProgress[st.domain] = st.p
	}
	for _, st := range []struct {
		host string
		h    HostState
	}{
		{"h1", host(10, "c1", "c2")},
		{"h2", host(10, "c3")},
		{"h1", host(11, "c2")},
	} {
		if err := s1.SaveHost(ctx, st.host, st.h); err != nil {
			t.Fatal(err)
		}
		wantHosts[st.host] = st.h
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := open(ctx, t, b.Addrs())
	defer s2.Close()
	for domain, want := range wantProgress {
		got, ok, err := s2.LoadProgress(domain)
		if err != nil || !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("restored %s: got %+v ok=%v err=%v, want %+v", domain, got, ok, err, want)
		}
	}
	for h, want := range wantHosts {
		got, ok, err := s2.LoadHost(h)
		if err != nil || !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("restored host %s: got %+v ok=%v err=%v, want %+v", h, got, ok, err, want)
		}
	}
	if _, ok, err := s2.LoadProgress("never-saved"); ok || err != nil {
		t.Errorf("unknown domain: ok=%v err=%v", ok, err)
	}

	// The restored store goes on writing, and an older tick (a former
	// owner's late write) cannot roll the domain back.
	if err := s2.SaveProgress(ctx, "us", progress(5, "us-5", 50)); err != nil {
		t.Fatal(err)
	}
	err = s2.SaveProgress(ctx, "us", progress(3, "us-3", 30))
	if !errors.Is(err, ErrStale) {
		t.Fatalf("save of an older tick: err = %v, want ErrStale", err)
	}
	if got, _, _ := s2.LoadProgress("us"); got.LastClosedTick != 5 {
		t.Fatalf("after a stale save the table holds tick %d, want 5", got.LastClosedTick)
	}
}

func TestCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		codec interface {
			Encode(any) ([]byte, error)
			Decode([]byte) (any, error)
		}
		in any
	}{
		{"progress", jsonCodec[Progress]{}, progress(3, "\x00\xffbinary", 9)},
		{"host", jsonCodec[HostState]{}, host(2, "a", "b")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := tc.codec.Encode(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := tc.codec.Decode(data)
			if err != nil || !reflect.DeepEqual(out, tc.in) {
				t.Fatalf("got %+v, %v; want %+v", out, err, tc.in)
			}
			if _, err := tc.codec.Encode("not a state"); err == nil {
				t.Fatal("encoding a wrong type succeeded")
			}
		})
	}
}

// Two instances in one group share the table partitions between their
// processors, yet each reads every key through its view: what one saves, the other (the next owner of
// the domain after a rebalance) restores. Costs one goka rebalance (about
// a second: rejoiningGroupBuilder skips goka's own 5 s pause).
func TestTwoInstancesReadEachOthersSaves(t *testing.T) {
	if testing.Short() {
		t.Skip("a goka rebalance against the embedded broker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b, err := devbroker.Start(devbroker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a := open(ctx, t, b.Addrs())
	defer a.Close()
	c := open(ctx, t, b.Addrs())
	defer c.Close()
	// After c joined, a's processor rebalances; wait until both run again.
	for _, s := range []*Store{a, c} {
		if err := s.WaitRecovered(ctx); err != nil {
			t.Fatal(err)
		}
	}
	domains := []string{"d0", "d1", "d2", "d3", "d4", "d5"}
	for i, d := range domains {
		writer := []*Store{a, c}[i%2]
		if err := writer.SaveProgress(ctx, d, progress(int64(i+1), d, int64(i))); err != nil {
			t.Fatalf("save %s: %v", d, err)
		}
	}
	for i, d := range domains {
		reader := []*Store{c, a}[i%2]
		want := progress(int64(i+1), d, int64(i))
		for {
			got, ok, err := reader.LoadProgress(d)
			if err != nil {
				t.Fatal(err)
			}
			if ok && reflect.DeepEqual(got, want) {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s written by one instance never visible to the other: got %+v ok=%v", d, got, ok)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// A checkpoint of any size is stored as records far below Kafka's limit:
// against a broker enforcing the default message.max.bytes, 3 MB of
// incompressible state round-trips through a fresh store, every chunk
// record is at most ChunkBytes, and a save that dies between its chunks and
// its progress record leaves the previous generation whole.
func TestLargeCheckpointsAreChunked(t *testing.T) {
	b, err := devbroker.Start(devbroker.Options{Partitions: 3, BrokerConfigs: map[string]string{"message.max.bytes": "1048588"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s1 := open(ctx, t, b.Addrs())
	big := make([]byte, 3<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	p := Progress{LastClosedTick: 7, Checkpoint: big, Offsets: map[string]map[int32]int64{"usage": {1: 99}}}
	if err := s1.SaveProgress(ctx, "big", p); err != nil {
		t.Fatal(err)
	}
	raw, _, _ := load(s1.progress, "big")
	if want := (3<<20 + DefaultChunkBytes - 1) / DefaultChunkBytes; raw.Chunks != want || raw.Gen != 1 || raw.Checkpoint != nil {
		t.Fatalf("progress record %+v: want %d chunks of generation 1 and no inline checkpoint", raw, want)
	}
	for i := range raw.Chunks {
		c, ok, _ := load(s1.chunks, chunkKey("big", 1, i))
		if !ok || len(c.Data) > DefaultChunkBytes {
			t.Fatalf("chunk %d: %d bytes (ok %v)", i, len(c.Data), ok)
		}
	}
	s1.Close()
	s2 := open(ctx, t, b.Addrs())
	defer s2.Close()
	got, ok, err := s2.LoadProgress("big")
	if err != nil || !ok || !bytes.Equal(got.Checkpoint, big) || got.LastClosedTick != 7 || got.Offsets["usage"][1] != 99 {
		t.Fatalf("restored: ok %v err %v, %d bytes equal %v", ok, err, len(got.Checkpoint), bytes.Equal(got.Checkpoint, big))
	}
	// Generation 2 dies after its first chunk: generation 1 still loads.
	if err := save(ctx, s2, s2.chunks, chunkKey("big", 2, 0), Chunk{Tick: 8, Gen: 2, Data: []byte("half")}); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := s2.LoadProgress("big"); err != nil || !ok || !bytes.Equal(got.Checkpoint, big) {
		t.Fatalf("after a torn save: ok %v err %v, equal %v", ok, err, bytes.Equal(got.Checkpoint, big))
	}
}
