package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
	"hots/placement"
)

// TickRule is how ticks close (connectors.TickRule, restated here so that
// handlers depend on nothing above them).
type TickRule struct {
	// Watermarks: a tick closes at its watermark message (replay).
	Watermarks bool
	// Otherwise a tick closes once a sample of a later tick arrived at
	// least Lateness ago, or after IdleTimeout without samples (live).
	Lateness    time.Duration
	IdleTimeout time.Duration
	// MaxTickJump: see connectors.TickRule (0: no bound).
	MaxTickJump int64
}

// Window is stage 2, the same for every connector: it gathers samples per
// domain and tick, closes ticks by the connector's TickRule, re-attributes
// the samples of moved containers to their new host, and hands each closed
// tick to the placement stage through Emit. Emit returns once every later
// stage acked, so the tick's moves are published (and known here, through
// Decided) before the next tick closes: a move decided at tick t applies
// from tick t+1, in every mode. This is the one place of the pipeline that
// applies moves to later samples, by placement.Reattribute's rule.
//
// With a Store (live mode) the window also checkpoints each domain after
// its ticks closed, restores a domain the first time it sees it or when
// its partition is assigned here (Assign), and with a Replayer reads
// again the records acked after the checkpoint (catch-up).
type Window struct {
	Fields codecs.UsageFields
	Rule   TickRule
	Placer *Placer
	// Emit publishes closed-tick messages to the placement stage and
	// returns once they went through every later stage (required).
	Emit func(msgs []*message.Message) error
	// Store and Replayer are optional (live mode).
	Store    Store
	Replayer Replayer
	// OnTickClosed, if set, gets per-host loads of each closed tick:
	// actual by Sample.Host (after the run's moves), baseline by the host
	// the input named. The maps are not retained.
	OnTickClosed func(domain string, tick int64, actual, baseline map[string][]float64)
	// OnHosts, if set, gets the domain's hosts after every loop.
	OnHosts     func(domain string, tick int64, hosts []codecs.HostState)
	RecentTicks int // ticks of recent load OnHosts reports; 0 = 6
	// Hooks for metrics (optional).
	OnSamples  func(n int)
	OnLate     func(n int)
	OnClosed   func(domain string, tick int64, publishSeconds float64)
	OnRestored func(domain string, fromCheckpoint bool, caughtUp int)
	// BackgroundSaves writes the checkpoints made after tick closes and on
	// idleness while the domain goes on (see checkpointSoon); graceful
	// stops and handovers still wait for them.
	BackgroundSaves bool
	// OnCheckpoint gets each checkpoint's size and the time it took.
	OnCheckpoint func(domain string, bytes int, seconds float64)
	// OnRetry is told of each retry of an infrastructure operation.
	OnRetry func(what string)
	// OnOwnership gets each assignment's partition count and the domains
	// held after it; OnDomains the domains held after each record.
	OnOwnership func(partitions, domains int)
	OnDomains   func(domains int)
	Now         func() time.Time
	Log         *slog.Logger

	ctx context.Context
	// Locks, in the order they are taken (never the other way round):
	//
	//	mu (RWMutex)  window-wide. Every record, watermark and Tick holds
	//	              it shared for its whole handling, so records of
	//	              different domains are handled, their ticks closed and
	//	              checkpointed at the same time. Operations on the whole
	//	              window hold it exclusively, which waits for every
	//	              handling in progress and excludes them all: Assign,
	//	              Revoke, Flush, WithLock (capacity updates) and a
	//	              partition's eviction. Never taken twice by one
	//	              goroutine (a shared lock taken again deadlocks behind
	//	              a waiting writer).
	//	domainWindow.mu  one domain: held while a record's samples are
	//	              folded in, its ticks closed (through Emit, which waits
	//	              for the placement and publish stages: those never
	//	              take a window lock) and its checkpoint written. Taken
	//	              only under mu (shared), one domain at a time: a
	//	              goroutine never holds two. Under mu held exclusively
	//	              nobody holds one, and domains are used without it.
	//	domMu, posMu, pendMu, Placer's lock  leaves: held briefly,
	//	              nothing is taken under them.
	mu      sync.RWMutex
	domMu   sync.Mutex // the domains map
	domains map[string]*domainWindow
	stats   windowCounts
	bufs    sync.Pool // *readBuf: a record's decoding buffers
	// pending are the moves of the tick being closed, per domain, from
	// Decided, which runs on a placement stage's goroutine; its own lock
	// because a stopping pipeline can leave a Decided running after Emit
	// gave up.
	pendMu  sync.Mutex
	pending map[string]*pendingMoves

	positions // partitions and offsets (live mode)
}

