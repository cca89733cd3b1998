package handlers

import (
	"fmt"
	"slices"

	"hots/codecs"
	"hots/placement"
)

// Assign is the consumer group's new assignment for this instance (called
// after every rebalance, before any record of the new generation is
// delivered). It holds the window exclusively (no record handled
// meanwhile) and
//   - forgets domains on partitions this instance no longer owns (their
//     new owner restores them from the table),
//   - forgets domains whose checkpoint in the table is ahead of what this
//     instance holds (another instance owned them in between),
//   - restores, from the table, every checkpointed domain of an owned
//     partition that is not in memory, and catches it up to the
//     partition's end: a domain whose last records were acked just before
//     a crash, with nothing after them, is complete (and closes its last
//     tick on idleness) without waiting for a record that may never come.
//
// Idle closes are only made for domains whose partitions are all owned.
func (w *Window) Assign(claims map[string][]int32) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.initLive()
	set := map[tp]bool{}
	for t, ps := range claims {
		for _, p := range ps {
			set[tp{t, p}] = true
		}
	}
	prev := w.claims
	if !w.tracking {
		prev = nil
	}
	defer func() {
		if w.OnOwnership != nil {
			w.OnOwnership(len(set), w.Domains())
		}
	}()
	w.tracking, w.assigned, w.claims = true, true, set
	w.posMu.Lock()
	for k := range w.tpNext {
		if !set[k] || !prev[k] {
			delete(w.tpNext, k) // not handled continuously by this instance
			delete(w.tpFrom, k)
		}
	}
	w.posMu.Unlock()
	for _, d := range w.sortedDomains() {
		if reason := w.stale(d, set, prev); reason != "" {
			w.log().Info("domain released", "domain", d.name, "reason", reason)
			w.forget(d.name)
		}
	}
	if w.Store == nil || len(set) == 0 {
		return nil
	}
	var names []string
	if err := w.retry("list checkpoints", func() error {
		var err error
		names, err = w.Store.Domains()
		return err
	}); err != nil {
		return err
	}
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		if w.held(name) != nil {
			continue
		}
		if err := w.restoreOwned(name, set); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("assign: %w", errs[0])
	}
	return nil
}

// Revoke ends the current assignment: no idle close until the next
// Assign. With flush (a graceful shutdown) the dirty domains are
// checkpointed first, while no other instance can own them yet (the
// group waits for this member to leave), so a restart needs no catch-up.
func (w *Window) Revoke(flush bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	if flush && w.assigned && w.Store != nil {
		for _, d := range w.sortedDomains() {
			w.awaitSave(d)
			if d.dirty && w.owns(d) {
				errs = append(errs, w.checkpoint(d))
			}
		}
	}
	w.assigned = false
	return joinErrs(errs)
}

func joinErrs(errs []error) error {
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return fmt.Errorf("%d checkpoint(s) failed, first: %w", len(out), out[0])
}

// stale says why an in-memory domain must be forgotten at a new
// assignment ("" to keep it).
func (w *Window) stale(d *domainWindow, set, prev map[tp]bool) string {
	for t, ps := range d.offsets {
		for p := range ps {
			k := tp{t, p}
			if !set[k] {
				return fmt.Sprintf("partition %s[%d] is assigned elsewhere", t, p)
			}
			if !prev[k] {
				return fmt.Sprintf("partition %s[%d] was not owned by this instance until now", t, p)
			}
		}
	}
	if w.Store == nil {
		return ""
	}
	cp, ok, err := w.Store.Load(d.name)
	if err != nil || !ok {
		return ""
	}
	if mine := lastClosed(d); cp.LastClosedTick > mine {
		return fmt.Sprintf("the table holds tick %d, this instance %d", cp.LastClosedTick, d.closed)
	}
	for t, ps := range cp.Offsets {
		for p, off := range ps {
			if off > d.offsets[t][p] && set[tp{t, p}] {
				return fmt.Sprintf("the table covers %s[%d] up to %d, this instance %d", t, p, off, d.offsets[t][p])
			}
		}
	}
	return ""
}

