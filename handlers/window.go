package handlers

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
	"hots/placement"
)

// Window is stage 2: it gathers samples per domain and tick and, when a
// tick closes, emits it as one TickBatch per domain and reports each
// host's load (as placed by the run, and as the trace recorded it).
//
// In replay a tick closes at its watermark (Handle). In live mode the
// caller asks a LivePolicy which ticks are due and calls CloseUpTo; both
// paths may run concurrently, hence the lock.
type Window struct {
	// Metrics is the number of values per sample.
	Metrics int
	// OnTickClosed, if set, gets per-host loads of each closed tick:
	// actual by Sample.Host, baseline by TraceHost (or Host when the
	// sample was not re-attributed). The maps are not retained.
	OnTickClosed func(domain string, tick int64, actual, baseline map[string][]float64)
	// OnDropped, if set, gets each sample dropped as late (its tick was
	// closed) or as a duplicate (tick, container).
	OnDropped func(s placement.Sample, late bool)

	mu      sync.Mutex
	domains map[string]*domainWindow
	stats   WindowStats
	scratch []placement.Sample // handleSamples' batch, reused
	reader  codecs.SampleReader
	closed  []closedTick // closed by the current close call
}

// Seen counts what the window accepted: domains, distinct containers and
// distinct hosts (placed or recorded), summed over domains.
func (w *Window) Seen() (domains, containers, hosts int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range w.domains {
		containers += d.ctrs.Len()
		hosts += d.hosts.Len()
	}
	return len(w.domains), containers, hosts
}

// WindowStats are the Window's counts.
type WindowStats struct {
	Samples    int64 // accepted
	Late       int64 // for an already closed tick: dropped
	Duplicates int64 // (tick, container) seen before: dropped
	Ticks      int64 // (domain, tick) pairs closed
}

// domainWindow interns the domain's container and host names
// (codecs.Symbols: each name copied once, so samples never pin the message
// payloads they were decoded from, and no pointer per name for the GC).
// Each container has a dense id, which makes the per-tick duplicate check
// a bit test instead of a map per tick.
type domainWindow struct {
	name      string
	open      map[int64]*openTick
	ctrs      codecs.Symbols
	hosts     codecs.Symbols // placed and recorded
	prev      int32          // id of the last container looked up (-1: none)
	lastHost  []int32        // container id -> host id of its last accepted sample (-1: none)
	lastTrace []int32        // container id -> trace host id of its last accepted sample (-1: none)
	free      []*openTick    // ticks closed by Handle, whose buffers nobody else holds, for reuse
	freeSeen  [][]uint64     // bitsets of other closed ticks, for reuse
	hint      int            // samples in the last closed tick: capacity of the next
	closed    int64
	hasClosed bool
}

type openTick struct {
	samples []placement.Sample
	vals    []float64 // the samples' values, copied in
	seen    []uint64  // bit per container id
}

// Stats returns the counts so far.
func (w *Window) Stats() WindowStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

func (w *Window) domain(name string) *domainWindow {
	dw := w.domains[name]
	if dw == nil {
		name = strings.Clone(name)
		dw = &domainWindow{name: name, open: map[int64]*openTick{}, prev: -1}
		w.domains[name] = dw
	}
	return dw
}

// container returns the container's id, interning a new name (trying
// first the container that followed the previous one last time).
func (dw *domainWindow) container(c string) int32 {
	id := dw.ctrs.InternAfter(dw.prev, c)
	if int(id) == len(dw.lastHost) {
		dw.lastHost = append(dw.lastHost, -1)
		dw.lastTrace = append(dw.lastTrace, -1)
	}
	dw.prev = id
	return id
}

// host interns a host name, trying the previous one (*last) first: a
// container rarely changes hosts.
func (dw *domainWindow) host(h string, last *int32) string {
	if *last >= 0 {
		if n := dw.hosts.Name(*last); n == h {
			return n
		}
	}
	*last = dw.hosts.Intern(h)
	return dw.hosts.Name(*last)
}

func (dw *domainWindow) openTick(t int64, metrics int) *openTick {
	ot := dw.open[t]
	if ot != nil {
		return ot
	}
	if n := len(dw.free); n > 0 {
		ot, dw.free = dw.free[n-1], dw.free[:n-1]
	} else {
		ot = &openTick{samples: make([]placement.Sample, 0, dw.hint), vals: make([]float64, 0, dw.hint*metrics)}
		if n := len(dw.freeSeen); n > 0 {
			ot.seen, dw.freeSeen = dw.freeSeen[n-1], dw.freeSeen[:n-1]
		}
	}
	dw.open[t] = ot
	return ot
}

