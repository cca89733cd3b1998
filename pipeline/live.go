package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"hots/codecs"
	"hots/config"
	"hots/connectors/kafka"
	"hots/connectors/kafka/state"
	"hots/handlers"
	"hots/placement"
)

// LiveOptions are the live-mode settings derived from a configuration.
type LiveOptions struct {
	Kafka       kafka.Options
	StateGroup  string
	Lateness    time.Duration
	IdleTimeout time.Duration
	HTTPAddr    string
}

// LiveOptionsFrom reads the Kafka keys of cfg. Upstream spellings
// (connector.parameters.bootstrap.servers and topics, kafka.topics) are
// honoured when set.
func LiveOptionsFrom(cfg config.Config) (LiveOptions, error) {
	k, cp := cfg.Kafka, cfg.Connector.Parameters
	o := kafka.Options{Brokers: k.Brokers, Group: k.Group, UsageTopics: k.UsageTopics, MovesTopic: k.MovesTopic,
		PoisonTopic: k.PoisonTopic, NodesTopic: k.NodesTopic, Partitions: k.Partitions}
	if cp.BootstrapServers != "" {
		o.Brokers = splitList(cp.BootstrapServers)
	}
	if len(cp.Topics) > 0 {
		o.UsageTopics = cp.Topics
	}
	if len(k.Topics) > 0 {
		o.UsageTopics = k.Topics
	}
	// A client id per process, so that the group's member list says which
	// instance owns which partition (used before an idle close).
	host, _ := os.Hostname()
	o.ClientID = fmt.Sprintf("hots-%s-%d", host, os.Getpid())
	o = o.WithDefaults()
	lo := LiveOptions{Kafka: o, StateGroup: o.Group + "-state", HTTPAddr: cfg.Service.HTTPAddr}
	var err error
	if lo.Lateness, err = parseDur("kafka.lateness", k.Lateness); err != nil {
		return lo, err
	}
	if lo.IdleTimeout, err = parseDur("kafka.idle_timeout", k.IdleTimeout); err != nil {
		return lo, err
	}
	return lo, o.Validate()
}

func parseDur(key, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s: %q is not a non-negative duration", key, v)
	}
	return d, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// RunLive runs the Kafka service until ctx ends, then shuts down