type pendingMoves struct {
	moves   []placement.Move
	decided bool
}

// readBuf is a record's samples read as views of its payload.
type readBuf struct {
	reader  codecs.SampleReader
	scratch []placement.Sample
}

// windowCounts are the WindowStats, counted from concurrent handlings.
type windowCounts struct {
	samples, late, duplicates, ticks, relocated atomic.Int64
}

// WindowStats are the Window's counts.
type WindowStats struct {
	Samples    int64 // accepted
	Late       int64 // for an already closed tick: dropped
	Duplicates int64 // (tick, container) seen before: dropped
	Ticks      int64 // (domain, tick) pairs closed
	Relocated  int64 // samples re-attributed to a moved container's new host
}

// domainWindow interns the domain's container and host names
// (codecs.Symbols: each name copied once, so samples never pin the message
// payloads they were decoded from, and no pointer per name for the GC).
// Each container has a dense id, which makes the per-tick duplicate check
// a bit test and a move's override a slice lookup.
type domainWindow struct {
	mu sync.Mutex // see Window's lock order
	// removed: forgotten by the window while a handling waited for mu
	// (its creation failed): look the domain up again.
	removed   bool
	name      string
	open      map[int64]*openTick
	ctrs      codecs.Symbols
	hosts     codecs.Symbols // placed and recorded
	prev      int32          // id of the last container looked up (-1: none)
	lastHost  []int32        // container id -> host id of its last accepted sample (-1: none)
	lastTrace []int32        // container id -> trace host id of its last accepted sample (-1: none)
	moved     []override     // container id -> where the run's own moves put it
	nMoved    int
	free      []*openTick // closed ticks whose buffers nobody holds, for reuse
	hint      int         // samples in the last closed tick: capacity of the next
	closed    int64
	hasClosed bool

	// Live mode: arrival times, offsets covered, checkpoint state.
	clock    int64 // newest tick accepted (clockSet: any)
	clockSet bool
	// seen is clock for readers that do not take mu (the decode stage's
	// far-future check, which must not wait for a tick close): noClock
	// while unset.
	seen        atomic.Int64
	lastArrival time.Time
	offsets     map[string]map[int32]int64
	checked     map[tp]bool
	dirty       bool
	// checkpointed is when the domain was last saved: with a Store's
	// CheckpointEvery, closes in between leave it dirty.
	checkpointed time.Time
	saving       *pendingSave // the save in flight (BackgroundSaves)
	recent       []hostLoads  // for OnHosts, newest last
}

// override is a move applied to later samples: from tick after+1 on, the
// container runs on host.
type override struct {
	Host  string `json:"host"`
	After int64  `json:"after"`
	set   bool
}

type openTick struct {
	samples []placement.Sample
	ids     []int32   // container id of each sample
	vals    []float64 // the samples' values, copied in
	seen    []uint64  // bit per container id
	first   time.Time // arrival of the first sample (live rule)
}

// Start sets the context that bounds waits and retries (checkpoint saves,
// Emit in live mode). It should outlive the consuming context, so that a
// graceful shutdown can still checkpoint.
func (w *Window) Start(ctx context.Context) { w.ctx = ctx }

