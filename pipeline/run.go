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
		Domain: cp.DomainField, Metrics: cp.Metrics, DefaultDomain: cp.Domain}.WithDefaults()
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
	start := time.Now()
	obs := opts.Observer
	if obs == nil {
		obs = NopObserver{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	retries := opts.Retries
	if retries <= 0 {
		retries = 2
	}
	svc := opts.Service
	fields := UsageFields(cfg)
	params := EngineParams(cfg)
	params.Metrics = fields.Metrics
	_, finite := conn.(connectors.Finite)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if cfg.TimeLimit > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, time.Duration(cfg.TimeLimit*float64(time.Second)), errTimeLimit)
		defer stop()
	}
	// hard outlives ctx by the shutdown budget: the last checkpoint and the
	// last publish still need the connector after a signal.
	hard, hardCancel := context.WithCancel(context.Background())
	defer hardCancel()
	stopHard := context.AfterFunc(ctx, func() { time.AfterFunc(30*time.Second, hardCancel) })
	defer stopHard()

	init, err := conn.Initial(ctx)
	if err != nil {
		if !finite && ctx.Err() != nil {
			return &Result{}, nil // a signal while connecting is a clean stop
		}
		return nil, err
	}
	if _, err := placement.New(fields.DefaultDomain, params, init.Hosts); err != nil {
		return nil, fmt.Errorf("engine parameters: %w", err)
	}
	if opts.OnInitial != nil {
		opts.OnInitial(init)
	}

	// bad_input: stop ends the run at the first record set aside.
	var stopErr error
	var stopOnce sync.Once
	var rejected atomic.Int64
	reject := func(e *codecs.RowError) {
		rejected.Add(1)
		if svc != nil {
			svc.poison.Inc()
		}
		obs.Rejected(ToReject(e))
		if cfg.Connector.Parameters.BadInput == "stop" {
			stopOnce.Do(func() { stopErr = fmt.Errorf("bad input (bad_input: stop): %w", e); cancel(stopErr) })
		}
	}
	// A replay fails on a panic, naming where; a service poisons the
	// message that caused it and goes on (failOnPanic makes it permanent).
	var onPanic func(*PanicError)
	if finite {
		onPanic = func(pe *PanicError) {
			log.Error("stage panicked", "handler", pe.Handler, "domain", pe.Domain, "tick", pe.Tick, "panic", pe.Value, "stack", string(pe.Stack))
			stopOnce.Do(func() { stopErr = pe; cancel(pe) })
		}
	} else {
		onPanic = func(pe *PanicError) {
			log.Error("stage panicked: the message goes to the poison sink", "handler", pe.Handler, "domain", pe.Domain, "tick", pe.Tick, "panic", pe.Value, "stack", string(pe.Stack))
		}
	}
	poison := conn.Poison()
	var moves atomic.Int64
	rule := conn.Ticks()
	placer := &handlers.Placer{Params: params, Hosts: slices.Clone(init.Hosts), Declared: init.Domains, DefaultDomain: fields.DefaultDomain,
		OnConflict: func(c handlers.HostConflict) {
			log.Warn("host named in a domain it does not belong to: "+c.String(),
				"host", c.Host, "domain", c.Domain, "origin", c.Origin, "other_domain", c.Other, "where", c.Where)
		}}
	w := &handlers.Window{Fields: fields, Placer: placer, Log: log,
		Rule: handlers.TickRule{Watermarks: rule.Watermarks, Lateness: rule.Lateness, IdleTimeout: rule.IdleTimeout,
			MaxTickJump: rule.MaxTickJump},
		OnTickClosed: obs.TickClosed,
		OnRestored: func(d string, fromCP bool, caught int) {
			log.Info("domain acquired", "domain", d, "from_checkpoint", fromCP, "records_caught_up", caught)
		},
	}
	if s, ok := conn.(connectors.Checkpointer); ok {
		w.Store = s
	}
	if r, ok := conn.(connectors.Replayer); ok {
		w.Replayer = r
	}
	if h, ok := conn.(connectors.HostRecorder); ok {
		w.OnHosts = h.RecordHosts
	}
	loopLog := newLoopLog(log, 10*time.Second)
	placer.OnDecision = func(d *placement.Decision, secs float64) {
		moves.Add(int64(len(d.Moves)))
		if !finite {
			loopLog.add(d, secs)
		}
		obs.Decided(LoopRecord{Domain: d.Domain, Tick: d.Tick, Kind: d.Kind, Report: d.Loop, LoopSeconds: secs}, d.Moves)
		w.Decided(d)
	}
	if svc != nil {
		svc.bind(w, placer)
	}
	w.Start(hard)
	decoder := &handlers.Decoder{Fields: fields, Reject: func(e *codecs.RowError) {
		reject(e)
		_ = (&boundedPoison{Publisher: poison.Publisher}).Publish(poison.Topic, RejectMessage(e))
	}}

	p, err := build(routerConfig{conn: conn, decoder: decoder, window: w, placer: placer, retries: retries, log: log,
		poison:   &boundedPoison{Publisher: poison.Publisher, notify: reject},
		stopping: func() bool { return ctx.Err() != nil }, onPanic: onPanic})
	if err != nil {
		return nil, err
	}
	if o, ok := conn.(connectors.Ownership); ok {
		o.OnOwnership(w)
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
	if !rule.Watermarks {
		go w.Run(bg, tickInterval(rule))
	}
	if s, ok := conn.(connectors.Starter); ok {
		if err := s.Start(bg, runtimeHooks{w: w, placer: placer, svc: svc}); err != nil {
			p.close()
			<-runErr
			return nil, err
		}
	}
	svc.setReady(true)

	var result error
	var done <-chan struct{}
	if f, ok := conn.(connectors.Finite); ok {
		done = f.Done()
	}
	select {
	case <-done:
		result = conn.(connectors.Finite).Err()
	case <-ctx.Done():
	case err := <-runErr:
		result = fmt.Errorf("router stopped: %w", err)
		runErr <- nil
	}
	svc.setReady(false)
	stopBg()
	timeLimit := false
	if cause := context.Cause(ctx); cause != nil && result == nil {
		switch {
		case errors.Is(cause, errTimeLimit):
			timeLimit = true
		case stopErr != nil:
			result = stopErr
		case finite:
			result = fmt.Errorf("pipeline stopped: %w", cause)
		}
	}
	if !finite {
		log.Info("shutting down: stop consuming, finish the record in hand, checkpoint")
	}
	// Closing the source ends the decode handlers once their message in
	// hand is through; the window lock then waits for its tick.
	if err := conn.Source().Subscriber.Close(); err != nil && !finite {
		log.Warn("closing the source", "err", err)
	}
	if err := w.Flush(); err != nil && result == nil {
		result = fmt.Errorf("final checkpoint: %w", err)
	}
	if err := p.close(); err != nil && result == nil {
		result = err
	}
	stopRouter()
	if err := <-runErr; err != nil && result == nil && !errors.Is(err, context.Canceled) {
		result = err
	}
	ws := w.Stats()
	doms, conts, hosts := w.Seen()
	res := &Result{Samples: ws.Samples, Rejected: rejected.Load(), Late: ws.Late + placer.Late(), Duplicates: ws.Duplicates,
		Ticks: ws.Ticks, Loops: placer.Loops(), Moves: moves.Load(), Relocated: ws.Relocated, HostConflicts: placer.Conflicts(),
		Domains: doms, Containers: conts, Hosts: hosts, TimeLimitReached: timeLimit, Elapsed: time.Since(start)}
	if c, ok := conn.(connectors.Counter); ok {
		res.Source = c.Counts()
		res.Rejected += res.Source.Rejected
	}
	if !finite {
		log.Info("stopped", "domains", w.Domains())
	}
	return res, result
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
