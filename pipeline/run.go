package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"hots/codecs"
	"hots/config"
	"hots/connectors"
	"hots/handlers"
	"hots/placement"
)

// Inner topics (gochannel, in process).
const (
	TopicSamples   = "hots.samples"
	TopicTicks     = "hots.ticks"
	TopicDecisions = "hots.decisions"
)

// Options are what Run needs besides the configuration and the connector.
type Options struct {
	// Observer receives what the run produces (nil: nothing).
	Observer Observer
	// Retries is how often a failing handler is retried before its message
	// is poisoned (0 = 2); permanent errors are never retried.
	Retries int
	// Service, if set, gets the run's metrics and readiness (live mode).
	Service *Service
	// OnInitial, if set, gets the connector's initial data before the
	// first sample (capacities for the run directory's figures).
	OnInitial func(connectors.Initial)
	Logger    *slog.Logger
}

// Result are the counts of one run.
type Result struct {
	Samples    int64 // samples that reached the window
	Rejected   int64 // bad records: set aside by the connector, the decoder, or poisoned
	Late       int64 // samples or ticks dropped as already closed
	Duplicates int64 // (tick, container) seen again: dropped
	Ticks      int64 // (domain, tick) pairs closed
	Loops      int64 // engine decisions
	Moves      int64 // moves published
	Relocated  int64 // samples re-attributed to a moved container's new host
	// HostConflicts are the (host, domain) pairs where a domain named a
	// host of another domain (a warning each; see handlers.Placer).
	HostConflicts int64
	Domains       int
	Containers    int
	Hosts         int // distinct hosts in the samples (recorded and placed)
	// Source are the connector's own counts (Counter), if it has them.
	Source           connectors.Counts
	TimeLimitReached bool
	Elapsed          time.Duration
}

// EngineParams is the configuration's engine parameters with the engine's
// defaults filled in (config owns the key mapping).
func EngineParams(cfg config.Config) placement.Params {
	p := cfg.EngineParams()
	placement.SetDefaults(&p)
	return p
}

// UsageFields maps the common connector parameters onto the codecs' field names.
func UsageFields(cfg config.Config) codecs.UsageFields {
	cp := cfg.Connector.Parameters
	return codecs.UsageFields{Tick: cp.TickField, Individual: cp.IndividualField, Host: cp.HostField,
		Domain: cp.DomainField, Pinned: cp.PinnedField, Metrics: cp.Metrics, DefaultDomain: cp.Domain}.WithDefaults()
}

// ToReject converts a codec error into the Observer's record.
func ToReject(e *codecs.RowError) Reject {
	return Reject{Source: e.Source, Line: e.Line, Partition: e.Partition, Offset: e.Offset, Field: e.Field, Reason: e.Reason, Raw: e.Raw}
}

var errTimeLimit = errors.New("time limit reached")

