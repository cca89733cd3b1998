package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
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

	ctx     context.Context
	mu      sync.Mutex
	domains map[string]*domainWindow
	stats   WindowStats
	scratch []placement.Sample // handleSamples' batch, reused
	reader  codecs.SampleReader
	// pending are the moves of the tick being closed, from Decided, which
	// runs on the placement stage's goroutine; its own lock because a
	// stopping pipeline can leave a Decided running after Emit gave up.
	pendMu  sync.Mutex
	pending []placement.Move
	decided bool

	positions // partitions and offsets (live mode)
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
	clock       int64 // newest tick accepted (clockSet: any)
	clockSet    bool
	lastArrival time.Time
	offsets     map[string]map[int32]int64
	checked     map[tp]bool
	dirty       bool
	// checkpointed is when the domain was last saved: with a Store's
	// CheckpointEvery, closes in between leave it dirty.
	checkpointed time.Time
	recent       []hostLoads // for OnHosts, newest last
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
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
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

// Domains is the number of domains held in memory.
func (w *Window) Domains() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.domains)
}

// WithLock runs f while no tick is being handled (capacity updates).
func (w *Window) WithLock(f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f()
}

// Decided is the Placer's OnDecision hook: the moves become overrides once
// Emit returned. It runs while the window waits in Emit.
func (w *Window) Decided(d *placement.Decision) {
	w.pendMu.Lock()
	defer w.pendMu.Unlock()
	w.pending = append(w.pending, d.Moves...)
	w.decided = true
}

// takePending returns the moves Decided collected and forgets them.
func (w *Window) takePending() ([]placement.Move, bool) {
	w.pendMu.Lock()
	defer w.pendMu.Unlock()
	moves, decided := w.pending, w.decided
	w.pending, w.decided = nil, false
	return moves, decided
}

func newDomainWindow(name string) *domainWindow {
	return &domainWindow{name: strings.Clone(name), open: map[int64]*openTick{}, prev: -1,
		offsets: map[string]map[int32]int64{}, checked: map[tp]bool{}}
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
}

// add takes one sample into an open tick of c.dw. views says its strings
// and values are views of a message payload and a reused buffer: they are
// copied before anything keeps them (names by interning, values into the
// tick's slab).
func (w *Window) add(c *addCursor, s placement.Sample) {
	dw := c.dw
	if dw.hasClosed && s.Tick <= dw.closed {
		w.stats.Late++
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
		w.stats.Duplicates++ // the first sample of (tick, container) wins
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
	w.stats.Samples++
}

// Add takes samples in, outside any message (tests, restores).
func (w *Window) Add(ss []placement.Sample) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.addAll(ss)
}

func (w *Window) addAll(ss []placement.Sample) {
	var c addCursor
	c.now = w.now()
	for i := range ss {
		if c.dw == nil || ss[i].Domain != c.dw.name {
			c.dw, c.ot = w.domain(ss[i].Domain), nil
		}
		w.add(&c, ss[i])
	}
	w.lateHook(c.late)
}

func (w *Window) lateHook(n int) {
	if n > 0 && w.OnLate != nil {
		w.OnLate(n)
	}
}

// domain returns the domain's window, creating an empty one (replay; live
// mode acquires domains through acquire, which restores them).
func (w *Window) domain(name string) *domainWindow {
	if w.domains == nil {
		w.domains = map[string]*domainWindow{}
	}
	dw := w.domains[name]
	if dw == nil {
		dw = newDomainWindow(name)
		w.domains[dw.name] = dw
	}
	return dw
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
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, name := range w.sortedDomains() {
			if err := w.closeUpTo(w.domains[name], t); err != nil {
				return err
			}
		}
		return nil
	default:
		return Permanent(fmt.Errorf("window: unexpected message kind %q", k))
	}
}

// readSamples reads a samples payload into the reused scratch slice, as
// views of the payload. A malformed payload yields nothing.
func (w *Window) readSamples(payload []byte) ([]placement.Sample, error) {
	sr := &w.reader
	if err := sr.ResetReuse(payload); err != nil {
		return nil, err
	}
	ss := w.scratch[:0]
	for {
		ss = append(ss, placement.Sample{})
		if !sr.Next(&ss[len(ss)-1]) {
			ss = ss[:len(ss)-1]
			break
		}
	}
	w.scratch = ss
	if err := sr.Err(); err != nil {
		return nil, err
	}
	return ss, nil
}

// dropScratch forgets the views of the last payload.
func (w *Window) dropScratch() { clear(w.scratch); w.scratch = w.scratch[:0] }

func (w *Window) handleSamples(payload []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.dropScratch()
	ss, err := w.readSamples(payload)
	if err != nil {
		return Permanent(err)
	}
	if w.OnSamples != nil {
		w.OnSamples(len(ss))
	}
	w.addAll(ss)
	return nil
}

func (w *Window) sortedDomains() []string {
	names := make([]string, 0, len(w.domains))
	for n := range w.domains {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// closeUpTo closes every open tick ≤ upTo of a domain, oldest first and
// one at a time, so that the moves of tick t are overrides before tick
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
		return w.checkpoint(dw)
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
					w.stats.Relocated++
				}
			}
		}
	}
	delete(dw.open, t)
	dw.closed, dw.hasClosed = t, true
	dw.hint = len(ot.samples)
	w.stats.Ticks++
	w.takePending() // nothing of an earlier, failed close may apply here
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
	moves, decided := w.takePending()
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
