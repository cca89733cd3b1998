package handlers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
	"hots/placement"
)

// Store keeps checkpoints (connectors.Checkpointer).
type Store interface {
	Load(domain string) (codecs.Checkpoint, bool, error)
	Save(ctx context.Context, domain string, c codecs.Checkpoint) error
	Domains() ([]string, error)
	CheckpointEvery() time.Duration
}

// Replayer reads input records again (connectors.Replayer).
type Replayer interface {
	ReadRange(ctx context.Context, topic string, partition int32, from, to int64) ([]codecs.Record, error)
	End(ctx context.Context, topic string, partition int32) (int64, error)
}

// ErrStaleCheckpoint is what a Store returns when it holds a newer tick:
// another instance owns the domain now.
var ErrStaleCheckpoint = codecs.ErrStaleCheckpoint

type tp struct {
	topic     string
	partition int32
}

// positions is what the live window knows of the source's partitions.
// tpNext and ends have their own lock: the lag metric and the
// connector's end fetches must never wait behind a tick close (w.mu).
// Lock order: w.mu, then a domain's, then posMu. tracking, assigned and
// claims change only under w.mu held exclusively.
type positions struct {
	posMu  sync.Mutex
	tpNext map[tp]int64 // per partition: offset after the last record this instance handled
	// tpFrom is, per partition in tpNext, the offset from which this
	// instance has seen every record: a domain without a checkpoint that
	// first shows up later can only have records before it (see acquire).
	tpFrom map[tp]int64
	// Group assignment (Assign/Revoke): tracking is set by the first
	// Assign; assigned is false between a Revoke and the next Assign.
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

func (w *Window) initLive() {
	w.domMu.Lock()
	if w.domains == nil {
		w.domains = map[string]*domainWindow{}
	}
	w.domMu.Unlock()
	w.posMu.Lock()
	w.initPositions()
	w.posMu.Unlock()
}

// initPositions makes the position maps (posMu held).
func (w *Window) initPositions() {
	if w.tpNext == nil {
		w.tpNext, w.tpFrom = map[tp]int64{}, map[tp]int64{}
	}
}

// covered records that this instance has seen every record of src from
// offset on, if it had not seen src yet (posMu held).
func (w *Window) covered(src tp, offset int64) {
	if _, ok := w.tpNext[src]; !ok {
		w.tpFrom[src] = offset
	}
}

// Position reads where a message came from (codecs metadata set by the
// connector): source, partition and offset; -1 when not given.
func Position(msg *message.Message) (src string, partition int32, offset int64) {
	partition, offset = -1, -1
	if p, err := strconv.ParseInt(msg.Metadata.Get(codecs.MetaPartition), 10, 32); err == nil {
		partition = int32(p)
	}
	if o, err := strconv.ParseInt(msg.Metadata.Get(codecs.MetaOffset), 10, 64); err == nil {
		offset = o
	}
	return msg.Metadata.Get(codecs.MetaSource), partition, offset
}

// handleLive folds one record's samples into their domains and closes
// what the live rule says is due; a merged message (codecs.MetaRecords)
// is taken record by record, exactly as if each had come alone. Records
// of different domains are handled at the same time (w.mu shared, each
// domain under its own lock); the source gives one message of a partition
// at a time.
func (w *Window) handleLive(msg *message.Message) error {
	topic, part, off := Position(msg)
	src := tp{topic, part}
	start := w.now()
	rb, ss, err := w.readSamples(msg.Payload)
	defer w.dropScratch(rb)
	if err != nil {
		return Permanent(err)
	}
	segs := []codecs.Segment{{Offset: off, Samples: len(ss)}}
	if v := msg.Metadata.Get(codecs.MetaRecords); v != "" {
		if segs, err = codecs.ParseSegments(v, len(ss)); err != nil {
			return Permanent(err)
		}
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	defer w.compensateStall(start)
	w.initLive()
	if w.OnSamples != nil {
		w.OnSamples(len(ss))
	}
	var failed []error
	for _, sg := range segs {
		rec := ss[:sg.Samples]
		ss = ss[sg.Samples:]
		if err := w.handleRecord(src, sg.Offset, rec); err != nil {
			if len(segs) == 1 || !IsPermanent(err) {
				return err // again: what was folded is skipped (offsets)
			}
			failed = append(failed, fmt.Errorf("record at offset %d: %w", sg.Offset, err))
		}
	}
	if w.OnDomains != nil {
		w.OnDomains(w.Domains())
	}
	if len(failed) > 0 {
		return Permanent(fmt.Errorf("%d of the message's %d records refused (the others are folded): %w", len(failed), len(segs), errors.Join(failed...)))
	}
	return nil
}

// handleRecord folds the samples of the record at off of src (w.mu held
// shared; it is given up for a moment to evict a partition after a gap).
func (w *Window) handleRecord(src tp, off int64, ss []placement.Sample) error {
	if off >= 0 {
		// A gap on a partition means another instance handled records in
		// between: what we hold for domains of that partition may be stale.
		w.posMu.Lock()
		w.covered(src, off)
		next, ok := w.tpNext[src]
		if ok && off > next {
			w.tpFrom[src] = off // records in between went elsewhere
		}
		if off+1 > next {
			w.tpNext[src] = off + 1
		}
		w.posMu.Unlock()
		if ok && off > next {
			// Exclusively: no handling in progress, nobody holds a domain.
			// The source gives no other record of src meanwhile.
			w.mu.RUnlock()
			w.mu.Lock()
			w.evictPartition(src)
			w.mu.Unlock()
			w.mu.RLock()
		}
	}
	for _, part := range byDomain(ss) {
		if err := w.handleDomain(part, src, off); err != nil {
			return err
		}
	}
	return nil
}

// CheckTicks is CheckSamples for a samples payload (a row batch's
// samples, as the decode stage made them).
func (w *Window) CheckTicks(samplesPayload []byte) error {
	if w.Rule.Watermarks {
		return nil
	}
	ss, err := codecs.DecodeSamples(samplesPayload)
	if err != nil {
		return nil // malformed: the window refuses it with the reason
	}
	return w.CheckSamples(ss, nil)
}

// CheckSamples is implausible for a decoded record, before it reaches the
// window: the decode stage calls it so that the poison sink gets the
// record as its producer wrote it, not the stage's binary form. The
// window checks again when it folds (the clock may have moved meanwhile).
// ahead, if not nil, holds the newest tick per domain of the records
// checked before this one that have not reached the window yet (a bundle
// is decoded whole first): the clock they will have moved. A record that
// passes adds its ticks to it.
func (w *Window) CheckSamples(ss []placement.Sample, ahead map[string]int64) error {
	if w.Rule.Watermarks {
		return nil
	}
	for i := range ss {
		w.domMu.Lock()
		d := w.domains[ss[i].Domain]
		w.domMu.Unlock()
		clock := int64(noClock) // a new domain has no clock: only the sign rule
		if d != nil {
			clock = d.seen.Load()
		}
		if t, ok := ahead[ss[i].Domain]; ok && t > clock {
			clock = t
		}
		if err := w.implausibleAt(ss[i].Domain, clock, ss[i:i+1]); err != nil {
			return err
		}
	}
	if ahead != nil {
		for i := range ss {
			if t, ok := ahead[ss[i].Domain]; !ok || ss[i].Tick > t {
				ahead[ss[i].Domain] = ss[i].Tick
			}
		}
	}
	return nil
}

// handleDomain folds one domain's samples of a record under the domain's
// lock (w.mu held shared).
func (w *Window) handleDomain(part []placement.Sample, src tp, off int64) error {
	d, err := w.acquire(part[0].Domain, src, off)
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	if off >= 0 && off < d.offsets[src.topic][src.partition] {
		return nil // already folded into the restored state
	}
	if err := w.implausible(d, part); err != nil {
		return Permanent(err)
	}
	return w.foldAndClose(d, part, src, off)
}

// implausible refuses a record that would move a domain's clock by
// nonsense: a negative tick, or one more than MaxTickJump ahead of the
// newest tick the domain accepted. The record is poisoned whole, before
// anything of it is folded in.
func (w *Window) implausible(d *domainWindow, ss []placement.Sample) error {
	clock := int64(noClock)
	if d.clockSet {
		clock = d.clock
	}
	return w.implausibleAt(d.name, clock, ss)
}

// noClock is the clock of a domain that accepted no tick yet.
const noClock = math.MinInt64

func (w *Window) implausibleAt(domain string, clock int64, ss []placement.Sample) error {
	for i := range ss {
		t := ss[i].Tick
		if t < 0 {
			return fmt.Errorf("domain %s: tick %d of container %q is negative", domain, t, ss[i].Container)
		}
		if w.Rule.MaxTickJump > 0 && clock != noClock && t-clock > w.Rule.MaxTickJump {
			return fmt.Errorf("domain %s: tick %d of container %q is %d ticks ahead of the domain's clock (tick %d): more than the %d allowed (kafka.max_tick_jump)",
				domain, t, ss[i].Container, t-clock, clock, w.Rule.MaxTickJump)
		}
	}
	return nil
}

// byDomain splits a record's samples by domain, in order of first sight.
func byDomain(ss []placement.Sample) [][]placement.Sample {
	if len(ss) == 0 {
		return nil
	}
	first := ss[0].Domain
	same := true
	for i := range ss {
		if ss[i].Domain != first {
			same = false
			break
		}
	}
	if same {
		return [][]placement.Sample{ss}
	}
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

// compensateStall moves idle clocks forward by the time a handling was
// blocked (a broker outage, a rebalance): samples could not arrive
// meanwhile, so that time must not count as idle. A domain being handled
// right now (its lock taken) is not idle and is left alone: its handling
// sets its clock.
func (w *Window) compensateStall(start time.Time) {
	if d := w.now().Sub(start); d > 500*time.Millisecond {
		for _, dw := range w.domainList() {
			if dw.mu.TryLock() {
				dw.lastArrival = dw.lastArrival.Add(d)
				dw.mu.Unlock()
			}
		}
	}
}

// evictPartition forgets the domains read from src (w.mu held
// exclusively).
func (w *Window) evictPartition(src tp) {
	for _, d := range w.sortedDomains() {
		if _, ok := d.offsets[src.topic][src.partition]; ok {
			w.log().Info("partition came back after another owner: domain state will be restored", "domain", d.name, "topic", src.topic, "partition", src.partition)
			w.forget(d.name)
		}
	}
}

// foldAndClose adds the samples of one record, records its offset, and
// closes what the live rule says is due.
func (w *Window) foldAndClose(d *domainWindow, ss []placement.Sample, src tp, off int64) error {
	c := addCursor{dw: d, now: w.now()}
	for i := range ss {
		w.add(&c, ss[i])
		if t := ss[i].Tick; !d.clockSet || t > d.clock {
			d.clock, d.clockSet = t, true
		}
	}
	if d.clockSet {
		d.seen.Store(d.clock)
	}
	w.count(&c, true)
	w.lateHook(c.late)
	if c.now.After(d.lastArrival) {
		d.lastArrival = c.now
	}
	if off >= 0 {
		if d.offsets[src.topic] == nil {
			d.offsets[src.topic] = map[int32]int64{}
		}
		d.offsets[src.topic][src.partition] = off + 1
	}
	d.dirty = true
	if upTo, ok := w.due(d, c.now); ok {
		return w.closeUpTo(d, upTo)
	}
	return nil
}

// due applies the live rule: every open tick before the newest tick whose
// first sample is at least Lateness old, or all of them after IdleTimeout
// without samples.
func (w *Window) due(d *domainWindow, now time.Time) (int64, bool) {
	if len(d.open) == 0 {
		return 0, false
	}
	open := make([]int64, 0, len(d.open))
	for t := range d.open {
		open = append(open, t)
	}
	slices.Sort(open)
	if w.Rule.IdleTimeout > 0 && now.Sub(d.lastArrival) >= w.Rule.IdleTimeout && w.readToEnd(d) {
		return open[len(open)-1], true
	}
	for i := len(open) - 1; i > 0; i-- {
		if now.Sub(d.open[open[i]].first) >= w.Rule.Lateness {
			return open[i-1], true
		}
	}
	return 0, false
}

// SetEnd records a partition's high-water mark as fetched at `at` (the
// time the request was sent). The connector refreshes it periodically.
func (w *Window) SetEnd(topic string, partition int32, end int64, at time.Time) {
	w.posMu.Lock()
	defer w.posMu.Unlock()
	if w.ends == nil {
		w.ends = map[tp]endSnap{}
	}
	w.ends[tp{topic, partition}] = endSnap{end: end, at: at}
}

// Next returns the offset after the last record handled per partition.
func (w *Window) Next() map[string]map[int32]int64 {
	w.posMu.Lock()
	defer w.posMu.Unlock()
	out := map[string]map[int32]int64{}
	for k, v := range w.tpNext {
		if out[k.topic] == nil {
			out[k.topic] = map[int32]int64{}
		}
		out[k.topic][k.partition] = v
	}
	return out
}

// Consumed records that a record was taken off a partition without
// reaching the window (poison-queued, or no samples in it), so that the
// partition counts as read to its end.
func (w *Window) Consumed(topic string, partition int32, offset int64) {
	if offset < 0 {
		return
	}
	w.posMu.Lock()
	defer w.posMu.Unlock()
	w.initPositions()
	k := tp{topic, partition}
	w.covered(k, offset)
	if offset+1 > w.tpNext[k] {
		w.tpNext[k] = offset + 1
	}
}

// readToEnd says whether every partition of d was read to its end as seen
// after d's idle time had passed (always true without SetEnd).
func (w *Window) readToEnd(d *domainWindow) bool {
	w.posMu.Lock()
	defer w.posMu.Unlock()
	if w.ends == nil {
		return true
	}
	idleSince := d.lastArrival.Add(w.Rule.IdleTimeout)
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

// Tick closes what is due by time (lateness, idleness) in every domain
// this instance owns. Run calls it periodically.
func (w *Window) Tick() error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	now := w.now()
	for _, d := range w.sortedDomains() {
		d.mu.Lock()
		err := w.tickDomain(d, now)
		d.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// tickDomain closes what is due by time in one domain (its lock held).
func (w *Window) tickDomain(d *domainWindow, now time.Time) error {
	if d.removed || !w.owns(d) {
		return nil
	}
	if upTo, ok := w.due(d, now); ok {
		if err := w.closeUpTo(d, upTo); err != nil {
			return err
		}
	}
	// What closed (or arrived) since the last save is saved once the
	// interval passed, also when nothing more comes; a domain whose every
	// tick closed on idleness at once: it may be complete, and a new owner
	// after a crash would otherwise wait for the rest of the interval.
	if w.Store != nil && d.dirty && (len(d.open) == 0 || w.now().Sub(d.checkpointed) >= w.Store.CheckpointEvery()) {
		return w.checkpointSoon(d)
	}
	return nil
}

// Run calls Tick every interval until ctx ends (live rule only).
func (w *Window) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := w.Tick(); err != nil && ctx.Err() == nil {
				w.log().Error("window: timed close failed", "err", err)
			}
		}
	}
}

func (w *Window) owns(d *domainWindow) bool {
	if !w.tracking {
		return true
	}
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
}

// Flush checkpoints every owned domain holding samples not yet
// checkpointed (graceful shutdown: a restart then needs no catch-up).
func (w *Window) Flush() error {
	if w.Store == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for _, d := range w.sortedDomains() {
		w.awaitSave(d) // a failed one leaves it dirty
		if d.dirty && w.owns(d) {
			errs = append(errs, w.checkpoint(d))
		}
	}
	return errors.Join(errs...)
}

// retry runs f until it succeeds or the window's context ends:
// infrastructure errors (broker away, rebalance) must hold the stream, not
// poison it. Expected while a broker is away, so one line per attempt and
// no stack.
func (w *Window) retry(what string, f func() error) error {
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
		w.log().Warn("window: retrying", "what", what, "attempt", attempt, "err", err.Error())
		if w.OnRetry != nil {
			w.OnRetry(strings.Fields(what)[0])
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}