// Run builds the one router, decode → window → placement → publish, for
// any connector and runs it (the caller, who opened the connector, closes
// it afterwards: its sinks may still be read): a Finite source to its end, any other until
// ctx ends, then shuts down gracefully (stop consuming, finish the record
// in hand and the ticks it closes, checkpoint, close). Between the stages
// an in-process gochannel blocks every Publish until the next stage acked,
// so a source message is acked only once every stage is done with it:
// that is what makes a tick's moves apply from the next tick on.
func Run(ctx context.Context, cfg config.Config, conn connectors.Connector, opts Options) (*Result, error) {
	s := newSession(cfg, conn, opts)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if cfg.TimeLimit > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, time.Duration(cfg.TimeLimit*float64(time.Second)), errTimeLimit)
		defer stop()
	}
	s.ctx, s.cancel = ctx, cancel
	// hard outlives ctx by the shutdown budget: the last checkpoint and the
	// last publish still need the connector after a signal.
	hard, hardCancel := context.WithCancel(context.Background())
	defer hardCancel()
	stopHard := context.AfterFunc(ctx, func() { time.AfterFunc(30*time.Second, hardCancel) })
	defer stopHard()

	init, err := conn.Initial(ctx)
	if err != nil {
		if !s.finite && ctx.Err() != nil {
			return &Result{}, nil // a signal while connecting is a clean stop
		}
		return nil, err
	}
	if _, err := placement.New(s.fields.DefaultDomain, s.params, init.Hosts); err != nil {
		return nil, fmt.Errorf("engine parameters: %w", err)
	}
	if opts.OnInitial != nil {
		opts.OnInitial(init)
	}
	s.stages(init, hard)
	poison := conn.Poison()
	p, err := build(routerConfig{conn: conn, decoder: s.decoder, window: s.window, placer: s.placer, retries: s.retries, log: s.log,
		poison:   &boundedPoison{Publisher: poison.Publisher, notify: s.reject},
		stopping: func() bool { return ctx.Err() != nil }, onPanic: s.panicked})
	if err != nil {
		return nil, err
	}
	if o, ok := conn.(connectors.Ownership); ok {
		o.OnOwnership(s.window)
	}
	runCtx, stopRouter := context.WithCancel(hard)
	defer stopRouter()
	runErr := make(chan error, 1)
	go func() { runErr <- p.run(runCtx) }()
	select {
	case <-p.ready:
	case err := <-runErr:
		return nil, fmt.Errorf("router: %w", err)
	case <-ctx.Done():
	}
	bg, stopBg := context.WithCancel(ctx)
	defer stopBg()
	if !s.rule.Watermarks {
		go s.window.Run(bg, tickInterval(s.rule))
	}
	if st, ok := conn.(connectors.Starter); ok {
		if err := st.Start(bg, runtimeHooks{w: s.window, placer: s.placer, svc: s.svc}); err != nil {
			p.close()
			<-runErr
			return nil, err
		}
	}
	s.svc.setReady(true)
	result, timeLimit := s.wait(runErr)
	s.svc.setReady(false)
	stopBg()
	if err := s.shutdown(p, stopRouter, runErr); err != nil && result == nil {
		result = err
	}
	return s.result(timeLimit), result
}

// session is one Run's stages and counts.
type session struct {
	cfg     config.Config
	conn    connectors.Connector
	obs     Observer
	log     *slog.Logger
	svc     *Service
	retries int
	finite  bool
	fields  codecs.UsageFields
	params  placement.Params
	rule    connectors.TickRule
	start   time.Time

	ctx      context.Context
	cancel   context.CancelCauseFunc
	stopOnce sync.Once
	stopErr  error // what ended the run early: bad_input stop, a panic
	rejected atomic.Int64
	moves    atomic.Int64

	placer  *handlers.Placer
	window  *handlers.Window
	decoder *handlers.Decoder
}

