package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
	"hots/connectors"
	"hots/connectors/kafka/state"
)

// Name is the connector.type of the Kafka connector.
const Name = "kafka"

func init() {
	connectors.Register(connectors.Registration{
		Name:    Name,
		Summary: "long-running consumer: usage from Kafka topics (consumer group), moves to a topic, state in goka tables",
		Section: "kafka",
		NewArgs: func() connectors.Args { return &Args{} },
		Keys: []connectors.Key{
			{Key: "data_folder", Doc: "optional folder whose node_meta.csv gives capacities at start (the nodes topic also carries them)"},
			{Key: "node_meta_file", Doc: "host capacities CSV inside data_folder"},
			{Key: "bootstrap.servers", Doc: "brokers, comma-separated (upstream key; wins over kafka.brokers when set)"},
			{Key: "topics", Doc: "upstream name of kafka.usage_topics"},
			{Key: "consumer_conf", Doc: "upstream consumer object; accepted and unused"},
			{Key: "batch_size", Doc: "accepted for upstream compatibility; unused"},
			{Key: "outfile", Doc: "accepted for upstream compatibility; unused: moves go to kafka.moves_topic"},
			{Key: "kafka.brokers", Doc: "brokers (comma-separated in env/flags)"},
			{Key: "kafka.topics", Doc: "upstream name of kafka.usage_topics"},
			{Key: "kafka.usage_topics", Doc: "topics usage samples are read from"},
			{Key: "kafka.moves_topic", Doc: "topic moves are published to"},
			{Key: "kafka.poison_topic", Doc: "topic bad input goes to, with the reason"},
			{Key: "kafka.nodes_topic", Doc: "compacted topic host → capacities"},
			{Key: "kafka.group", Doc: "consumer group; the goka state group is GROUP-state"},
			{Key: "kafka.partitions", Doc: "partitions of the topics hots creates"},
			{Key: "kafka.lateness", Doc: "a tick closes this long after the first sample of a later tick"},
			{Key: "kafka.idle_timeout", Doc: "the open tick closes after this long without samples"},
			{Key: "kafka.checkpoint_interval", Doc: "a domain's state is saved at most this often (and at every graceful stop or handover); 0 = after every tick close. After a crash, input since the last save is read again (same moves): retention must cover it"},
			{Key: "kafka.max_tick_jump", Doc: "a record whose tick is more than this many ticks ahead of its domain's newest tick, or negative, is poisoned with the reason instead of moving the domain's clock; 0 = no bound"},
			{Key: "kafka.bundle_records", Doc: "up to this many records of a partition that are already waiting go through the stages as one message, each still decoded (and poisoned) alone; 1 = one message per record"},
			{Key: "kafka.session_timeout", Doc: "consumer-group session timeout of the usage group and the goka state groups: how long a member that stopped heartbeating (kill -9, a network partition) keeps its partitions; takeover after a crash costs about this much. Between 6s and 30m (a broker's default group.min/max.session.timeout.ms)"},
			{Key: "kafka.heartbeat_interval", Doc: "how often the members of those groups heartbeat, which is also how soon a live member joins a rebalance; at most a third of kafka.session_timeout"},
			{Key: "kafka.max_message_bytes", Doc: "the producers' record size limit (sarama Producer.MaxMessageBytes; Kafka's default); state is written in chunks of at most a quarter of it"},
			{Key: "kafka.schema", Doc: "upstream Avro schema object; accepted and unused"},
			{Key: "kafka.schema_url", Doc: "accepted for upstream compatibility; unused"},
			{Key: "kafka.connector_url", Doc: "accepted for upstream compatibility; unused"},
		},
		Flags: []connectors.Flag{
			{Name: "brokers", Key: "kafka.brokers", Usage: "Kafka brokers, comma-separated (kafka.brokers)", List: true},
			{Name: "data", Key: "connector.parameters.data_folder", Usage: "data folder with container_usage.csv and node_meta.csv (connector.parameters.data_folder)"},
		},
		New: func(env connectors.Env, a connectors.Args) (connectors.Connector, error) { return New(env, *a.(*Args)) },
	})
}

