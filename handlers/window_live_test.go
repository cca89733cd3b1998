package handlers

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
	"hots/placement"
)

// memStore is a LiveStore + LiveLister in memory (the goka tables in the
// service), shared by the instances of a test.
type memStore struct {
	mu    sync.Mutex
	m     map[string]codecs.Checkpoint
	every time.Duration
	saves int
	// gate, if set, holds every Save until it is closed; started counts
	// the Saves begun.
	gate    chan struct{}
	started atomic.Int32
}

func (s *memStore) Load(d string) (codecs.Checkpoint, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[d]
	return c, ok, nil
}

func (s *memStore) Save(_ context.Context, d string, c codecs.Checkpoint) error {
	s.started.Add(1)
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.m[d]; ok && cur.LastClosedTick > c.LastClosedTick {
		return ErrStaleCheckpoint
	}
	off := map[string]map[int32]int64{}
	for t, ps := range c.Offsets {
		off[t] = map[int32]int64{}
		for p, o := range ps {
			off[t][p] = o
		}
	}
	c.Offsets = off
	s.m[d] = c
	s.saves++
	return nil
}

func (s *memStore) CheckpointEvery() time.Duration { return s.every }

func (s *memStore) Domains() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for d := range s.m {
		out = append(out, d)
	}
	return out, nil
}

// sliceLog is one partition in memory, read again for catch-up.
type sliceLog []codecs.Record

func (l sliceLog) ReadRange(_ context.Context, _ string, _ int32, from, to int64) ([]codecs.Record, error) {
	return slices.Clone(l[from:min(to, int64(len(l)))]), nil
}

func (l sliceLog) End(context.Context, string, int32) (int64, error) { return int64(len(l)), nil }

// liveRig is one instance: a window whose Emit runs the placer inline and
// records the closed ticks and moves it published.
type liveRig struct {
	w      *Window
	closed []string
	moves  []placement.Move
	hosts  map[string][]codecs.HostState
}

func newLiveRig(t *testing.T, store *memStore, log []codecs.Record) *liveRig {
	t.Helper()
	r := &liveRig{hosts: map[string][]codecs.HostState{}}
	fields := codecs.UsageFields{Tick: "timestamp", Individual: "container_id", Host: "machine_id", Metrics: []string{"cpu"}, DefaultDomain: "default"}
	p := &Placer{Params: placement.Params{Metrics: []string{"cpu"}, SepTime: 2, TickIncrement: 1, WindowDuration: 2},
		Hosts: []placement.Host{{Name: "n1", Capacity: []float64{6}}, {Name: "n2", Capacity: []float64{10}}}}
	w := &Window{Fields: fields, Placer: p, Store: store, Rule: TickRule{IdleTimeout: time.Hour},
		Replayer: sliceLog(log),
		OnHosts:  func(d string, tick int64, hs []codecs.HostState) { r.hosts[d] = hs },
	}
	p.OnDecision = func(d *placement.Decision, _ float64) { w.Decided(d) }
	w.Emit = func(msgs []*message.Message) error {
		for _, m := range msgs {
			tick, _ := strconv.ParseInt(m.Metadata.Get(codecs.MetaTick), 10, 64)
			ss, err := codecs.DecodeSamples(m.Payload)
			if err != nil {
				return err
			}
			r.closed = append(r.closed, fmt.Sprintf("%s@%d", m.Metadata.Get(codecs.MetaDomain), tick))
			d, err := p.CloseTick(placement.TickBatch{Domain: m.Metadata.Get(codecs.MetaDomain), Tick: tick, Samples: ss})
			if err != nil {
				return err
			}
			if d != nil {
				r.moves = append(r.moves, d.Moves...)
			}
		}
		return nil
	}
	r.w = w
	return r
}

// usageLog is one partition: domain d, 3 containers on n1, ticks 0..n-1.
func usageLog(n int) []codecs.Record {
	var out []codecs.Record
	for tk := 0; tk < n; tk++ {
		for c := 0; c < 3; c++ {
			v := fmt.Sprintf(`{"timestamp":%d,"container_id":"c%d","machine_id":"n1","cpu":%d}`, tk, c, 2+(tk+c)%3)
			out = append(out, codecs.Record{Offset: int64(len(out)), Key: "d", Value: []byte(v)})
		}
	}
	return out
}

// handle feeds record i of the log through Handle, as the decode stage
// would (one record, its samples, its provenance).
func (r *liveRig) handle(t *testing.T, log []codecs.Record, i int) {
	t.Helper()
	ss, err := codecs.DecodeSamplesJSON(log[i].Value, codecs.Position{Source: "u", Partition: 0, Offset: int64(i)}, "d", r.w.Fields)
	if err != nil {
		t.Fatal(err)
	}
	m := message.NewMessage(fmt.Sprint(i), codecs.EncodeSamples(ss))
	m.Metadata.Set(codecs.MetaKind, codecs.KindSamples)
	m.Metadata.Set(codecs.MetaSource, "u")
	m.Metadata.Set(codecs.MetaPartition, "0")
	m.Metadata.Set(codecs.MetaOffset, strconv.Itoa(i))
	if err := r.w.Handle(m); err != nil {
		t.Fatal(err)
	}
}