func newSession(cfg config.Config, conn connectors.Connector, opts Options) *session {
	s := &session{cfg: cfg, conn: conn, obs: opts.Observer, log: opts.Logger, svc: opts.Service, retries: opts.Retries,
		fields: UsageFields(cfg), params: EngineParams(cfg), rule: conn.Ticks(), start: time.Now()}
	if s.obs == nil {
		s.obs = NopObserver{}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.retries <= 0 {
		s.retries = 2
	}
	s.params.Metrics = s.fields.Metrics
	_, s.finite = conn.(connectors.Finite)
	return s
}

// stop ends the run with err, once.
func (s *session) stop(err error) {
	s.stopOnce.Do(func() { s.stopErr = err; s.cancel(err) })
}

// reject counts a record set aside; with bad_input stop the first one
// ends the run.
func (s *session) reject(e *codecs.RowError) {
	s.rejected.Add(1)
	if s.svc != nil {
		s.svc.poison.Inc()
	}
	s.obs.Rejected(ToReject(e))
	if s.cfg.Connector.Parameters.BadInput == "stop" {
		s.stop(fmt.Errorf("bad input (bad_input: stop): %w", e))
	}
}

// panicked: a replay fails on a panic, naming where; a service poisons
// the message that caused it and goes on (failOnPanic makes it permanent).
func (s *session) panicked(pe *PanicError) {
	if s.finite {
		s.log.Error("stage panicked", "handler", pe.Handler, "domain", pe.Domain, "tick", pe.Tick, "panic", pe.Value, "stack", string(pe.Stack))
		s.stop(pe)
		return
	}
	s.log.Error("stage panicked: the message goes to the poison sink", "handler", pe.Handler, "domain", pe.Domain, "tick", pe.Tick, "panic", pe.Value, "stack", string(pe.Stack))
}

// stages builds the placement, window and decode stages over the
// connector's abilities.
func (s *session) stages(init connectors.Initial, hard context.Context) {
	log, obs := s.log, s.obs
	s.placer = &handlers.Placer{Params: s.params, Hosts: slices.Clone(init.Hosts), Declared: init.Domains, DefaultDomain: s.fields.DefaultDomain,
		OnConflict: func(c handlers.HostConflict) {
			log.Warn("host named in a domain it does not belong to: "+c.String(),
				"host", c.Host, "domain", c.Domain, "origin", c.Origin, "other_domain", c.Other, "where", c.Where)
		}}
	w := &handlers.Window{Fields: s.fields, Placer: s.placer, Log: log,
		Rule: handlers.TickRule{Watermarks: s.rule.Watermarks, Lateness: s.rule.Lateness, IdleTimeout: s.rule.IdleTimeout,
			MaxTickJump: s.rule.MaxTickJump},
		OnTickClosed: obs.TickClosed,
		OnRestored: func(d string, fromCP bool, caught int) {
			log.Info("domain acquired", "domain", d, "from_checkpoint", fromCP, "records_caught_up", caught)
		},
	}
	if st, ok := s.conn.(connectors.Checkpointer); ok {
		w.Store, w.BackgroundSaves = st, true
	}
	if r, ok := s.conn.(connectors.Replayer); ok {
		w.Replayer = r
	}
	if h, ok := s.conn.(connectors.HostRecorder); ok {
		w.OnHosts = h.RecordHosts
	}
	loopLog := newLoopLog(log, 10*time.Second)
	s.placer.OnDecision = func(d *placement.Decision, secs float64) {
		s.moves.Add(int64(len(d.Moves)))
		if !s.finite {
			loopLog.add(d, secs)
		}
		obs.Decided(LoopRecord{Domain: d.Domain, Tick: d.Tick, Kind: d.Kind, Report: d.Loop, LoopSeconds: secs}, d.Moves)
		w.Decided(d)
	}
	if s.svc != nil {
		s.svc.bind(w, s.placer)
	}
	w.Start(hard)
	s.window = w
	poison := s.conn.Poison()
	s.decoder = &handlers.Decoder{Fields: s.fields, Reject: func(e *codecs.RowError) {
		s.reject(e)
		_ = (&boundedPoison{Publisher: poison.Publisher}).Publish(poison.Topic, RejectMessage(e))
	}}
}

// wait runs until a Finite source is done, ctx ends or the router fails,
// and says why the run ends.
func (s *session) wait(runErr chan error) (result error, timeLimit bool) {
	var done <-chan struct{}
	if f, ok := s.conn.(connectors.Finite); ok {
		done = f.Done()
	}
	select {
	case <-done:
		result = s.conn.(connectors.Finite).Err()
	case <-s.ctx.Done():
	case err := <-runErr:
		result = fmt.Errorf("router stopped: %w", err)
		runErr <- nil
	}
	if cause := context.Cause(s.ctx); cause != nil && result == nil {
		switch {
		case errors.Is(cause, errTimeLimit):
			timeLimit = true
		case s.stopErr != nil:
			result = s.stopErr
		case s.finite:
			result = fmt.Errorf("pipeline stopped: %w", cause)
		}
	}
	return result, timeLimit
}

// shutdown stops consuming, lets the record in hand and the ticks it
// closes through, checkpoints, and closes the router.
func (s *session) shutdown(p *router, stopRouter context.CancelFunc, runErr chan error) error {
	if !s.finite {
		s.log.Info("shutting down: stop consuming, finish the record in hand, checkpoint")
	}
	// Closing the source ends the decode handlers once their message in
	// hand is through; the window lock then waits for its tick.
	if err := s.conn.Source().Subscriber.Close(); err != nil && !s.finite {
		s.log.Warn("closing the source", "err", err)
	}
	var result error
	if err := s.window.Flush(); err != nil {
		result = fmt.Errorf("final checkpoint: %w", err)
	}
	if err := p.close(); err != nil && result == nil {
		result = err
	}
	stopRouter()
	if err := <-runErr; err != nil && result == nil && !errors.Is(err, context.Canceled) {
		result = err
	}
	if !s.finite {
		s.log.Info("stopped", "domains", s.window.Domains())
	}
	return result
}

func (s *session) result(timeLimit bool) *Result {
	ws := s.window.Stats()
	doms, conts, hosts := s.window.Seen()
	res := &Result{Samples: ws.Samples, Rejected: s.rejected.Load(), Late: ws.Late + s.placer.Late(), Duplicates: ws.Duplicates,
		Ticks: ws.Ticks, Loops: s.placer.Loops(), Moves: s.moves.Load(), Relocated: ws.Relocated, HostConflicts: s.placer.Conflicts(),
		Domains: doms, Containers: conts, Hosts: hosts, TimeLimitReached: timeLimit, Elapsed: time.Since(s.start)}
	if c, ok := s.conn.(connectors.Counter); ok {
		res.Source = c.Counts()
		res.Rejected += res.Source.Rejected
	}
	return res
}

func tickInterval(r connectors.TickRule) time.Duration {
	d := time.Second
	for _, x := range []time.Duration{r.Lateness / 4, r.IdleTimeout / 4} {
		if x > 0 && x < d {
			d = x
		}
	}
	return max(d, 20*time.Millisecond)
}

// runtimeHooks is what a Starter connector may ask of the running pipeline.
type runtimeHooks struct {
	w      *handlers.Window
	placer *handlers.Placer
	svc    *Service
}

func (r runtimeHooks) SetHost(h placement.Host, d codecs.HostDomain) error {
	var err error
	r.w.WithLock(func() { err = r.placer.SetHost(h, d) })
	return err
}

func (r runtimeHooks) SetEnd(topic string, partition int32, end int64, at time.Time) {
	r.w.SetEnd(topic, partition, end, at)
	r.svc.endFetched()
	if n, ok := r.w.Next()[topic][partition]; ok {
		r.svc.lag(topic, partition, max(end-n, 0))
	}
}

// RejectMessage is a row the decoder refused, as a message for the poison
// sink: the reason, field and position in metadata, the row as payload.
func RejectMessage(e *codecs.RowError) *message.Message {
	m := message.NewMessage(watermill.NewUUID(), []byte(e.Raw))
	m.Metadata.Set(codecs.MetaKind, codecs.KindReject)
	m.Metadata.Set(codecs.MetaSource, e.Source)
	if e.Line > 0 {
		m.Metadata.Set(codecs.MetaFirstLine, strconv.FormatInt(e.Line, 10))
	}
	m.Metadata.Set(codecs.MetaField, e.Field)
	reason := e.Reason
	if e.Value != "" {
		reason += fmt.Sprintf(" (value %q)", e.Value)
	}
	m.Metadata.Set(middleware.ReasonForPoisonedKey, reason)
	return m
}

// Poisoned messages are bounded whatever the record was: a record just
// under a broker's limit would no longer fit once the reason headers are
// added, and its poison publish would retry forever, blocking the stream.
const (
	maxPoisonPayload = 64 << 10
	maxPoisonMeta    = 4 << 10
)

// boundedPoison tells the run about every message poisoned, and keeps it
// small: the payload cut to an excerpt (its size said in metadata), each
// metadata value cut.
type boundedPoison struct {
	message.Publisher
	notify func(*codecs.RowError)
}

func (p *boundedPoison) Publish(topic string, msgs ...*message.Message) error {
	for i, m := range msgs {
		if len(m.Payload) <= maxPoisonPayload && !longMeta(m.Metadata) {
			continue
		}
		c := m.Copy()
		if n := len(c.Payload); n > maxPoisonPayload {
			c.Payload = c.Payload[:maxPoisonPayload]
			c.Metadata.Set("payload_truncated", fmt.Sprintf("first %d of %d bytes", maxPoisonPayload, n))
		}
		for k, v := range c.Metadata {
			if len(v) > maxPoisonMeta {
				c.Metadata[k] = v[:maxPoisonMeta] + "…"
			}
		}
		msgs[i] = c
	}
	err := p.Publisher.Publish(topic, msgs...)
	if err == nil && p.notify != nil {
		for _, m := range msgs {
			src, part, off := handlers.Position(m)
			line, _ := strconv.ParseInt(m.Metadata.Get(codecs.MetaFirstLine), 10, 64)
			p.notify(&codecs.RowError{Position: codecs.Position{Source: src, Line: line, Partition: max(part, 0), Offset: max(off, 0)},
				Reason: fmt.Sprintf("poisoned in %s: %s", m.Metadata.Get(middleware.PoisonedHandlerKey), m.Metadata.Get(middleware.ReasonForPoisonedKey))})
		}
	}
	return err
}

func longMeta(m message.Metadata) bool {
	for _, v := range m {
		if len(v) > maxPoisonMeta {
			return true
		}
	}
	return false
}

// Close is the connector's: the router closes publishers it was given.
func (p *boundedPoison) Close() error { return nil }

// loopLog writes an INFO line per domain at most every interval, saying
// what the loops since the last line did: a service of thousands of
// domains stays readable, and a quiet one still shows it is working.
type loopLog struct {
	log      *slog.Logger
	interval time.Duration
	mu       sync.Mutex
	by       map[string]*loopSums
}

type loopSums struct {
	last         time.Time
	loops, moves int
	secs         float64
}

func newLoopLog(log *slog.Logger, interval time.Duration) *loopLog {
	return &loopLog{log: log, interval: interval, by: map[string]*loopSums{}}
}

func (l *loopLog) add(d *placement.Decision, secs float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.by[d.Domain]
	if s == nil {
		s = &loopSums{}
		l.by[d.Domain] = s
	}
	s.loops++
	s.moves += len(d.Moves)
	s.secs += secs
	if now := time.Now(); now.Sub(s.last) >= l.interval {
		l.log.Info("loop", "domain", d.Domain, "tick", d.Tick, "kind", d.Kind, "moves", len(d.Moves),
			"loop_ms", round1(secs*1000), "loops_since_last_line", s.loops, "moves_since_last_line", s.moves,
			"mean_loop_ms", round1(s.secs*1000/float64(s.loops)))
		*s = loopSums{last: now}
	}
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }

// Env is what every connector is given, from the common configuration.
func Env(cfg config.Config, log *slog.Logger) connectors.Env {
	if log == nil {
		log = slog.Default()
	}
	return connectors.Env{Fields: UsageFields(cfg), Engine: EngineParams(cfg), BadInput: cfg.Connector.Parameters.BadInput,
		BaseDir: cfg.Dir, Logger: log}
}

// RawConnector is the connector's part of cfg, for connectors.Decode.
// The parameters are a copy: callers may add keys.
func RawConnector(cfg config.Config) connectors.Raw {
	p := make(map[string]any, len(cfg.Connector.Parameters.Extra))
	for k, v := range cfg.Connector.Parameters.Extra {
		p[k] = v
	}
	return connectors.Raw{Parameters: p, Sections: cfg.Sections}
}