// restoreOwned restores a checkpointed domain whose partitions are all
// owned and catches it up to each partition's end.
func (w *Window) restoreOwned(name string, set map[tp]bool) error {
	cp, ok, err := w.loadCheckpoint(name)
	if err != nil {
		return err
	}
	if !ok || len(cp.Offsets) == 0 {
		return nil
	}
	for t, ps := range cp.Offsets {
		for p := range ps {
			if !set[tp{t, p}] {
				return nil // another instance owns (part of) it
			}
		}
	}
	d := newDomainWindow(name)
	if err := w.restore(d, cp, true); err != nil {
		w.log().Error("domain not restored: checkpoint unusable", "domain", name, "err", err)
		return nil // the first record of the domain will report it (poison)
	}
	w.put(d)
	caught := 0
	for _, t := range sortedKeys(cp.Offsets) {
		for _, p := range sortedKeys(cp.Offsets[t]) {
			src := tp{t, p}
			if w.Replayer == nil {
				continue
			}
			var end int64
			if err := w.retry("end of "+t, func() error {
				var err error
				end, err = w.Replayer.End(w.context(), t, p)
				return err
			}); err != nil {
				return err
			}
			n, err := w.catchUp(d, src, end)
			if err != nil {
				return err
			}
			d.checked[src] = true
			w.posMu.Lock()
			w.covered(src, end)
			w.tpNext[src] = max(w.tpNext[src], end) // read to end (for the idle rule)
			w.posMu.Unlock()
			caught += n
		}
	}
	if w.OnRestored != nil {
		w.OnRestored(name, true, caught)
	}
	return nil
}

func sortedKeys[K int32 | string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// recordLoads keeps the closed tick's per-host load (samples already
// re-attributed to their current host) for the host table.
func (w *Window) recordLoads(d *domainWindow, tick int64, ss []placement.Sample) {
	if w.OnHosts == nil {
		return
	}
	n := w.RecentTicks
	if n <= 0 {
		n = 6
	}
	hl := hostLoads{tick: tick, loads: map[string][]float64{}, where: map[string]string{}}
	for _, s := range ss {
		l := hl.loads[s.Host]
		if l == nil {
			l = make([]float64, len(w.Fields.Metrics))
			hl.loads[s.Host] = l
		}
		for i := range min(len(l), len(s.Values)) {
			l[i] += s.Values[i]
		}
		hl.where[s.Container] = s.Host
	}
	d.recent = append(d.recent, hl)
	if len(d.recent) > n {
		d.recent = append(d.recent[:0], d.recent[len(d.recent)-n:]...)
	}
}

// hostStates is the domain's hosts after a decision: containers where the
// last closed tick saw them, with this decision's moves applied.
func (w *Window) hostStates(d *domainWindow, moves []placement.Move) []codecs.HostState {
	if len(d.recent) == 0 {
		return nil
	}
	last := d.recent[len(d.recent)-1]
	where := make(map[string]string, len(last.where))
	for c, h := range last.where {
		where[c] = h
	}
	for _, mv := range moves {
		if mv.Domain == d.name {
			where[mv.Container] = mv.NewHost
		}
	}
	byHost := map[string]*codecs.HostState{}
	get := func(name string) *codecs.HostState {
		h := byHost[name]
		if h == nil {
			h = &codecs.HostState{Name: name, Capacity: map[string]float64{}, RecentLoad: map[string][]float64{}}
			byHost[name] = h
		}
		return h
	}
	if e, err := w.Placer.Engine(d.name); err == nil {
		for _, h := range e.Hosts() {
			lh := get(h.Name)
			for i, m := range w.Fields.Metrics {
				if i < len(h.Capacity) {
					lh.Capacity[m] = h.Capacity[i]
				}
			}
		}
	}
	for c, h := range where {
		lh := get(h)
		lh.Containers = append(lh.Containers, c)
	}
	for _, name := range sortedKeys(byHost) {
		lh := byHost[name]
		for i, m := range w.Fields.Metrics {
			series := make([]float64, 0, len(d.recent))
			for _, r := range d.recent {
				v := 0.0
				if l := r.loads[name]; i < len(l) {
					v = l[i]
				}
				series = append(series, v)
			}
			lh.RecentLoad[m] = series
		}
	}
	out := make([]codecs.HostState, 0, len(byHost))
	for _, name := range sortedKeys(byHost) {
		lh := byHost[name]
		slices.Sort(lh.Containers)
		out = append(out, *lh)
	}
	return out
}

// hostLoads is one closed tick's summed load per host (metric order of
// Fields.Metrics) and where each container ran; not checkpointed (a
// restored domain starts it again).
type hostLoads struct {
	tick  int64
	loads map[string][]float64
	where map[string]string // container -> host at that tick (after moves)
}