// A domain whose records were all handled (and acked) by an instance that
// died before its last tick closed is restored by the next owner at
// assignment, caught up to the partition's end and closed on idleness,
// with no new record; its ticks close once each over the two instances.
func TestLiveWindowAssignRestoresAndCompletesWithoutARecord(t *testing.T) {
	log := usageLog(6) // ticks 0..5, 18 records
	store := &memStore{m: map[string]codecs.Checkpoint{}}
	a := newLiveRig(t, store, log)
	if err := a.w.Assign(map[string][]int32{"u": {0}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 12; i++ { // ticks 0..3 in; 0..2 closed and checkpointed
		a.handle(t, log, i)
	}
	// a "dies" after acking records 12..17 without a checkpoint for them.
	b := newLiveRig(t, store, log)
	if err := b.w.Assign(map[string][]int32{"u": {0}}); err != nil {
		t.Fatal(err)
	}
	if b.w.Domains() != 1 {
		t.Fatalf("after assignment b holds %d domains, want the checkpointed one", b.w.Domains())
	}
	now := time.Now()
	b.w.Now = func() time.Time { return now.Add(2 * time.Hour) }
	if err := b.w.Tick(); err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(a.closed), b.closed...)
	want := []string{"d@0", "d@1", "d@2", "d@3", "d@4", "d@5"}
	if !slices.Equal(all, want) {
		t.Errorf("ticks closed a=%v b=%v, want each of %v once", a.closed, b.closed, want)
	}
	// Same moves as one uninterrupted instance.
	one := newLiveRig(t, &memStore{m: map[string]codecs.Checkpoint{}}, log)
	one.w.Assign(map[string][]int32{"u": {0}})
	for i := range log {
		one.handle(t, log, i)
	}
	one.w.Now = b.w.Now
	one.w.Tick()
	t.Logf("uninterrupted: %d moves, closed %v", len(one.moves), one.closed)
	if got := append(slices.Clone(a.moves), b.moves...); !slices.Equal(got, one.moves) {
		t.Errorf("moves over the crash %v, uninterrupted %v", got, one.moves)
	}
	if len(one.hosts["d"]) == 0 || !slices.Equal(b.hosts["d"][0].Containers, one.hosts["d"][0].Containers) {
		t.Errorf("host states: over the crash %+v, uninterrupted %+v", b.hosts["d"], one.hosts["d"])
	}
	h := one.hosts["d"]
	if h[0].Name != "n1" || h[0].Capacity["cpu"] != 6 || len(h[0].RecentLoad["cpu"]) == 0 {
		t.Errorf("host state %+v: want n1 with capacity and recent load", h[0])
	}
}

// Ownership comes from the group: no idle close while revoked or for a
// partition assigned elsewhere, and a domain on a partition that went
// elsewhere is forgotten at the next assignment.
func TestLiveWindowIdleClosesOnlyWhatItOwns(t *testing.T) {
	log := usageLog(2)
	store := &memStore{m: map[string]codecs.Checkpoint{}}
	r := newLiveRig(t, store, log)
	r.w.Assign(map[string][]int32{"u": {0}})
	for i := range log {
		r.handle(t, log, i)
	}
	now := time.Now()
	r.w.Now = func() time.Time { return now.Add(2 * time.Hour) }
	if err := r.w.Revoke(false); err != nil {
		t.Fatal(err)
	}
	r.w.Tick()
	if len(r.closed) != 1 {
		t.Fatalf("closed %v while revoked, want only the tick the record stream closed", r.closed)
	}
	r.w.Assign(map[string][]int32{"u": {1}})
	if r.w.Domains() != 0 {
		t.Errorf("%d domains kept after their partition went elsewhere", r.w.Domains())
	}
	r.w.Tick()
	if len(r.closed) != 1 {
		t.Errorf("closed %v for a partition owned elsewhere", r.closed)
	}
}

// An idle close needs the partition read to its end as seen after the
// idle time: a stalled consumer (rebalance, long restore) with records
// still unread must not close a tick whose samples are in those records.
func TestLiveWindowIdleCloseWaitsForUnreadRecords(t *testing.T) {
	log := usageLog(3) // ticks 0..2, records 0..8
	r := newLiveRig(t, &memStore{m: map[string]codecs.Checkpoint{}}, log)
	r.w.Rule.IdleTimeout = time.Second
	r.w.Assign(map[string][]int32{"u": {0}})
	now := time.Now()
	r.w.Now = func() time.Time { return now }
	for i := 0; i < 7; i++ { // tick 2 has one of its three samples in
		r.handle(t, log, i)
	}
	now = now.Add(time.Minute) // nothing handled for a minute
	r.w.SetEnd("u", 0, 9, now.Add(-30*time.Second))
	r.w.Tick()
	if len(r.closed) != 2 {
		t.Fatalf("closed %v with an end seen before the idle time passed", r.closed)
	}
	r.w.SetEnd("u", 0, 9, now)
	r.w.Tick()
	if len(r.closed) != 2 {
		t.Fatalf("closed %v with records 7 and 8 unread", r.closed)
	}
	r.handle(t, log, 7)
	r.handle(t, log, 8)
	now = now.Add(time.Minute)
	r.w.SetEnd("u", 0, 9, now)
	r.w.Tick()
	if !slices.Equal(r.closed, []string{"d@0", "d@1", "d@2"}) {
		t.Fatalf("closed %v, want tick 2 closed once read to the end", r.closed)
	}
}

// With a checkpoint interval, closes in between are not saved at once;
// what is held is saved by the periodic Tick once the interval has
// passed, and a domain whose last tick closed by idleness (no sample
// after it) at once: the table never stays behind what was published, and
// a complete domain is complete in the table.
func TestLiveWindowSavesWithinTheInterval(t *testing.T) {
	log := usageLog(4) // ticks 0..3
	store := &memStore{m: map[string]codecs.Checkpoint{}, every: 10 * time.Second}
	r := newLiveRig(t, store, log)
	start := time.Unix(1000, 0)
	now := start
	r.w.Now = func() time.Time { return now }
	r.w.Rule.IdleTimeout = 15 * time.Second
	for i := range log {
		r.handle(t, log, i) // ticks 0..2 close as the next tick's first sample arrives
	}
	if store.saves != 1 || store.m["d"].LastClosedTick != 0 {
		t.Fatalf("%d saves, table at tick %d: want the first close saved, the others within the interval not", store.saves, store.m["d"].LastClosedTick)
	}
	step := func(at time.Duration, saves int, tick int64) {
		t.Helper()
		now = start.Add(at)
		if err := r.w.Tick(); err != nil {
			t.Fatal(err)
		}
		if store.saves != saves || store.m["d"].LastClosedTick != tick {
			t.Fatalf("at %v: %d saves, table at tick %d; want %d and %d (closed %v)", at, store.saves, store.m["d"].LastClosedTick, saves, tick, r.closed)
		}
	}
	step(11*time.Second, 2, 2) // the interval passed: what is held is saved
	step(16*time.Second, 3, 3) // idle: tick 3 closes, 5 s after the save, and is saved
	step(27*time.Second, 3, 3) // nothing new: nothing to save
	if !slices.Equal(r.closed, []string{"d@0", "d@1", "d@2", "d@3"}) {
		t.Errorf("closed %v", r.closed)
	}
}

// countingLog is a sliceLog that records the ranges read again.
type countingLog struct {
	sliceLog
	mu    sync.Mutex
	reads [][2]int64
}

func (l *countingLog) ReadRange(ctx context.Context, t string, p int32, from, to int64) ([]codecs.Record, error) {
	l.mu.Lock()
	l.reads = append(l.reads, [2]int64{from, to})
	l.mu.Unlock()
	return l.sliceLog.ReadRange(ctx, t, p, from, to)
}

// A domain that was never checkpointed and first shows up on a partition
// this instance has read without a gap since offset F can only have
// records before F: catch-up reads [0, F), not everything before the
// record (the other domains' records this instance handled itself).
func TestLiveWindowCatchUpStopsWhereThisInstanceStartedReading(t *testing.T) {
	var log sliceLog
	for i := range 12 { // domain a at 0..5, b at 6..11, ticks of 3 records
		d := "a"
		if i >= 6 {
			d = "b"
		}
		v := fmt.Sprintf(`{"domain":%q,"timestamp":%d,"container_id":"c%d","machine_id":"n1","cpu":1}`, d, (i%6)/3, i%3)
		log = append(log, codecs.Record{Offset: int64(i), Key: d, Value: []byte(v)})
	}
	for _, tc := range []struct {
		name  string
		first int // the first offset this instance reads (its group's committed offset)
		want  [][2]int64
	}{
		{"group from the start", 0, nil},
		{"resumed at 3 after a crash", 3, [][2]int64{{0, 3}, {0, 3}}}, // a: its records 0..2; b: the same span, none of its own
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := &countingLog{sliceLog: log}
			r := newLiveRig(t, &memStore{m: map[string]codecs.Checkpoint{}}, log)
			r.w.Replayer = cl
			for i := tc.first; i < len(log); i++ {
				r.handle(t, log, i)
			}
			if !slices.Equal(cl.reads, tc.want) {
				t.Errorf("read again %v, want %v", cl.reads, tc.want)
			}
			if got := strings.Join(r.closed, " "); got != "a@0 b@0" {
				t.Errorf("closed %q, want a@0 b@0", got)
			}
		})
	}
}

