package handlers

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
	"hots/placement"
)

// LiveCheckpoint is what LiveWindow saves per domain after every tick
// close (after that tick's moves were published) and restores from when a
// domain first shows up in this instance.
type LiveCheckpoint struct {
	LastClosedTick int64
	// Data is opaque to the store: gzipped JSON of the engine snapshot, the
	// open-tick buffer and the relocation overrides.
	Data []byte
	// Offsets covered per input topic and partition: the offset after the
	// last record folded into this state.
	Offsets map[string]map[int32]int64
}

// ErrStaleCheckpoint is what a LiveStore returns when the table holds a
// newer tick: another instance owns the domain now.
var ErrStaleCheckpoint = errors.New("checkpoint is stale: another owner moved on")

// LiveStore keeps checkpoints (goka tables in the service).
type LiveStore interface {
	Load(domain string) (LiveCheckpoint, bool, error)
	Save(ctx context.Context, domain string, c LiveCheckpoint) error
}

// Record is one input record as the catch-up reader returns it.
type Record struct {
	Offset int64
	Key    string
	Value  []byte
}

// CatchUpFunc reads the records of one partition in [from, to), in order.
type CatchUpFunc func(ctx context.Context, topic string, partition int32, from, to int64) ([]Record, error)

// LiveWindow is stage 2 in live mode. It keeps per-domain state (open
// ticks, relocation overrides, last closed tick, input offsets covered),
// closes ticks by the live rule, hands each closed tick to the placement
// stage through Emit, and checkpoints the domain once Emit returned (the
// inner Pub/Sub blocks until every later stage acked, so the tick's moves
// are published by then). A crash between publish and checkpoint re-closes
// the tick from the previous checkpoint and republishes the same move ids.
//
// The first sample of a domain on a partition restores the domain from its
// checkpoint and, if records were acked after that checkpoint and lost
// with the crash, reads them again with CatchUp (only this domain's).
type LiveWindow struct {
	Fields      codecs.UsageFields
	Lateness    time.Duration
	IdleTimeout time.Duration // 0: never close on idleness
	Placer      *Placer
	Store       LiveStore
	CatchUp     CatchUpFunc
	// Emit publishes closed-tick messages to the placement stage and
	// returns once they went through every later stage.
	Emit func(msgs []*message.Message) error
	// Owns, if set and Assign was never called, says whether this
	// instance still consumes a partition. Once the consumer group reports
	// assignments (Assign, Revoke), those decide: an idle close is only
	// made by the owner (a former owner's stale buffer must not close a
	// tick the new owner is still filling).
	Owns func(topic string, partition int32) bool
	// End returns a partition's high-water mark (the offset the next
	// record will get). Assign catches restored domains up to it.
	End func(ctx context.Context, topic string, partition int32) (int64, error)
	// OnHosts, if set, gets the domain's hosts after every decision (a
	// loop): capacity, containers on them once the moves are applied, and
	// their load over the last RecentTicks closed ticks. The service
	// writes them to the per-host table.
	OnHosts     func(domain string, tick int64, hosts []LiveHost)
	RecentTicks int // 0 = 6
	Now         func() time.Time
	Log         *slog.Logger
	// Hooks for metrics (optional).
	OnSamples  func(n int)
	OnLate     func(n int)
	OnClosed   func(domain string, tick int64, publishSeconds float64)
	OnRestored func(domain string, fromCheckpoint bool, caughtUp int)

	ctx     context.Context
	mu      sync.Mutex
	domains map[string]*liveDom
	tpNext  map[tp]int64 // per partition: offset after the last record this instance handled
	pending []placement.Move
	decided bool // a decision came back for the tick being closed

	// Consumer-group assignment (Assign/Revoke): tracking is set by the
	// first Assign; assigned is false between a Revoke and the next Assign.
	tracking bool
	assigned bool
	claims   map[tp]bool

	// ends holds each partition's high-water mark as last seen (SetEnd).
	// Once set, an idle close also needs the domain's partitions read to
	// that mark, seen after the idle time had passed: a consumer that was
	// stalled (rebalance, broker away, a long restore) has not seen "no
	// samples for IdleTimeout", it has seen nothing at all.
	ends map[tp]endSnap
}