// gracefully: stop consuming, finish the record in hand (and the ticks it
// closes), checkpoint, close. It returns nil after a clean shutdown.
func RunLive(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	lo, err := LiveOptionsFrom(cfg)
	if err != nil {
		return err
	}
	fields := UsageFields(cfg)
	params := EngineParams(cfg)
	params.Metrics = fields.Metrics
	var hosts []placement.Host
	if cp := cfg.Connector.Parameters; cp.DataFolder != "" {
		meta, err := readNodeMeta(filepath.Join(cp.DataFolder, orDefault(cp.NodeMetaFile, "node_meta.csv")), fields)
		if err != nil {
			return err
		}
		hosts = meta.Hosts
	}
	if _, err := placement.New(fields.DefaultDomain, params, hosts); err != nil {
		return fmt.Errorf("engine parameters: %w", err)
	}

	m := newLiveMetrics()
	var ready atomic.Bool
	srv, err := serveHTTP(lo.HTTPAddr, m, &ready, log)
	if err != nil {
		return err
	}
	if srv != nil {
		defer srv.Close()
	}

	// hard outlives ctx by the shutdown budget: the last checkpoint and the
	// last publish still need Kafka after the signal.
	hard, hardCancel := context.WithCancel(context.Background())
	defer hardCancel()
	stopHard := context.AfterFunc(ctx, func() { time.AfterFunc(30*time.Second, hardCancel) })
	defer stopHard()

	log.Info("live mode: connecting", "brokers", lo.Kafka.Brokers, "usage_topics", lo.Kafka.UsageTopics, "group", lo.Kafka.Group)
	if err := kafka.EnsureTopics(ctx, lo.Kafka); err != nil {
		return shutdownErr(ctx, err)
	}
	store, err := state.Open(ctx, state.StateOptions{Brokers: lo.Kafka.Brokers, Group: lo.StateGroup,
		Partitions: lo.Kafka.Partitions, SaramaVersion: lo.Kafka.SaramaVersion, Logger: log})
	if err != nil {
		return shutdownErr(ctx, err)
	}
	defer store.Close()
	if err := store.WaitRecovered(ctx); err != nil {
		return shutdownErr(ctx, err)
	}
	client, err := newSaramaClient(ctx, lo.Kafka)
	if err != nil {
		return shutdownErr(ctx, err)
	}
	defer client.Close()

	lw := &handlers.LiveWindow{Fields: fields, Lateness: lo.Lateness, IdleTimeout: lo.IdleTimeout,
		Store: stateStore{store}, CatchUp: catchUp(client), End: partitionEnd(client), Log: log,
		OnSamples: func(n int) { m.samples.Add(float64(n)) },
		OnLate:    func(n int) { m.late.Add(float64(n)) },
		OnClosed: func(_ string, _ int64, secs float64) {
			m.ticks.Inc()
			m.closeToPublish.Observe(secs)
		},
		OnRestored: func(d string, fromCP bool, caught int) {
			log.Info("domain acquired", "domain", d, "from_checkpoint", fromCP, "records_caught_up", caught)
		},
		OnHosts: saveHosts(store, log),
	}
	lw.Start(hard)

	wlog := watermill.NewSlogLoggerWithLevelMapping(log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	// The group session tells the window which partitions this instance
	// owns: on assignment it restores their checkpointed domains (before
	// any record is delivered), on revocation it stops idle closes, and
	// on a graceful shutdown it checkpoints before the partitions go.
	sub, err := kafka.NewSubscriberWithHooks(lo.Kafka, wlog, kafka.GroupHooks{
		Assigned: func(a kafka.Assignment) {
			log.Info("partitions assigned", "generation", a.Generation, "member", a.MemberID, "claims", a.Claims)
			if err := lw.Assign(a.Claims); err != nil {
				log.Error("restoring the assigned partitions' domains", "err", err)
			}
		},
		Revoked: func(a kafka.Assignment) {
			log.Info("partitions revoked", "generation", a.Generation)
			if err := lw.Revoke(ctx.Err() != nil); err != nil {
				log.Error("checkpoint before giving the partitions up", "err", err)
			}
		},
	})
	if err != nil {
		return err
	}
	defer sub.Close()
	rawPub, err := kafka.NewPublisher(lo.Kafka, wlog)
	if err != nil {
		return err
	}
	defer rawPub.Close()
	pub := &patientPublisher{Publisher: rawPub, ctx: hard, log: log}
	poison := &countingPublisher{Publisher: pub, n: m.poison}

	placer := &handlers.Placer{Params: params, Hosts: hosts, OnDecision: func(d *placement.Decision, secs float64) {
		m.loops.Inc()
		m.moves.Add(float64(len(d.Moves)))
		m.loopLatency.Observe(secs)
		lw.Decided(d)
	}}
	lw.Placer = placer
	decoder := &handlers.Decoder{Fields: fields, Reject: func(*codecs.RowError) {}}

	p, err := BuildLive(LiveRouterConfig{Source: sub, SourceTopics: lo.Kafka.UsageTopics, Sink: pub,
		SinkTopic: lo.Kafka.MovesTopic, Poison: poison, PoisonTopic: lo.Kafka.PoisonTopic,
		Decoder: decoder, Window: lw, Placer: placer, Stopping: func() bool { return ctx.Err() != nil }, Logger: log})
	if err != nil {
		return err
	}
	runCtx, stopRouter := context.WithCancel(hard)
	defer stopRouter()
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(runCtx) }()
	select {
	case <-p.Running():
	case err := <-runErr:
		return fmt.Errorf("live router: %w", err)
	case <-ctx.Done():
	}
	bg, stopBg := context.WithCancel(ctx)
	defer stopBg()
	go lw.Run(bg, tickInterval(lo))
	go followNodes(bg, client, lo.Kafka.NodesTopic, fields.Metrics, lw, placer, log)
	go watchEnds(bg, client, lo.Kafka.UsageTopics, lw, m, tickInterval(lo))
	ready.Store(true)
	log.Info("live mode: ready", "moves_topic", lo.Kafka.MovesTopic, "poison_topic", lo.Kafka.PoisonTopic,
		"lateness", lo.Lateness, "idle_timeout", lo.IdleTimeout, "http", lo.HTTPAddr)

	var result error
	select {
	case <-ctx.Done():
	case err := <-runErr:
		result = fmt.Errorf("live router stopped: %w", err)
		runErr <- nil
	}
	ready.Store(false)
	stopBg()
	log.Info("live mode: shutting down: stop consuming, finish the record in hand, checkpoint")
	// Closing the subscriber ends the decode handlers once their message
	// in hand is through; the window lock then waits for its tick.
	if err := sub.Close(); err != nil {
		log.Warn("closing the subscriber", "err", err)
	}
	if err := lw.Flush(); err != nil && result == nil {
		result = fmt.Errorf("final checkpoint: %w", err)
	}
	if err := p.Close(); err != nil && result == nil {
		result = err
	}
	stopRouter()
	if err := <-runErr; err != nil && result == nil && !errors.Is(err, context.Canceled) {
		result = err
	}
	log.Info("live mode: stopped", "domains", lw.Domains())
	return result
}

func shutdownErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil // a signal while connecting is a clean stop
	}
	return err
}

func tickInterval(lo LiveOptions) time.Duration {
	d := time.Second
	for _, x := range []time.Duration{lo.Lateness / 4, lo.IdleTimeout / 4} {
		if x > 0 && x < d {
			d = x
		}
	}
	return max(d, 20*time.Millisecond)
}

// LiveRouterConfig is what BuildLive connects.
type LiveRouterConfig struct {
	Source       message.Subscriber
	SourceTopics []string
	Sink         message.Publisher
	SinkTopic    string
	Poison       message.Publisher
	PoisonTopic  string
	Decoder      *handlers.Decoder
	Window       *handlers.LiveWindow
	Placer       *handlers.Placer
	// Stopping reports a shutdown in progress: errors then are not bad
	// messages and are never poison-queued (the record is redelivered).
	Stopping func() bool
	Logger   *slog.Logger
}

// LivePipeline is the live router. Its Kafka sources subscribe only once
// the inner stages run: gochannel drops a message nobody listens to yet,
// and a record acked into nowhere (or a tick closed by a restore at
// assignment) would be lost.
type LivePipeline struct {
	*Pipeline
	addSources func()
	ready      chan struct{}
}

// Run runs the inner stages, then subscribes the sources, until ctx ends
// or Close is called.
func (p *LivePipeline) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- p.Pipeline.Run(ctx) }()
	select {
	case <-p.Pipeline.Running():
	case err := <-errc:
		return err
	}
	p.addSources()
	if err := p.Router.RunHandlers(ctx); err != nil {
		p.Pipeline.Close()
		<-errc
		return fmt.Errorf("subscribing the sources: %w", err)
	}
	close(p.ready)
	return <-errc
}

// Running is closed once every stage, sources included, has subscribed.
func (p *LivePipeline) Running() chan struct{} { return p.ready }

