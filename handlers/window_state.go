package handlers

import (
	"bytes"
	"compress/gzip"
	"encoding/gob"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"hots/codecs"
	"hots/placement"
)

// liveData is a domain's checkpoint payload: the engine snapshot, the
// ticks still open, where the run's moves put containers, and the clock.
type liveData struct {
	Engine    []byte              // placement.Engine.Snapshot (gob)
	Open      []liveOpenTick      //
	Overrides map[string]override // container -> host after a tick
	Closed    int64
	HasClosed bool
}

type liveOpenTick struct {
	Tick    int64
	Samples []placement.Sample
}

func lastClosed(d *domainWindow) int64 {
	if d.hasClosed {
		return d.closed
	}
	return math.MinInt64 / 2
}

// checkpoint saves d now and returns once it is written (d.mu held),
// after the save of d in flight, if any: a graceful stop or a handover
// must leave the table complete.
func (w *Window) checkpoint(d *domainWindow) error {
	w.awaitSave(d)
	start := w.now()
	cp, err := w.snapshot(d)
	if err != nil {
		return err
	}
	if err := w.save(d.name, cp); err != nil {
		return err
	}
	d.dirty, d.checkpointed = false, w.now()
	if w.OnCheckpoint != nil {
		w.OnCheckpoint(d.name, len(cp.Data), w.now().Sub(start).Seconds())
	}
	return nil
}

// checkpointSoon is the save after tick closes and on idleness (d.mu
// held). With BackgroundSaves the state is encoded here, under the lock,
// and written while the domain goes on: at 5,000 containers the write is
// two thirds of a 300 ms save. One save per domain is in flight at a
// time; while it is, the domain stays dirty and is saved after it.
func (w *Window) checkpointSoon(d *domainWindow) error {
	if !w.BackgroundSaves {
		return w.checkpoint(d)
	}
	if op := d.saving; op != nil {
		select {
		case <-op.done:
			w.settle(d)
		default:
			return nil
		}
	}
	start := w.now()
	cp, err := w.snapshot(d)
	if err != nil {
		return err
	}
	op := &pendingSave{done: make(chan struct{})}
	d.saving, d.dirty, d.checkpointed = op, false, w.now()
	name := d.name
	go func() {
		defer close(op.done)
		if op.err = w.save(name, cp); op.err != nil {
			w.log().Warn("checkpoint failed: the domain is saved again", "domain", name, "err", op.err.Error())
			return
		}
		if w.OnCheckpoint != nil {
			w.OnCheckpoint(name, len(cp.Data), w.now().Sub(start).Seconds())
		}
	}()
	return nil
}

// pendingSave is a checkpoint being written in the background.
type pendingSave struct {
	done chan struct{}
	err  error // set before done closes
}

// awaitSave waits for d's save in flight, if any (d.mu held; the save
// does not take it).
func (w *Window) awaitSave(d *domainWindow) {
	if d.saving != nil {
		<-d.saving.done
		w.settle(d)
	}
}

// settle takes note of d's finished save: a failed one leaves d dirty.
func (w *Window) settle(d *domainWindow) {
	if d.saving.err != nil {
		d.dirty = true
	}
	d.saving = nil
}

// snapshot encodes d's state as a checkpoint (d.mu held). Nothing in it
// is shared with d: it may be written after d moved on.
func (w *Window) snapshot(d *domainWindow) (codecs.Checkpoint, error) {
	e, err := w.Placer.Engine(d.name)
	if err != nil {
		return codecs.Checkpoint{}, err
	}
	snap, err := e.Snapshot()
	if err != nil {
		return codecs.Checkpoint{}, err
	}
	ld := liveData{Engine: snap, Overrides: map[string]override{}, Closed: d.closed, HasClosed: d.hasClosed}
	for id, ov := range d.moved {
		if ov.set {
			ld.Overrides[d.ctrs.Name(int32(id))] = ov
		}
	}
	for t, ot := range d.open {
		ld.Open = append(ld.Open, liveOpenTick{Tick: t, Samples: ot.samples})
	}
	slices.SortFunc(ld.Open, func(a, b liveOpenTick) int { return int(a.Tick - b.Tick) })
	data, err := encodeCheckpoint(ld)
	if err != nil {
		return codecs.Checkpoint{}, err
	}
	offsets := make(map[string]map[int32]int64, len(d.offsets))
	for t, ps := range d.offsets {
		offsets[t] = maps.Clone(ps)
	}
	return codecs.Checkpoint{LastClosedTick: lastClosed(d), Data: data, Offsets: offsets}, nil
}

// save writes a checkpoint, retrying while the store is unreachable.
func (w *Window) save(name string, cp codecs.Checkpoint) error {
	return w.retry("checkpoint "+name, func() error {
		err := w.Store.Save(w.context(), name, cp)
		if errors.Is(err, ErrStaleCheckpoint) {
			return nil
		}
		return err
	})
}