func (w *Window) context() context.Context {
	if w.ctx != nil {
		return w.ctx
	}
	return context.Background()
}

func (w *Window) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Window) log() *slog.Logger {
	if w.Log != nil {
		return w.Log
	}
	return slog.Default()
}

func (w *Window) metrics() int { return len(w.Fields.Metrics) }

// Stats returns the counts so far.
func (w *Window) Stats() WindowStats {
	return WindowStats{Samples: w.stats.samples.Load(), Late: w.stats.late.Load(), Duplicates: w.stats.duplicates.Load(),
		Ticks: w.stats.ticks.Load(), Relocated: w.stats.relocated.Load()}
}

// Seen counts what the window accepted: domains, distinct containers and
// distinct hosts (placed or recorded), summed over domains.
func (w *Window) Seen() (domains, containers, hosts int) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	ds := w.domainList()
	for _, d := range ds {
		d.mu.Lock()
		containers += d.ctrs.Len()
		hosts += d.hosts.Len()
		d.mu.Unlock()
	}
	return len(ds), containers, hosts
}

// Domains is the number of domains held in memory.
func (w *Window) Domains() int {
	w.domMu.Lock()
	defer w.domMu.Unlock()
	return len(w.domains)
}

// WithLock runs f while no tick is being handled (capacity updates).
func (w *Window) WithLock(f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f()
}

// Decided is the Placer's OnDecision hook: the moves become overrides of
// their domain once its Emit returned. It runs while the window waits in
// that Emit.
func (w *Window) Decided(d *placement.Decision) {
	w.pendMu.Lock()
	defer w.pendMu.Unlock()
	if w.pending == nil {
		w.pending = map[string]*pendingMoves{}
	}
	pm := w.pending[d.Domain]
	if pm == nil {
		pm = &pendingMoves{}
		w.pending[d.Domain] = pm
	}
	pm.moves = append(pm.moves, d.Moves...)
	pm.decided = true
}

// takePending returns the moves Decided collected for a domain and
// forgets them.
func (w *Window) takePending(domain string) ([]placement.Move, bool) {
	w.pendMu.Lock()
	defer w.pendMu.Unlock()
	pm := w.pending[domain]
	if pm == nil {
		return nil, false
	}
	delete(w.pending, domain)
	return pm.moves, pm.decided
}

// domainList is a snapshot of the domains held.
func (w *Window) domainList() []*domainWindow {
	w.domMu.Lock()
	defer w.domMu.Unlock()
	out := make([]*domainWindow, 0, len(w.domains))
	for _, d := range w.domains {
		out = append(out, d)
	}
	return out
}

// lookup returns the named domain with its lock held (under w.mu held
// shared). A domain not held yet is created empty and marked fresh: the
// caller restores it, or forgets it with discard; others asking for it
// meanwhile wait for its lock.
func (w *Window) lookup(name string) (d *domainWindow, fresh bool) {
	for {
		w.domMu.Lock()
		if w.domains == nil {
			w.domains = map[string]*domainWindow{}
		}
		d = w.domains[name]
		if d == nil {
			d = newDomainWindow(name)
			d.mu.Lock()
			w.domains[d.name] = d
			w.domMu.Unlock()
			return d, true
		}
		w.domMu.Unlock()
		d.mu.Lock()
		if !d.removed {
			return d, false
		}
		d.mu.Unlock()
	}
}

// discard forgets a domain whose creation failed, and unlocks it.
func (w *Window) discard(d *domainWindow) {
	w.domMu.Lock()
	if w.domains[d.name] == d {
		delete(w.domains, d.name)
	}
	w.domMu.Unlock()
	d.removed = true
	d.mu.Unlock()
}