type endSnap struct {
	end int64
	at  time.Time
}

// LiveHost is one host of a domain as of a decision (see OnHosts).
type LiveHost struct {
	Name       string
	Capacity   map[string]float64
	Containers []string
	// RecentLoad per metric: the summed usage of the host's containers per
	// closed tick, oldest first.
	RecentLoad map[string][]float64
}

type tp struct {
	topic     string
	partition int32
}

type override struct {
	Host  string `json:"host"`
	After int64  `json:"after"`
}

type liveDom struct {
	name        string
	open        map[int64]*liveTick
	first       map[int64]time.Time
	lastArrival time.Time
	closed      int64
	hasClosed   bool
	overrides   map[string]override
	offsets     map[string]map[int32]int64
	checked     map[tp]bool
	dirty       bool
	// recent holds per closed tick the summed load per host (metric order
	// of Fields.Metrics), newest last, at most RecentTicks; not
	// checkpointed (a restored domain starts it again).
	recent []hostLoads
}

type hostLoads struct {
	tick  int64
	loads map[string][]float64
	where map[string]string // container -> host at that tick (after overrides)
}

type liveTick struct {
	samples []placement.Sample
	seen    map[string]struct{}
}

type liveData struct {
	Engine    []byte              `json:"engine"` // placement.Engine.Snapshot (gob)
	Open      []liveOpenTick      `json:"open,omitempty"`
	Overrides map[string]override `json:"overrides,omitempty"`
	Closed    int64               `json:"closed"`
	HasClosed bool                `json:"has_closed"`
}

type liveOpenTick struct {
	Tick    int64              `json:"tick"`
	Samples []placement.Sample `json:"samples"`
}

// Start sets the context that bounds checkpoint saves and retries. It
// should outlive the consuming context, so that a graceful shutdown can
// still checkpoint.
func (w *LiveWindow) Start(ctx context.Context) { w.ctx = ctx }

func (w *LiveWindow) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *LiveWindow) log() *slog.Logger {
	if w.Log != nil {
		return w.Log
	}
	return slog.Default()
}

// Decided is the Placer's OnDecision hook: the moves become relocation
// overrides once Emit returned. It runs while Handle waits in Emit, so it
// takes no lock (the inner Pub/Sub orders the two goroutines).
func (w *LiveWindow) Decided(d *placement.Decision) {
	w.pending = append(w.pending, d.Moves...)
	w.decided = true
}

// Next returns the offset after the last record handled per partition.
func (w *LiveWindow) Next() map[string]map[int32]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]map[int32]int64{}
	for k, v := range w.tpNext {
		if out[k.topic] == nil {
			out[k.topic] = map[int32]int64{}
		}
		out[k.topic][k.partition] = v
	}
	return out
}

// Domains is the number of domains held in memory.
func (w *LiveWindow) Domains() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.domains)
}

// WithLock runs f while no tick is being handled (node capacity updates).
func (w *LiveWindow) WithLock(f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f()
}