// Add takes samples in.
func (w *Window) Add(ss []placement.Sample) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var c addCursor
	for i := range ss {
		w.add(&c, ss[i], false)
	}
}

// addCursor keeps the domain and open tick of the previous sample: a
// batch is usually one domain and one tick.
type addCursor struct {
	dw   *domainWindow
	ot   *openTick
	tick int64
}

// add takes one sample in. views says its strings and values are views of
// a message payload and a reused buffer (handleSamples): then they are
// copied before anything keeps them.
func (w *Window) add(c *addCursor, s placement.Sample, views bool) {
	if w.domains == nil {
		w.domains = map[string]*domainWindow{}
	}
	if c.dw == nil || s.Domain != c.dw.name {
		c.dw, c.ot = w.domain(s.Domain), nil
	}
	dw := c.dw
	if dw.hasClosed && s.Tick <= dw.closed {
		w.stats.Late++
		w.drop(s, true, views)
		return
	}
	if c.ot == nil || c.tick != s.Tick {
		c.ot, c.tick = dw.openTick(s.Tick, w.Metrics), s.Tick
	}
	ot := c.ot
	id := dw.container(s.Container)
	word, bit := int(id>>6), uint64(1)<<(id&63)
	if word >= len(ot.seen) {
		ot.seen = slices.Grow(ot.seen, word+1-len(ot.seen))
		ot.seen = ot.seen[:cap(ot.seen)]
	}
	if ot.seen[word]&bit != 0 {
		w.stats.Duplicates++
		w.drop(s, false, views)
		return
	}
	ot.seen[word] |= bit
	s.Domain, s.Container = dw.name, dw.ctrs.Name(id)
	s.Host = dw.host(s.Host, &dw.lastHost[id])
	if s.TraceHost != "" {
		s.TraceHost = dw.host(s.TraceHost, &dw.lastTrace[id])
	}
	// Values are copied into the tick's slab: the window does not alias its
	// callers' slices, and in replay the slab is reused tick after tick.
	n := len(ot.vals)
	ot.vals = append(ot.vals, s.Values...)
	s.Values = ot.vals[n:len(ot.vals):len(ot.vals)]
	ot.samples = append(ot.samples, s)
	w.stats.Samples++
}

// handleSamples adds a samples payload without building a []Sample first:
// names are read as views of the payload and interned by add.
// A malformed payload adds nothing: it is read whole into a reused scratch
// slice first.
func (w *Window) handleSamples(payload []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	sr := &w.reader // values are copied by add
	if err := sr.ResetReuse(payload); err != nil {
		return err
	}
	ss := w.scratch[:0]
	for {
		ss = append(ss, placement.Sample{})
		if !sr.Next(&ss[len(ss)-1]) {
			ss = ss[:len(ss)-1]
			break
		}
	}
	defer func() { clear(ss); w.scratch = ss[:0] }() // keep no views
	if err := sr.Err(); err != nil {
		return err
	}
	var c addCursor
	for i := range ss {
		w.add(&c, ss[i], true)
	}
	return nil
}

func (w *Window) drop(s placement.Sample, late, views bool) {
	if w.OnDropped != nil {
		if views {
			s.Domain, s.Container = strings.Clone(s.Domain), strings.Clone(s.Container)
			s.Host, s.TraceHost = strings.Clone(s.Host), strings.Clone(s.TraceHost)
			s.Values = slices.Clone(s.Values)
		}
		w.OnDropped(s, late)
	}
}

// CloseUpTo closes every open tick ≤ tick of a domain, oldest first.
func (w *Window) CloseUpTo(domain string, tick int64) []placement.TickBatch {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.release(false)
	return w.closeUpTo(domain, tick)
}

// CloseAllUpTo closes every open tick ≤ tick of every domain (a replay
// watermark covers all domains), domains in name order for determinism.
func (w *Window) CloseAllUpTo(tick int64) []placement.TickBatch {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.release(false)
	return w.closeAllUpTo(tick)
}

// closedTick is a tick closeUpTo closed, until release.
type closedTick struct {
	dw *domainWindow
	ot *openTick
}