// handleMerged feeds records [from, to) of the log as one merged samples
// message, as the decode stage makes of a bundle.
func (r *liveRig) handleMerged(t *testing.T, log []codecs.Record, from, to int) {
	t.Helper()
	var all []placement.Sample
	var segs []codecs.Segment
	for i := from; i < to; i++ {
		ss, err := codecs.DecodeSamplesJSON(log[i].Value, codecs.Position{Source: "u", Offset: int64(i)}, "d", r.w.Fields)
		if err != nil {
			t.Fatal(err)
		}
		all, segs = append(all, ss...), append(segs, codecs.Segment{Offset: int64(i), Samples: len(ss)})
	}
	m := message.NewMessage(fmt.Sprint(from, "-", to), codecs.EncodeSamples(all))
	m.Metadata.Set(codecs.MetaKind, codecs.KindSamples)
	m.Metadata.Set(codecs.MetaSource, "u")
	m.Metadata.Set(codecs.MetaPartition, "0")
	m.Metadata.Set(codecs.MetaOffset, strconv.Itoa(from))
	m.Metadata.Set(codecs.MetaRecords, codecs.FormatSegments(segs))
	if err := r.w.Handle(m); err != nil {
		t.Fatal(err)
	}
}

// A merged message is folded record by record: the same ticks close at
// the same points with the same moves and host loads as one record at a
// time, and records it repeats (a redelivery overlapping what was folded)
// count once.
func TestLiveWindowMergedRecordsFoldAsIfAlone(t *testing.T) {
	log := usageLog(12)
	ids := func(r *liveRig) string {
		var out []string
		for _, m := range r.moves {
			out = append(out, m.ID)
		}
		return strings.Join(r.closed, " ") + " | " + strings.Join(out, " ") + " | " + fmt.Sprint(r.hosts)
	}
	alone := newLiveRig(t, &memStore{m: map[string]codecs.Checkpoint{}}, log)
	for i := range log {
		alone.handle(t, log, i)
	}
	merged := newLiveRig(t, &memStore{m: map[string]codecs.Checkpoint{}}, log)
	for i := 0; i < len(log); i += 5 {
		merged.handleMerged(t, log, i, min(i+5, len(log)))
	}
	overlap := newLiveRig(t, &memStore{m: map[string]codecs.Checkpoint{}}, log)
	for i := range 8 {
		overlap.handle(t, log, i)
	}
	overlap.handleMerged(t, log, 5, len(log)) // 5..7 again
	want := ids(alone)
	if len(alone.closed) < 10 || len(alone.hosts["d"]) == 0 {
		t.Fatalf("closed %v, host states %v: the comparison would prove little", alone.closed, alone.hosts)
	}
	for name, r := range map[string]*liveRig{"merged": merged, "overlap": overlap} {
		if got := ids(r); got != want {
			t.Errorf("%s: %s\nwant %s", name, got, want)
		}
	}
}