// BuildLive returns the live router: the same decode -> window ->
// placement -> publish shape as Build, over the same gochannel with
// blocking acks. The window stage publishes closed ticks itself (Emit) so
// that it can checkpoint once they, and their moves, are through.
func BuildLive(c LiveRouterConfig) (*LivePipeline, error) {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	logger := watermill.NewSlogLoggerWithLevelMapping(c.Logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, logger)
	if err != nil {
		return nil, err
	}
	poison, err := middleware.PoisonQueueWithFilter(c.Poison, c.PoisonTopic, func(err error) bool {
		if c.Stopping != nil && c.Stopping() {
			return false
		}
		return !errors.Is(err, context.Canceled)
	})
	if err != nil {
		return nil, err
	}
	retry := middleware.Retry{MaxRetries: 2, InitialInterval: 10 * time.Millisecond, Multiplier: 2, MaxInterval: time.Second,
		Logger: logger, ShouldRetry: func(p middleware.RetryParams) bool { return !handlers.IsPermanent(p.Err) }}
	r.AddMiddleware(poison, retry.Middleware, middleware.Recoverer)
	inner := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, logger)
	c.Window.Emit = func(msgs []*message.Message) error { return inner.Publish(TopicTicks, msgs...) }
	r.AddConsumerHandler("window", TopicSamples, inner, c.Window.Handle)
	r.AddHandler("placement", TopicTicks, inner, TopicDecisions, inner, c.Placer.Handle)
	r.AddHandler("publish", TopicDecisions, inner, c.SinkTopic, c.Sink, handlers.PublishMoves)
	addSources := func() {
		for _, t := range c.SourceTopics {
			r.AddHandler("decode:"+t, t, c.Source, TopicSamples, inner, kafkaDecode(c.Decoder, c.Window))
		}
	}
	return &LivePipeline{Pipeline: &Pipeline{Router: r, inner: inner}, addSources: addSources, ready: make(chan struct{})}, nil
}

// kafkaDecode names a Kafka record the way the decode stage reads
// provenance (codecs metadata), then decodes it. Producer headers must not
// pass for stage metadata, so "kind" is dropped first.
func kafkaDecode(d *handlers.Decoder, w *handlers.LiveWindow) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		delete(msg.Metadata, codecs.MetaKind)
		topic, part, off := kafka.Provenance(msg)
		msg.Metadata.Set(codecs.MetaSource, topic)
		msg.Metadata.Set(codecs.MetaPartition, fmt.Sprint(part))
		msg.Metadata.Set(codecs.MetaOffset, fmt.Sprint(off))
		msg.Metadata.Set(codecs.MetaKey, kafka.Key(msg))
		out, err := d.Handle(msg)
		if err != nil || len(out) == 0 {
			// Poison-queued or empty: the window never sees it, but the
			// partition is read past it.
			w.Consumed(topic, int32(part), off)
		}
		return out, err
	}
}

// patientPublisher retries a failed publish until it succeeds or ctx
// ends: with the broker away the stream waits; it must not poison moves.
type patientPublisher struct {
	message.Publisher
	ctx context.Context
	log *slog.Logger
}