// release recycles the buffers of the ticks just closed: only the duplicate
// bitsets when the batches went to a caller, everything when the caller
// (Handle) has encoded them and dropped them.
func (w *Window) release(all bool) {
	for i, c := range w.closed {
		if all {
			clear(c.ot.samples)
			c.ot.samples, c.ot.vals = c.ot.samples[:0], c.ot.vals[:0]
			c.dw.free = append(c.dw.free, c.ot)
		} else {
			c.dw.freeSeen = append(c.dw.freeSeen, c.ot.seen)
		}
		w.closed[i] = closedTick{}
	}
	w.closed = w.closed[:0]
}

func (w *Window) closeAllUpTo(tick int64) []placement.TickBatch {
	names := make([]string, 0, len(w.domains))
	for d := range w.domains {
		names = append(names, d)
	}
	slices.Sort(names)
	var out []placement.TickBatch
	for _, d := range names {
		out = append(out, w.closeUpTo(d, tick)...)
	}
	return out
}

func (w *Window) closeUpTo(domain string, tick int64) []placement.TickBatch {
	dw := w.domains[domain]
	if dw == nil {
		return nil
	}
	var ticks []int64
	for t := range dw.open {
		if t <= tick {
			ticks = append(ticks, t)
		}
	}
	slices.Sort(ticks)
	out := make([]placement.TickBatch, 0, len(ticks))
	for _, t := range ticks {
		ot := dw.open[t]
		b := placement.TickBatch{Domain: dw.name, Tick: t, Samples: ot.samples}
		delete(dw.open, t)
		dw.hint = len(ot.samples)
		clear(ot.seen)
		w.closed = append(w.closed, closedTick{dw, ot})
		w.report(b)
		out = append(out, b)
		w.stats.Ticks++
	}
	if !dw.hasClosed || tick > dw.closed {
		dw.closed, dw.hasClosed = tick, true
	}
	return out
}

func (w *Window) report(b placement.TickBatch) {
	if w.OnTickClosed == nil {
		return
	}
	actual, baseline := HostLoads(b.Samples, w.Metrics)
	w.OnTickClosed(b.Domain, b.Tick, actual, baseline)
}

// HostLoads sums samples per host: actual by Host, baseline by TraceHost
// when the replay re-attributed the sample, else by Host.
func HostLoads(ss []placement.Sample, metrics int) (actual, baseline map[string][]float64) {
	actual, baseline = map[string][]float64{}, map[string][]float64{}
	add := func(m map[string][]float64, h string, v []float64) {
		l := m[h]
		if l == nil {
			l = make([]float64, metrics)
			m[h] = l
		}
		for k := 0; k < metrics && k < len(v); k++ {
			l[k] += v[k]
		}
	}
	for _, s := range ss {
		add(actual, s.Host, s.Values)
		bh := s.Host
		if s.TraceHost != "" {
			bh = s.TraceHost
		}
		add(baseline, bh, s.Values)
	}
	return actual, baseline
}

// Handle is the replay handler func: samples are added, a watermark closes
// its tick in every domain and emits one "tick" message per closed batch.
func (w *Window) Handle(msg *message.Message) ([]*message.Message, error) {
	switch msg.Metadata.Get(codecs.MetaKind) {
	case codecs.KindSamples:
		if err := w.handleSamples(msg.Payload); err != nil {
			return nil, Permanent(err)
		}
		return nil, nil
	case codecs.KindWatermark:
		t, err := strconv.ParseInt(msg.Metadata.Get(codecs.MetaTick), 10, 64)
		if err != nil {
			return nil, Permanent(err)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		msgs := TickMessages(w.closeAllUpTo(t))
		w.release(true) // encoded: the batches are ours to reuse
		return msgs, nil
	}
	return nil, nil
}

// TickMessages encodes closed ticks as stage-3 messages.
func TickMessages(bs []placement.TickBatch) []*message.Message {
	out := make([]*message.Message, 0, len(bs))
	for _, b := range bs {
		ts := strconv.FormatInt(b.Tick, 10)
		m := message.NewMessage(b.Domain+":tick:"+ts, codecs.EncodeSamples(b.Samples))
		m.Metadata.Set(codecs.MetaKind, codecs.KindTick)
		m.Metadata.Set(codecs.MetaDomain, b.Domain)
		m.Metadata.Set(codecs.MetaTick, ts)
		m.Metadata.Set(codecs.MetaKey, b.Domain)
		out = append(out, m)
	}
	return out
}