// forget drops a domain and its engine (w.mu held exclusively).
func (w *Window) forget(name string) {
	w.domMu.Lock()
	if d := w.domains[name]; d != nil {
		d.removed = true
		delete(w.domains, name)
	}
	w.domMu.Unlock()
	w.Placer.DropEngine(name)
}

// held returns a domain held in memory, or nil (w.mu held exclusively,
// or the caller holds the domain's lock).
func (w *Window) held(name string) *domainWindow {
	w.domMu.Lock()
	defer w.domMu.Unlock()
	return w.domains[name]
}

// put installs a restored domain (w.mu held exclusively).
func (w *Window) put(d *domainWindow) {
	w.domMu.Lock()
	defer w.domMu.Unlock()
	if w.domains == nil {
		w.domains = map[string]*domainWindow{}
	}
	w.domains[d.name] = d
}

func newDomainWindow(name string) *domainWindow {
	d := &domainWindow{name: strings.Clone(name), open: map[int64]*openTick{}, prev: -1,
		offsets: map[string]map[int32]int64{}, checked: map[tp]bool{}}
	d.seen.Store(noClock)
	return d
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

func (dw *domainWindow) openTick(t int64, metrics int, now time.Time) *openTick {
	ot := dw.open[t]
	if ot != nil {
		return ot
	}
	if n := len(dw.free); n > 0 {
		ot, dw.free = dw.free[n-1], dw.free[:n-1]
	} else {
		ot = &openTick{samples: make([]placement.Sample, 0, dw.hint), ids: make([]int32, 0, dw.hint),
			vals: make([]float64, 0, dw.hint*metrics)}
	}
	ot.first = now
	dw.open[t] = ot
	return ot
}

// move records a move: the container's samples after mv.Tick go to its
// new host. Moves arrive in tick order, so the latest wins.
func (dw *domainWindow) move(mv placement.Move) {
	id := dw.container(mv.Container)
	if int(id) >= len(dw.moved) {
		dw.moved = append(dw.moved, make([]override, int(id)+1-len(dw.moved))...)
	}
	if !dw.moved[id].set {
		dw.nMoved++
	}
	dw.moved[id] = override{Host: dw.hosts.Name(dw.hosts.Intern(mv.NewHost)), After: mv.Tick, set: true}
}

// addCursor keeps the domain and open tick of the previous sample: a
// batch is usually one domain and one tick.
type addCursor struct {
	dw   *domainWindow
	ot   *openTick
	tick int64
	now  time.Time
	late int
	// counted: samples and duplicates, for the window's counts
	samples, dups int
}

// count adds the cursor's counts to the window's (samples too unless the
// samples were restored, not received).
func (w *Window) count(c *addCursor, samples bool) {
	if samples && c.samples > 0 {
		w.stats.samples.Add(int64(c.samples))
	}
	if c.dups > 0 {
		w.stats.duplicates.Add(int64(c.dups))
	}
	if c.late > 0 {
		w.stats.late.Add(int64(c.late))
	}
	c.samples, c.dups = 0, 0
}

// add takes one sample into an open tick of c.dw. views says its strings
// and values are views of a message payload and a reused buffer: they are
// copied before anything keeps them (names by interning, values into the
// tick's slab).
func (w *Window) add(c *addCursor, s placement.Sample) {
	dw := c.dw
	if dw.hasClosed && s.Tick <= dw.closed {
		c.late++
		return
	}
	if c.ot == nil || c.tick != s.Tick {
		c.ot, c.tick = dw.openTick(s.Tick, w.metrics(), c.now), s.Tick
	}
	ot := c.ot
	id := dw.container(s.Container)
	word, bit := int(id>>6), uint64(1)<<(id&63)
	if word >= len(ot.seen) {
		ot.seen = slices.Grow(ot.seen, word+1-len(ot.seen))
		ot.seen = ot.seen[:cap(ot.seen)]
	}
	if ot.seen[word]&bit != 0 {
		c.dups++ // the first sample of (tick, container) wins
		return
	}
	ot.seen[word] |= bit
	s.Domain, s.Container = dw.name, dw.ctrs.Name(id)
	s.Host = dw.host(s.Host, &dw.lastHost[id])
	if s.TraceHost != "" {
		s.TraceHost = dw.host(s.TraceHost, &dw.lastTrace[id])
	}
	n := len(ot.vals)
	ot.vals = append(ot.vals, s.Values...)
	s.Values = ot.vals[n:len(ot.vals):len(ot.vals)]
	ot.samples = append(ot.samples, s)
	ot.ids = append(ot.ids, id)
	c.samples++
}

// Add takes samples in, outside any message (tests, restores).
func (w *Window) Add(ss []placement.Sample) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	w.addAll(ss)
}