// Handle is the handler func for decoded sample messages.
func (w *LiveWindow) Handle(msg *message.Message) error {
	if msg.Metadata.Get(codecs.MetaKind) != codecs.KindSamples {
		return nil
	}
	ss, err := codecs.DecodeSamples(msg.Payload)
	if err != nil {
		return Permanent(err)
	}
	src := tp{topic: msg.Metadata.Get(codecs.MetaSource), partition: -1}
	off := int64(-1)
	if p, err := strconv.ParseInt(msg.Metadata.Get(codecs.MetaPartition), 10, 32); err == nil {
		src.partition = int32(p)
	}
	if o, err := strconv.ParseInt(msg.Metadata.Get(codecs.MetaOffset), 10, 64); err == nil {
		off = o
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	start := w.now()
	defer w.compensateStall(start)
	if w.domains == nil {
		w.domains, w.tpNext = map[string]*liveDom{}, map[tp]int64{}
	}
	if off >= 0 {
		// A gap on a partition means another instance handled records in
		// between: what we hold for domains of that partition may be stale.
		if next, ok := w.tpNext[src]; ok && off > next {
			w.evictPartition(src)
		}
		if off+1 > w.tpNext[src] {
			w.tpNext[src] = off + 1
		}
	}
	if w.OnSamples != nil {
		w.OnSamples(len(ss))
	}
	for _, part := range byDomain(ss) {
		d, err := w.acquire(part[0].Domain, src, off)
		if err != nil {
			return err
		}
		if off >= 0 && off < d.offsets[src.topic][src.partition] {
			continue // already folded into the restored state
		}
		if err := w.foldAndClose(d, part, src, off, false); err != nil {
			return err
		}
	}
	return nil
}

// compensateStall moves idle clocks forward by the time a handling was
// blocked (a broker outage, a goka rebalance): samples could not arrive
// meanwhile, so that time must not count as idle.
// SetEnd records a partition's high-water mark as fetched at `at` (the
// time the request was sent). The service refreshes it periodically.
func (w *LiveWindow) SetEnd(topic string, partition int32, end int64, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ends == nil {
		w.ends = map[tp]endSnap{}
	}
	w.ends[tp{topic, partition}] = endSnap{end: end, at: at}
}

// Consumed records that a record was taken off a partition without
// reaching Handle (poison-queued, or no samples in it), so that the
// partition counts as read to its end.
func (w *LiveWindow) Consumed(topic string, partition int32, offset int64) {
	if offset < 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.tpNext == nil {
		w.domains, w.tpNext = map[string]*liveDom{}, map[tp]int64{}
	}
	k := tp{topic, partition}
	if offset+1 > w.tpNext[k] {
		w.tpNext[k] = offset + 1
	}
}

// readToEnd says whether every partition of d was read to its end as seen
// after d's idle time had passed (always true without SetEnd).
func (w *LiveWindow) readToEnd(d *liveDom) bool {
	if w.ends == nil {
		return true
	}
	idleSince := d.lastArrival.Add(w.IdleTimeout)
	for t, ps := range d.offsets {
		for p, covered := range ps {
			k := tp{t, p}
			e, ok := w.ends[k]
			if !ok || e.at.Before(idleSince) || e.end > max(covered, w.tpNext[k]) {
				return false
			}
		}
	}
	return true
}

func (w *LiveWindow) compensateStall(start time.Time) {
	if d := w.now().Sub(start); d > 500*time.Millisecond {
		for _, ld := range w.domains {
			ld.lastArrival = ld.lastArrival.Add(d)
		}
	}
}

func byDomain(ss []placement.Sample) [][]placement.Sample {
	var out [][]placement.Sample
	idx := map[string]int{}
	for _, s := range ss {
		i, ok := idx[s.Domain]
		if !ok {
			i = len(out)
			idx[s.Domain] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], s)
	}
	return out
}

func (w *LiveWindow) evictPartition(src tp) {
	for name, d := range w.domains {
		if _, ok := d.offsets[src.topic][src.partition]; ok {
			w.log().Info("partition came back after another owner: domain state will be restored", "domain", name, "topic", src.topic, "partition", src.partition)
			delete(w.domains, name)
			w.Placer.DropEngine(name)
		}
	}
}