// loadCheckpoint reads a domain's checkpoint, retrying while the store is
// unreachable.
func (w *Window) loadCheckpoint(name string) (cp codecs.Checkpoint, ok bool, err error) {
	if w.Store == nil {
		return cp, false, nil
	}
	err = w.retry("load checkpoint "+name, func() error {
		var e error
		cp, ok, e = w.Store.Load(name)
		return e
	})
	return cp, ok, err
}

// acquire returns the domain's state with its lock held (w.mu held
// shared), restoring it from its checkpoint and catching up on the
// partition when this instance sees the domain (or the domain on this
// partition) for the first time. On error nothing is held.
func (w *Window) acquire(name string, src tp, off int64) (*domainWindow, error) {
	d, fresh := w.lookup(name)
	caught, checkpointed := 0, false
	if fresh {
		cp, ok, err := w.loadCheckpoint(name)
		if err != nil {
			w.discard(d)
			return nil, err
		}
		checkpointed = ok
		if err = w.restore(d, cp, ok); err != nil {
			w.discard(d)
			return nil, fmt.Errorf("domain %s: restore: %w", name, Permanent(err))
		}
		defer func() {
			if w.OnRestored != nil {
				w.OnRestored(name, ok, caught)
			}
		}()
	}
	if off < 0 || d.checked[src] {
		return d, nil
	}
	d.checked[src] = true
	to := off
	if fresh && !checkpointed {
		// Never saved, and new here: its records on src, if any, are
		// before what this instance has read of src without a gap (a
		// previous owner's, lost with it), not in between. With a group
		// that started at the beginning there is nothing to read again.
		w.posMu.Lock()
		if from, ok := w.tpFrom[src]; ok && from < to {
			to = from
		}
		w.posMu.Unlock()
	}
	if to <= d.offsets[src.topic][src.partition] || w.Replayer == nil {
		return d, nil
	}
	n, err := w.catchUp(d, src, to)
	caught += n
	if err != nil {
		d.mu.Unlock()
		return nil, err
	}
	return d, nil
}

// catchUp folds this domain's records of src from the offset its state
// covers up to (not including) to.
func (w *Window) catchUp(d *domainWindow, src tp, to int64) (int, error) {
	from := d.offsets[src.topic][src.partition] // 0 when none: the partition's start
	if to <= from || w.Replayer == nil {
		return 0, nil
	}
	var recs []codecs.Record
	if err := w.retry("catch up "+d.name, func() error {
		var err error
		recs, err = w.Replayer.ReadRange(w.context(), src.topic, src.partition, from, to)
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
		if len(mine) == 0 || w.implausible(d, mine) != nil {
			continue // not folded the first time either (poisoned)
		}
		caught++
		if err := w.foldAndClose(d, mine, src, r.Offset); err != nil {
			return caught, err
		}
	}
	return caught, nil
}

// restore builds a new domain window's state (d, empty) and engine from
// its checkpoint, or a new engine without (ok false).
func (w *Window) restore(d *domainWindow, cp codecs.Checkpoint, ok bool) error {
	name := d.name
	d.lastArrival = w.now()
	if !ok {
		e, err := w.Placer.NewEngine(name)
		if err != nil {
			return err
		}
		w.Placer.SetEngine(name, e)
		return nil
	}
	var ld liveData
	if err := decodeCheckpoint(cp.Data, &ld); err != nil {
		return err
	}
	e, err := placement.Restore(ld.Engine)
	if err != nil {
		return err
	}
	// The engine's hosts stay its domain's; capacities learnt since the
	// checkpoint (node_meta, a nodes topic) win.
	if err := w.Placer.Adopt(name, e); err != nil {
		return err
	}
	w.Placer.SetEngine(name, e)
	c := addCursor{dw: d, now: w.now()}
	for _, ot := range ld.Open {
		for i := range ot.Samples {
			w.add(&c, ot.Samples[i])
		}
	}
	w.count(&c, false) // restored, not received: counted by their first owner
	names := make([]string, 0, len(ld.Overrides))
	for n := range ld.Overrides {
		names = append(names, n)
	}
	slices.Sort(names) // ids in a deterministic order
	for _, n := range names {
		ov := ld.Overrides[n]
		d.move(placement.Move{Container: n, NewHost: ov.Host, Tick: ov.After})
	}
	d.closed, d.hasClosed = ld.Closed, ld.HasClosed
	d.clock, d.clockSet = ld.Closed, ld.HasClosed
	for _, ot := range ld.Open {
		if !d.clockSet || ot.Tick > d.clock {
			d.clock, d.clockSet = ot.Tick, true
		}
	}
	if d.clockSet {
		d.seen.Store(d.clock)
	}
	for t, ps := range cp.Offsets {
		d.offsets[t] = map[int32]int64{}
		for p, o := range ps {
			d.offsets[t][p] = o
		}
	}
	return nil
}

// encodeCheckpoint writes a domain's state as gzipped gob. gob because
// the engine snapshot is mostly float64s, which JSON would spell out as
// decimals and then base64; the fastest gzip level because it is written
// after every tick close, and it must stay compressed: the record has to
// pass the producer's and broker's message size limits.
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