// addAll adds samples to their domains (created empty: replay), each
// domain under its lock (w.mu held shared).
func (w *Window) addAll(ss []placement.Sample) {
	var c addCursor
	c.now = w.now()
	for i := range ss {
		if c.dw == nil || ss[i].Domain != c.dw.name {
			if c.dw != nil {
				c.dw.mu.Unlock()
			}
			c.dw, _ = w.lookup(ss[i].Domain)
			c.ot = nil
		}
		w.add(&c, ss[i])
	}
	if c.dw != nil {
		c.dw.mu.Unlock()
	}
	w.count(&c, true)
	w.lateHook(c.late)
}

func (w *Window) lateHook(n int) {
	if n > 0 && w.OnLate != nil {
		w.OnLate(n)
	}
}

// Handle is the handler func: samples are added; a watermark closes its
// tick in every domain (replay); under the live rule ticks close as they
// become due. Any other kind is refused (see codecs' message contract).
func (w *Window) Handle(msg *message.Message) error {
	switch k := msg.Metadata.Get(codecs.MetaKind); k {
	case codecs.KindSamples:
		if w.Rule.Watermarks {
			return w.handleSamples(msg.Payload)
		}
		return w.handleLive(msg)
	case codecs.KindWatermark:
		// Under the live rule too: a source that knows a tick is complete
		// may say so, and it closes at once.
		t, err := strconv.ParseInt(msg.Metadata.Get(codecs.MetaTick), 10, 64)
		if err != nil {
			return Permanent(fmt.Errorf("watermark: %w", err))
		}
		w.mu.RLock()
		defer w.mu.RUnlock()
		for _, d := range w.sortedDomains() {
			d.mu.Lock()
			var err error
			if !d.removed {
				err = w.closeUpTo(d, t)
			}
			d.mu.Unlock()
			if err != nil {
				return err
			}
		}
		return nil
	default:
		return Permanent(fmt.Errorf("window: unexpected message kind %q", k))
	}
}

// readSamples reads a samples payload into a pooled buffer, as views of
// the payload. A malformed payload yields nothing. The caller gives the
// buffer back with dropScratch once done with the views.
func (w *Window) readSamples(payload []byte) (*readBuf, []placement.Sample, error) {
	rb, _ := w.bufs.Get().(*readBuf)
	if rb == nil {
		rb = &readBuf{}
	}
	sr := &rb.reader
	if err := sr.ResetReuse(payload); err != nil {
		return rb, nil, err
	}
	ss := rb.scratch[:0]
	for {
		ss = append(ss, placement.Sample{})
		if !sr.Next(&ss[len(ss)-1]) {
			ss = ss[:len(ss)-1]
			break
		}
	}
	rb.scratch = ss
	if err := sr.Err(); err != nil {
		return rb, nil, err
	}
	return rb, ss, nil
}

// dropScratch forgets the views of a payload and pools the buffer.
func (w *Window) dropScratch(rb *readBuf) {
	clear(rb.scratch)
	rb.scratch = rb.scratch[:0]
	w.bufs.Put(rb)
}