// Args are the Kafka connector's parameters: upstream's keys under
// connector.parameters, hots' own in the top-level kafka block.
type Args struct {
	DataFolder       string `koanf:"data_folder"`
	NodeMetaFile     string `koanf:"node_meta_file"`
	BootstrapServers string `koanf:"bootstrap.servers"`
	// The same key as env (HOTS_CONNECTOR__PARAMETERS__BOOTSTRAP_SERVERS)
	// and --set (nested at the dot) spell it.
	BootstrapServersEnv string `koanf:"bootstrap_servers"`
	Bootstrap           struct {
		Servers string `koanf:"servers"`
	} `koanf:"bootstrap"`
	Topics       []string       `koanf:"topics"`
	ConsumerConf map[string]any `koanf:"consumer_conf"`
	BatchSize    int            `koanf:"batch_size"`
	// Outfile is in upstream's Kafka sample; moves go to kafka.moves_topic.
	Outfile string  `koanf:"outfile"`
	Kafka   Section `koanf:"kafka"`
}

// Section is the top-level kafka block.
type Section struct {
	Brokers     []string      `koanf:"brokers"`
	Topics      []string      `koanf:"topics"`
	UsageTopics []string      `koanf:"usage_topics"`
	MovesTopic  string        `koanf:"moves_topic"`
	PoisonTopic string        `koanf:"poison_topic"`
	NodesTopic  string        `koanf:"nodes_topic"`
	Group       string        `koanf:"group"`
	Partitions  int           `koanf:"partitions"`
	Lateness    time.Duration `koanf:"lateness"`
	IdleTimeout time.Duration `koanf:"idle_timeout"`
	// CheckpointInterval: a domain is saved at most this often (and at
	// every graceful stop or partition handover).
	CheckpointInterval time.Duration `koanf:"checkpoint_interval"`
	// MaxMessageBytes is the producer's record limit (Kafka's default).
	MaxMessageBytes int `koanf:"max_message_bytes"`
	// MaxTickJump: a record this many ticks ahead of its domain\'s clock
	// is poisoned (connectors.TickRule).
	MaxTickJump int64 `koanf:"max_tick_jump"`
	// BundleRecords: records already waiting on a partition are handed
	// over together, up to this many (Options.BundleRecords).
	BundleRecords int `koanf:"bundle_records"`
	// SessionTimeout and HeartbeatInterval of every consumer group hots
	// joins (the usage group and the goka state groups).
	SessionTimeout    time.Duration  `koanf:"session_timeout"`
	HeartbeatInterval time.Duration  `koanf:"heartbeat_interval"`
	Schema            map[string]any `koanf:"schema"`
	SchemaURL         string         `koanf:"schema_url"`
	ConnectorURL      string         `koanf:"connector_url"`
}

// Default implements connectors.Args.
func (a *Args) Default() {
	a.NodeMetaFile, a.BatchSize = "node_meta.csv", 1
	a.Kafka = Section{Brokers: []string{"localhost:9092"}, UsageTopics: []string{DefaultUsageTopic}, MovesTopic: DefaultMovesTopic,
		PoisonTopic: DefaultPoisonTopic, NodesTopic: DefaultNodesTopic, Group: DefaultGroup, Partitions: 3,
		Lateness: 2 * time.Second, IdleTimeout: 30 * time.Second, CheckpointInterval: 5 * time.Second, MaxMessageBytes: 1 << 20, MaxTickJump: 1000,
		BundleRecords: 256, SessionTimeout: DefaultSessionTimeout, HeartbeatInterval: DefaultHeartbeatInterval}
}