func (p *patientPublisher) Publish(topic string, msgs ...*message.Message) error {
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := p.Publisher.Publish(topic, msgs...)
		if err == nil || p.ctx.Err() != nil {
			return err
		}
		p.log.Warn("publish failed, retrying", "topic", topic, "attempt", attempt, "err", err)
		select {
		case <-p.ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

type countingPublisher struct {
	message.Publisher
	n interface{ Inc() }
}

func (p *countingPublisher) Publish(topic string, msgs ...*message.Message) error {
	err := p.Publisher.Publish(topic, msgs...)
	if err == nil {
		for range msgs {
			p.n.Inc()
		}
	}
	return err
}

// stateStore maps LiveWindow checkpoints onto the goka progress table.
type stateStore struct{ s *state.Store }

func (s stateStore) Load(domain string) (handlers.LiveCheckpoint, bool, error) {
	p, ok, err := s.s.LoadProgress(domain)
	return handlers.LiveCheckpoint{LastClosedTick: p.LastClosedTick, Data: p.Checkpoint, Offsets: p.Offsets}, ok, err
}

func (s stateStore) Domains() ([]string, error) { return s.s.ProgressKeys() }

func (s stateStore) Save(ctx context.Context, domain string, c handlers.LiveCheckpoint) error {
	err := s.s.SaveProgress(ctx, domain, state.Progress{LastClosedTick: c.LastClosedTick, Checkpoint: c.Data, Offsets: c.Offsets})
	if errors.Is(err, state.ErrStale) {
		return fmt.Errorf("%w: %v", handlers.ErrStaleCheckpoint, err)
	}
	return err
}

func newSaramaClient(ctx context.Context, o kafka.Options) (sarama.Client, error) {
	v, err := sarama.ParseKafkaVersion(o.SaramaVersion)
	if err != nil {
		return nil, err
	}
	wait := 100 * time.Millisecond
	for {
		sc := sarama.NewConfig()
		sc.Version = v
		sc.ClientID = o.ClientID + "-aux"
		sc.Metadata.Retry.Backoff = 100 * time.Millisecond
		sc.Consumer.Return.Errors = true
		c, err := sarama.NewClient(o.Brokers, sc)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// partitionEnd is a partition's high-water mark.
func partitionEnd(client sarama.Client) func(context.Context, string, int32) (int64, error) {
	return func(_ context.Context, topic string, partition int32) (int64, error) {
		return client.GetOffset(topic, partition, sarama.OffsetNewest)
	}
}

// saveHosts writes each host of a decision to the per-host table, keyed
// "<domain>/<host>" (host names are only unique within a domain). The
// writes are not waited for: nothing restores from that table.
func saveHosts(store *state.Store, log *slog.Logger) func(string, int64, []handlers.LiveHost) {
	onErr := func(err error) { log.Warn("host state not saved", "err", err) }
	return func(domain string, tick int64, hosts []handlers.LiveHost) {
		for _, h := range hosts {
			hs := state.HostState{Domain: domain, Tick: tick, Capacity: h.Capacity, Containers: h.Containers, RecentLoad: h.RecentLoad}
			if hs.Containers == nil {
				hs.Containers = []string{}
			}
			if err := store.PutHost(domain+"/"+h.Name, hs, onErr); err != nil {
				onErr(err)
			}
		}
	}
}

// catchUp reads [from, to) of one partition with a plain partition
// consumer (no group: it must not disturb the group's assignment).
func catchUp(client sarama.Client) handlers.CatchUpFunc {
	return func(ctx context.Context, topic string, partition int32, from, to int64) ([]handlers.Record, error) {
		oldest, err := client.GetOffset(topic, partition, sarama.OffsetOldest)
		if err != nil {
			return nil, err
		}
		from = max(from, oldest)
		if from >= to {
			return nil, nil
		}
		cons, err := sarama.NewConsumerFromClient(client)
		if err != nil {
			return nil, err
		}
		defer cons.Close()
		pc, err := cons.ConsumePartition(topic, partition, from)
		if err != nil {
			return nil, err
		}
		defer pc.Close()
		var out []handlers.Record
		for {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case err := <-pc.Errors():
				return nil, err
			case km := <-pc.Messages():
				if km.Offset >= to {
					return out, nil
				}
				out = append(out, handlers.Record{Offset: km.Offset, Key: string(km.Key), Value: km.Value})
				if km.Offset == to-1 {
					return out, nil
				}
			case <-time.After(30 * time.Second):
				return nil, fmt.Errorf("catch up %s[%d] %d..%d: no record for 30 s", topic, partition, from, to)
			}
		}
	}
}

func serveHTTP(addr string, m *liveMetrics, ready *atomic.Bool, log *slog.Logger) (*http.Server, error) {
	if addr == "" {
		return nil, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("/metrics", m.handler())
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("service.http_addr: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	log.Info("http: /healthz /readyz /metrics", "addr", ln.Addr().String())
	return srv, nil
}