// foldAndClose adds samples of one record, records its offset, and closes
// what the live rule says is due.
func (w *LiveWindow) foldAndClose(d *liveDom, ss []placement.Sample, src tp, off int64, catchingUp bool) error {
	now := w.now()
	late := 0
	for _, s := range ss {
		if d.hasClosed && s.Tick <= d.closed {
			late++
			continue
		}
		ot := d.open[s.Tick]
		if ot == nil {
			ot = &liveTick{seen: map[string]struct{}{}}
			d.open[s.Tick] = ot
			d.first[s.Tick] = now
		}
		if _, dup := ot.seen[s.Container]; dup {
			continue // first sample of (tick, container) wins
		}
		ot.seen[s.Container] = struct{}{}
		ot.samples = append(ot.samples, s)
	}
	if now.After(d.lastArrival) {
		d.lastArrival = now
	}
	if late > 0 && w.OnLate != nil {
		w.OnLate(late)
	}
	if off >= 0 {
		if d.offsets[src.topic] == nil {
			d.offsets[src.topic] = map[int32]int64{}
		}
		d.offsets[src.topic][src.partition] = off + 1
	}
	d.dirty = true
	if upTo, ok := w.due(d, now); ok {
		return w.closeUpTo(d, upTo)
	}
	return nil
}

// due applies the live rule: every open tick before the newest tick whose
// first sample is at least Lateness old, or all of them after IdleTimeout
// without samples.
func (w *LiveWindow) due(d *liveDom, now time.Time) (int64, bool) {
	if len(d.open) == 0 {
		return 0, false
	}
	open := make([]int64, 0, len(d.open))
	for t := range d.open {
		open = append(open, t)
	}
	slices.Sort(open)
	if w.IdleTimeout > 0 && now.Sub(d.lastArrival) >= w.IdleTimeout && w.readToEnd(d) {
		return open[len(open)-1], true
	}
	for i := len(open) - 1; i > 0; i-- {
		if now.Sub(d.first[open[i]]) >= w.Lateness {
			return open[i-1], true
		}
	}
	return 0, false
}

// closeUpTo closes ticks one at a time, so that the moves of tick t are
// overrides before tick t+1's samples are re-attributed, then checkpoints.
func (w *LiveWindow) closeUpTo(d *liveDom, upTo int64) error {
	var ticks []int64
	for t := range d.open {
		if t <= upTo {
			ticks = append(ticks, t)
		}
	}
	slices.Sort(ticks)
	for _, t := range ticks {
		ss := d.open[t].samples
		for i := range ss {
			if ov, ok := d.overrides[ss[i].Container]; ok && t > ov.After && ov.Host != ss[i].Host {
				ss[i].TraceHost, ss[i].Host = ss[i].Host, ov.Host
			}
		}
		delete(d.open, t)
		delete(d.first, t)
		d.closed, d.hasClosed = t, true
		w.pending = w.pending[:0]
		w.decided = false
		w.recordLoads(d, t, ss)
		start := w.now()
		msgs := TickMessages([]placement.TickBatch{{Domain: d.name, Tick: t, Samples: ss}})
		if err := w.retry("publish closed tick", func() error { return w.Emit(msgs) }); err != nil {
			return err
		}
		for _, mv := range w.pending {
			if mv.Domain == d.name { // moves arrive in tick order: the latest wins
				d.overrides[mv.Container] = override{Host: mv.NewHost, After: mv.Tick}
			}
		}
		if w.decided && w.OnHosts != nil {
			w.OnHosts(d.name, t, w.hostStates(d, w.pending))
		}
		w.pending = w.pending[:0]
		w.decided = false
		if w.OnClosed != nil {
			w.OnClosed(d.name, t, w.now().Sub(start).Seconds())
		}
	}
	return w.checkpoint(d)
}

// loadCheckpoint reads a domain's checkpoint, retrying while the store is
// unreachable.
func (w *LiveWindow) loadCheckpoint(name string) (cp LiveCheckpoint, ok bool, err error) {
	err = w.retry("load checkpoint "+name, func() error {
		var e error
		cp, ok, e = w.Store.Load(name)
		return e
	})
	return cp, ok, err
}