// Validate implements connectors.Args.
func (a *Args) Validate() error {
	var errs []error
	bad := func(key string, v any, allowed string) {
		errs = append(errs, &connectors.KeyError{Key: key, Value: v, Allowed: allowed})
	}
	if a.Kafka.Partitions < 1 {
		bad("kafka.partitions", a.Kafka.Partitions, "must be >= 1")
	}
	if a.Kafka.Lateness < 0 {
		bad("kafka.lateness", a.Kafka.Lateness, "a non-negative duration such as 2s or 500ms")
	}
	if a.Kafka.IdleTimeout < 0 {
		bad("kafka.idle_timeout", a.Kafka.IdleTimeout, "a non-negative duration such as 30s")
	}
	if a.Kafka.CheckpointInterval < 0 {
		bad("kafka.checkpoint_interval", a.Kafka.CheckpointInterval, "a non-negative duration such as 5s")
	}
	if a.Kafka.MaxTickJump < 0 {
		bad("kafka.max_tick_jump", a.Kafka.MaxTickJump, "must be >= 0 (0 = no bound)")
	}
	if a.Kafka.BundleRecords < 1 {
		bad("kafka.bundle_records", a.Kafka.BundleRecords, "must be >= 1 (1 = one message per record)")
	}
	if a.Kafka.MaxMessageBytes < 64<<10 {
		bad("kafka.max_message_bytes", a.Kafka.MaxMessageBytes, "at least 65536 bytes")
	}
	if st := a.Kafka.SessionTimeout; st < MinSessionTimeout || st > MaxSessionTimeout {
		bad("kafka.session_timeout", st, fmt.Sprintf("a duration between %s and %s (a broker's default group.min.session.timeout.ms and group.max.session.timeout.ms)", MinSessionTimeout, MaxSessionTimeout))
	}
	if hb := a.Kafka.HeartbeatInterval; hb < time.Millisecond || hb > a.Kafka.SessionTimeout/3 {
		bad("kafka.heartbeat_interval", hb, fmt.Sprintf("a duration of at least 1ms and at most a third of kafka.session_timeout (%s)", a.Kafka.SessionTimeout))
	}
	if _, err := a.Options(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Options are the client options the Args describe. Upstream spellings
// (connector.parameters bootstrap.servers and topics, kafka.topics) are
// honoured when set.
func (a *Args) Options() (Options, error) {
	k := a.Kafka
	o := Options{Brokers: k.Brokers, Group: k.Group, UsageTopics: k.UsageTopics, MovesTopic: k.MovesTopic,
		PoisonTopic: k.PoisonTopic, NodesTopic: k.NodesTopic, Partitions: k.Partitions, MaxMessageBytes: k.MaxMessageBytes,
		BundleRecords: k.BundleRecords, SessionTimeout: k.SessionTimeout, HeartbeatInterval: k.HeartbeatInterval}
	for _, s := range []string{a.BootstrapServers, a.BootstrapServersEnv, a.Bootstrap.Servers} {
		if s != "" {
			o.Brokers = splitList(s)
		}
	}
	if len(a.Topics) > 0 {
		o.UsageTopics = a.Topics
	}
	if len(k.Topics) > 0 {
		o.UsageTopics = k.Topics
	}
	// A client id per process, so that the group's member list says which
	// instance owns which partition.
	host, _ := os.Hostname()
	o.ClientID = fmt.Sprintf("hots-%s-%d", host, os.Getpid())
	o = o.WithDefaults()
	return o, o.Validate()
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

// Connector is the long-running Kafka service's edge: a consumer group
// on the usage topics, the moves and poison topics, the goka progress and
// host tables, sarama clients for catch-up, partition ends and the
// compacted nodes topic.
type Connector struct {
	env      connectors.Env
	args     Args
	opts     Options
	metaPath string
	log      *slog.Logger

	// patience bounds the retries of publishes and saves: until Close.
	patience context.Context
	give     context.CancelFunc

	store *state.Store
	// client asks for partition ends (watchEnds, End); nodes follows the
	// nodes topic; catchUp reads the ranges of a takeover's catch-up. One
	// connection each: see newSaramaClient.
	client  sarama.Client
	nodes   sarama.Client
	catchUp sarama.Client
	sub     message.Subscriber
	pub     message.Publisher
	owner   connectors.Owner
	claims  claimSet

	closeOnce sync.Once
	closeErr  error
}

// New prepares the connector; it connects in Initial.
func New(env connectors.Env, a Args) (*Connector, error) {
	o, err := a.Options()
	if err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Connector{env: env, args: a, opts: o, log: log}
	if a.DataFolder != "" {
		dir := a.DataFolder
		if !filepath.IsAbs(dir) && env.BaseDir != "" {
			dir = filepath.Join(env.BaseDir, dir)
		}
		c.metaPath = filepath.Join(dir, a.NodeMetaFile)
	}
	c.patience, c.give = context.WithCancel(context.Background())
	return c, nil
}

// Initial implements connectors.Connector: node_meta's hosts (if a data
// folder is given); it also connects: topics, state tables, clients.
func (c *Connector) Initial(ctx context.Context) (connectors.Initial, error) {
	var init connectors.Initial
	if c.metaPath != "" {
		var err error
		if init, err = connectors.InitialFromNodeMeta(c.metaPath, c.env.Fields); err != nil {
			return init, err
		}
	}
	o := c.opts
	c.log.Info("live mode: connecting", "brokers", o.Brokers, "usage_topics", o.UsageTopics, "group", o.Group)
	if err := EnsureTopics(ctx, o); err != nil {
		return init, err
	}
	store, err := state.Open(ctx, state.StateOptions{Brokers: o.Brokers, Group: o.Group + "-state",
		Partitions: o.Partitions, SaramaVersion: o.SaramaVersion, Logger: c.log, MaxMessageBytes: c.args.Kafka.MaxMessageBytes,
		SessionTimeout: o.SessionTimeout, HeartbeatInterval: o.HeartbeatInterval})
	if err != nil {
		return init, err
	}
	c.store = store
	if err := store.WaitRecovered(ctx); err != nil {
		return init, err
	}
	if c.client, err = newSaramaClient(ctx, o, "ends", nil); err != nil {
		return init, err
	}
	if c.nodes, err = newSaramaClient(ctx, o, "nodes", nil); err != nil {
		return init, err
	}
	// A catch-up read stops at a known offset; what is left is the fetch
	// in flight at the partition's end, which Close waits for: short.
	if c.catchUp, err = newSaramaClient(ctx, o, "catchup", func(sc *sarama.Config) { sc.Consumer.MaxWaitTime = 100 * time.Millisecond }); err != nil {
		return init, err
	}
	wlog := connectors.WatermillLogger(c.log)
	// The group session tells the window which partitions this instance
	// owns: on assignment it restores their checkpointed domains (before
	// any record is delivered), on revocation it stops idle closes, and
	// on a graceful shutdown it checkpoints before the partitions go.
	sub, err := NewSubscriberWithHooks(o, wlog, GroupHooks{
		Assigned: func(a Assignment) {
			c.log.Info("partitions assigned", "generation", a.Generation, "member", a.MemberID, "claims", a.Claims)
			all := c.claims.assign(a.Claims)
			if c.owner != nil {
				if err := c.owner.Assign(all); err != nil {
					c.log.Error("restoring the assigned partitions' domains", "err", err)
				}
			}
		},
		Revoked: func(a Assignment) {
			c.log.Info("partitions revoked", "generation", a.Generation)
			c.claims.revoke(a.Claims)
			if c.owner != nil {
				if err := c.owner.Revoke(ctx.Err() != nil); err != nil {
					c.log.Error("checkpoint before giving the partitions up", "err", err)
				}
			}
		},
	})
	if err != nil {
		return init, err
	}
	c.sub = provenanceSubscriber{sub}
	pub, err := NewPublisher(o, wlog)
	if err != nil {
		return init, err
	}
	c.pub = &patientPublisher{Publisher: pub, ctx: c.patience, log: c.log}
	return init, nil
}

// Source implements connectors.Connector.
func (c *Connector) Source() connectors.Source {
	return connectors.Source{Subscriber: c.sub, Topics: c.opts.UsageTopics}
}

// Sink implements connectors.Connector.
func (c *Connector) Sink() connectors.Sink {
	return connectors.Sink{Publisher: c.pub, Topic: c.opts.MovesTopic}
}

// Poison implements connectors.Connector.
func (c *Connector) Poison() connectors.Sink {
	return connectors.Sink{Publisher: c.pub, Topic: c.opts.PoisonTopic}
}

// Ticks implements connectors.Connector: a stream never knows a tick is
// complete, so lateness and idle time decide.
func (c *Connector) Ticks() connectors.TickRule {
	return connectors.TickRule{Lateness: c.args.Kafka.Lateness, IdleTimeout: c.args.Kafka.IdleTimeout, MaxTickJump: c.args.Kafka.MaxTickJump}
}

// OnOwnership implements connectors.Ownership.
func (c *Connector) OnOwnership(o connectors.Owner) { c.owner = o }

// Start implements connectors.Starter: follow the nodes topic and the
// usage partitions' ends.
func (c *Connector) Start(ctx context.Context, rt connectors.Runtime) error {
	c.log.Info("live mode: ready", "moves_topic", c.opts.MovesTopic, "poison_topic", c.opts.PoisonTopic,
		"lateness", c.args.Kafka.Lateness, "idle_timeout", c.args.Kafka.IdleTimeout)
	go followNodes(ctx, c.nodes, c.opts.NodesTopic, c.env.Fields.Metrics, rt, c.log)
	go watchEnds(ctx, c.client, c.opts.UsageTopics, rt, endsInterval(c.args.Kafka))
	return nil
}

func endsInterval(k Section) time.Duration {
	d := time.Second
	for _, x := range []time.Duration{k.Lateness / 4, k.IdleTimeout / 4} {
		if x > 0 && x < d {
			d = x
		}
	}
	return max(d, 20*time.Millisecond)
}

// Load implements connectors.Checkpointer over the goka progress table.
func (c *Connector) Load(domain string) (codecs.Checkpoint, bool, error) {
	p, ok, err := c.store.LoadProgress(domain)
	return codecs.Checkpoint{LastClosedTick: p.LastClosedTick, Data: p.Checkpoint, Offsets: p.Offsets}, ok, err
}

// CheckpointEvery implements connectors.Checkpointer.
func (c *Connector) CheckpointEvery() time.Duration { return c.args.Kafka.CheckpointInterval }

// Domains implements connectors.Checkpointer.
func (c *Connector) Domains() ([]string, error) { return c.store.ProgressKeys() }

// Save implements connectors.Checkpointer.
func (c *Connector) Save(ctx context.Context, domain string, cp codecs.Checkpoint) error {
	err := c.store.SaveProgress(ctx, domain, state.Progress{LastClosedTick: cp.LastClosedTick, Checkpoint: cp.Data, Offsets: cp.Offsets})
	if errors.Is(err, state.ErrStale) {
		return fmt.Errorf("%w: %v", codecs.ErrStaleCheckpoint, err)
	}
	return err
}

// RecordHosts implements connectors.HostRecorder: each host to the
// per-host table, keyed "<domain>/<host>" (host names are only unique
// within a domain). The writes are not waited for: nothing restores from
// that table.
func (c *Connector) RecordHosts(domain string, tick int64, hosts []codecs.HostState) {
	onErr := func(err error) { c.log.Warn("host state not saved", "err", err) }
	for _, h := range hosts {
		hs := state.HostState{Domain: domain, Tick: tick, Capacity: h.Capacity, Containers: h.Containers, RecentLoad: h.RecentLoad}
		if hs.Containers == nil {
			hs.Containers = []string{}
		}
		if err := c.store.PutHost(domain+"/"+h.Name, hs, onErr); err != nil {
			onErr(err)
		}
	}
}

// End implements connectors.Replayer: a partition's high-water mark.
func (c *Connector) End(_ context.Context, topic string, partition int32) (int64, error) {
	return c.client.GetOffset(topic, partition, sarama.OffsetNewest)
}

// ReadRange implements connectors.Replayer: [from, to) of one partition
// with a plain partition consumer (no group: it must not disturb the
// group's assignment).
func (c *Connector) ReadRange(ctx context.Context, topic string, partition int32, from, to int64) ([]codecs.Record, error) {
	oldest, err := c.client.GetOffset(topic, partition, sarama.OffsetOldest)
	if err != nil {
		return nil, err
	}
	from = max(from, oldest)
	if from >= to {
		return nil, nil
	}
	cons, err := sarama.NewConsumerFromClient(c.catchUp)
	if err != nil {
		return nil, err
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(topic, partition, from)
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	var out []codecs.Record
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
			out = append(out, codecs.Record{Offset: km.Offset, Key: string(km.Key), Value: km.Value})
			if km.Offset == to-1 {
				return out, nil
			}
		case <-time.After(30 * time.Second):
			return nil, fmt.Errorf("catch up %s[%d] %d..%d: no record for 30 s", topic, partition, from, to)
		}
	}
}

// Close implements connectors.Connector. Idempotent.
func (c *Connector) Close() error {
	c.closeOnce.Do(func() {
		c.give()
		var errs []error
		if c.sub != nil {
			errs = append(errs, c.sub.Close())
		}
		if c.pub != nil {
			errs = append(errs, c.pub.Close())
		}
		for _, cl := range []sarama.Client{c.client, c.nodes, c.catchUp} {
			if cl != nil {
				errs = append(errs, cl.Close())
			}
		}
		if c.store != nil {
			errs = append(errs, c.store.Close())
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// claimSet is what this instance owns over all its usage topics. Each
// topic's subscription is a group member of its own, whose session reports
// only that topic's partitions; the window must be told the union, or one
// topic's assignment would take the other's partitions away.
type claimSet struct {
	mu sync.Mutex
	by map[string][]int32
}

// assign records the claims of one session's topics and returns the union.
func (s *claimSet) assign(claims map[string][]int32) map[string][]int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.by == nil {
		s.by = map[string][]int32{}
	}
	for t, ps := range claims {
		s.by[t] = append([]int32(nil), ps...)
	}
	out := make(map[string][]int32, len(s.by))
	for t, ps := range s.by {
		out[t] = append([]int32(nil), ps...)
	}
	return out
}

// revoke forgets the topics of a session that ended.
func (s *claimSet) revoke(claims map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range claims {
		delete(s.by, t)
	}
}