func (w *Window) handleSamples(payload []byte) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	rb, ss, err := w.readSamples(payload)
	defer w.dropScratch(rb)
	if err != nil {
		return Permanent(err)
	}
	if w.OnSamples != nil {
		w.OnSamples(len(ss))
	}
	w.addAll(ss)
	return nil
}

// sortedDomains is a snapshot of the domains held, by name.
func (w *Window) sortedDomains() []*domainWindow {
	ds := w.domainList()
	slices.SortFunc(ds, func(a, b *domainWindow) int { return strings.Compare(a.name, b.name) })
	return ds
}

// closeUpTo closes every open tick ≤ upTo of a domain (its lock held),
// oldest first and one at a time, so that the moves of tick t are overrides before tick
// t+1's samples are re-attributed; then checkpoints (with a Store).
func (w *Window) closeUpTo(dw *domainWindow, upTo int64) error {
	var ticks []int64
	for t := range dw.open {
		if t <= upTo {
			ticks = append(ticks, t)
		}
	}
	slices.Sort(ticks)
	for _, t := range ticks {
		if err := w.closeTick(dw, t); err != nil {
			return err
		}
	}
	if w.Rule.Watermarks && (!dw.hasClosed || upTo > dw.closed) {
		// A watermark covers every domain, also those without samples at it.
		dw.closed, dw.hasClosed = upTo, true
	}
	if len(ticks) > 0 {
		dw.dirty = true // a close changes the state even when no sample came
	}
	if w.Store != nil && len(ticks) > 0 && w.now().Sub(dw.checkpointed) >= w.Store.CheckpointEvery() {
		return w.checkpointSoon(dw)
	}
	return nil
}

func (w *Window) closeTick(dw *domainWindow, t int64) error {
	ot := dw.open[t]
	if dw.nMoved > 0 {
		for i := range ot.samples {
			s := &ot.samples[i]
			if id := ot.ids[i]; int(id) < len(dw.moved) {
				if ov := dw.moved[id]; ov.set && placement.Reattribute(s, ov.Host, ov.After) {
					w.stats.relocated.Add(1)
				}
			}
		}
	}
	delete(dw.open, t)
	dw.closed, dw.hasClosed = t, true
	dw.hint = len(ot.samples)
	w.stats.ticks.Add(1)
	w.takePending(dw.name) // nothing of an earlier, failed close may apply here
	b := placement.TickBatch{Domain: dw.name, Tick: t, Samples: ot.samples}
	if w.OnTickClosed != nil {
		actual, baseline := HostLoads(b.Samples, w.metrics())
		w.OnTickClosed(b.Domain, b.Tick, actual, baseline)
	}
	w.recordLoads(dw, t, b.Samples)
	start := w.now()
	msgs := TickMessages([]placement.TickBatch{b})
	emit := func() error { return w.Emit(msgs) }
	var err error
	if w.Rule.Watermarks {
		err = emit() // a replay's Emit fails only when the run stops
	} else {
		err = w.retry("publish closed tick", emit)
	}
	if err != nil {
		return err
	}
	moves, decided := w.takePending(dw.name)
	for _, mv := range moves {
		if mv.Domain == dw.name && !mv.DryRun { // a dry run's moves are published, never applied
			dw.move(mv)
		}
	}
	if decided && w.OnHosts != nil {
		w.OnHosts(dw.name, t, w.hostStates(dw, moves))
	}
	if w.OnClosed != nil {
		w.OnClosed(dw.name, t, w.now().Sub(start).Seconds())
	}
	// Encoded and through every stage: the buffers are ours to reuse.
	clear(ot.samples)
	clear(ot.seen)
	ot.samples, ot.ids, ot.vals = ot.samples[:0], ot.ids[:0], ot.vals[:0]
	dw.free = append(dw.free, ot)
	return nil
}

// HostLoads sums samples per host: actual by Host, baseline by TraceHost
// when the sample was re-attributed, else by Host.
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