func (w *LiveWindow) checkpoint(d *liveDom) error {
	e, err := w.Placer.Engine(d.name)
	if err != nil {
		return err
	}
	snap, err := e.Snapshot()
	if err != nil {
		return err
	}
	ld := liveData{Engine: snap, Overrides: d.overrides, Closed: d.closed, HasClosed: d.hasClosed}
	for t, ot := range d.open {
		ld.Open = append(ld.Open, liveOpenTick{Tick: t, Samples: ot.samples})
	}
	slices.SortFunc(ld.Open, func(a, b liveOpenTick) int { return int(a.Tick - b.Tick) })
	data, err := encodeCheckpoint(ld)
	if err != nil {
		return err
	}
	cp := LiveCheckpoint{LastClosedTick: lastClosed(d), Data: data, Offsets: d.offsets}
	err = w.retry("checkpoint "+d.name, func() error {
		err := w.Store.Save(w.context(), d.name, cp)
		if errors.Is(err, ErrStaleCheckpoint) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	d.dirty = false
	return nil
}

// acquire returns the domain's state, restoring it from its checkpoint
// and catching up on the partition when this instance sees the domain (or
// the domain on this partition) for the first time.
func (w *LiveWindow) acquire(name string, src tp, off int64) (*liveDom, error) {
	d := w.domains[name]
	caught := 0
	fromCheckpoint := false
	if d == nil {
		cp, ok, err := w.loadCheckpoint(name)
		if err != nil {
			return nil, err
		}
		if d, err = w.restore(name, cp, ok); err != nil {
			return nil, fmt.Errorf("domain %s: restore: %w", name, Permanent(err))
		}
		fromCheckpoint = ok
		w.domains[name] = d
		defer func() {
			if w.OnRestored != nil {
				w.OnRestored(name, fromCheckpoint, caught)
			}
		}()
	}
	if off < 0 || d.checked[src] {
		return d, nil
	}
	d.checked[src] = true
	from, ok := d.offsets[src.topic][src.partition]
	if !ok {
		from = 0
	}
	if off <= from || w.CatchUp == nil {
		return d, nil
	}
	n, err := w.catchUp(d, src, off)
	caught += n
	if err != nil {
		return nil, err
	}
	return d, nil
}

// catchUp folds this domain's records of src from the offset its state
// covers up to (not including) to.
func (w *LiveWindow) catchUp(d *liveDom, src tp, to int64) (int, error) {
	from := d.offsets[src.topic][src.partition] // 0 when none: the partition's start
	if to <= from || w.CatchUp == nil {
		return 0, nil
	}
	var recs []Record
	if err := w.retry("catch up "+d.name, func() error {
		var err error
		recs, err = w.CatchUp(w.context(), src.topic, src.partition, from, to)
		return err
	}); err != nil {
		return 0, err
	}
	caught := 0
	for _, r := range recs {
		ss, err := codecs.DecodeSamplesJSON(r.Value, codecs.Position{Source: src.topic, Partition: src.partition, Offset: r.Offset}, r.Key, w.Fields)
		if err != nil {
			continue // it went to the poison queue the first time
		}
		var mine []placement.Sample
		for _, s := range ss {
			if s.Domain == d.name {
				mine = append(mine, s)
			}
		}
		if len(mine) == 0 {
			continue
		}
		caught++
		if err := w.foldAndClose(d, mine, src, r.Offset, true); err != nil {
			return caught, err
		}
	}
	return caught, nil
}

func lastClosed(d *liveDom) int64 {
	if d.hasClosed {
		return d.closed
	}
	return math.MinInt64 / 2
}

func (w *LiveWindow) restore(name string, cp LiveCheckpoint, ok bool) (*liveDom, error) {
	d := &liveDom{name: name, open: map[int64]*liveTick{}, first: map[int64]time.Time{},
		overrides: map[string]override{}, offsets: map[string]map[int32]int64{}, checked: map[tp]bool{},
		lastArrival: w.now()}
	if !ok {
		e, err := placement.New(name, w.Placer.Params, w.Placer.Hosts)
		if err != nil {
			return nil, err
		}
		w.Placer.SetEngine(name, e)
		return d, nil
	}
	var ld liveData
	if err := decodeCheckpoint(cp.Data, &ld); err != nil {
		return nil, err
	}
	e, err := placement.Restore(ld.Engine)
	if err != nil {
		return nil, err
	}
	// Capacities learnt since the checkpoint (node_meta, nodes topic) win.
	for _, h := range w.Placer.Hosts {
		if err := e.SetHost(h); err != nil {
			return nil, err
		}
	}
	w.Placer.SetEngine(name, e)
	now := w.now()
	for _, ot := range ld.Open {
		o := &liveTick{samples: ot.Samples, seen: map[string]struct{}{}}
		for _, s := range ot.Samples {
			o.seen[s.Container] = struct{}{}
		}
		d.open[ot.Tick], d.first[ot.Tick] = o, now
	}
	if ld.Overrides != nil {
		d.overrides = ld.Overrides
	}
	d.closed, d.hasClosed = ld.Closed, ld.HasClosed
	for t, ps := range cp.Offsets {
		d.offsets[t] = map[int32]int64{}
		for p, o := range ps {
			d.offsets[t][p] = o
		}
	}
	return d, nil
}

// Tick closes what is due by time (lateness, idleness) in every domain
// this instance owns. The service calls it periodically.
func (w *LiveWindow) Tick() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	names := make([]string, 0, len(w.domains))
	for n := range w.domains {
		names = append(names, n)
	}
	slices.Sort(names)
	now := w.now()
	for _, n := range names {
		d := w.domains[n]
		if d == nil || !w.owns(d) {
			continue
		}
		if upTo, ok := w.due(d, now); ok {
			if err := w.closeUpTo(d, upTo); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *LiveWindow) owns(d *liveDom) bool {
	switch {
	case w.tracking:
		if !w.assigned {
			return false
		}
		for t, ps := range d.offsets {
			for p := range ps {
				if !w.claims[tp{t, p}] {
					return false
				}
			}
		}
		return true
	case w.Owns != nil:
		for t, ps := range d.offsets {
			for p := range ps {
				if !w.Owns(t, p) {
					return false
				}
			}
		}
	}
	return true
}

// Run calls Tick every interval until ctx ends.
func (w *LiveWindow) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := w.Tick(); err != nil && ctx.Err() == nil {
				w.log().Error("live window: timed close failed", "err", err)
			}
		}
	}
}