// With BackgroundSaves a save after a close does not hold the domain: the
// next records are folded and ticks closed while it is written; one save
// per domain is in flight, and Flush waits for it and saves what came
// after.
func TestLiveWindowBackgroundSaves(t *testing.T) {
	log := usageLog(6)
	store := &memStore{m: map[string]codecs.Checkpoint{}, gate: make(chan struct{})}
	r := newLiveRig(t, store, log)
	r.w.BackgroundSaves = true
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range log { // closes ticks 0..4, each wanting a save (every = 0)
			r.handle(t, log, i)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("records waited for the checkpoint being written")
	}
	for deadline := time.Now().Add(10 * time.Second); store.started.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if got := store.started.Load(); got != 1 {
		t.Errorf("%d saves started while the first was written, want 1", got)
	}
	if len(r.closed) != 5 {
		t.Errorf("closed %v while the save was written, want ticks 0..4", r.closed)
	}
	close(store.gate)
	if err := r.w.Flush(); err != nil {
		t.Fatal(err)
	}
	cp, ok, _ := store.Load("d")
	if !ok || cp.LastClosedTick != 4 || cp.Offsets["u"][0] != int64(len(log)) || store.saves != 2 {
		t.Errorf("after Flush: checkpoint at tick %d covering %v in %d saves, want tick 4, offset %d, 2 saves", cp.LastClosedTick, cp.Offsets, store.saves, len(log))
	}
}