// Flush checkpoints every domain holding samples not yet checkpointed
// (graceful shutdown: a restart then needs no catch-up).
func (w *LiveWindow) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for _, d := range w.domains {
		if d.dirty && w.owns(d) {
			errs = append(errs, w.checkpoint(d))
		}
	}
	return errors.Join(errs...)
}

func (w *LiveWindow) context() context.Context {
	if w.ctx != nil {
		return w.ctx
	}
	return context.Background()
}

// retry runs f until it succeeds or the save context ends: infrastructure
// errors (broker away, rebalance) must hold the stream, not poison it.
func (w *LiveWindow) retry(what string, f func() error) error {
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || IsPermanent(err) {
			return err
		}
		ctx := w.context()
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (%w)", what, err, ctx.Err())
		}
		w.log().Warn("live window: retrying", "what", what, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// encodeCheckpoint writes a domain's state as gzipped gob. gob because
// the engine snapshot is mostly float64s, which JSON would spell out as
// decimals and then base64; the fastest gzip level because it is written
// after every tick close, and it must stay compressed: the record has to
// pass the producer's and broker's message size limits (an uncompressed
// 1,000-container checkpoint did not).
func encodeCheckpoint(v any) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if err := gob.NewEncoder(zw).Encode(v); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeCheckpoint(b []byte, v any) error {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return gob.NewDecoder(zr).Decode(v)
}
