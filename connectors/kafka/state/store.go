package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
)

// ErrStale is returned when a save carries an older tick than the table
// holds: another owner has moved on, and this writer must not roll it back.
var ErrStale = errors.New("state: table holds a newer tick")

// visibleWithin bounds how long a save waits for its own write.
const visibleWithin = 20 * time.Second

// Defaults for StateOptions fields left empty.
const (
	DefaultGroup      = "hots-state"
	DefaultPartitions = 6
)

// StateOptions configures Open.
type StateOptions struct {
	Brokers []string
	// Group prefixes the two goka groups, "<Group>-hosts" and
	// "<Group>-progress"; their tables are "<Group>-hosts-table" and
	// "<Group>-progress-table", fed by the streams "<Group>-hosts-updates"
	// and "<Group>-progress-updates". Every instance of one service uses the
	// same Group.
	Group string
	// Partitions of the streams and tables created on first use.
	Partitions int
	// Replication of created topics; 0 = 1 (what one kfake broker accepts).
	Replication int
	// SaramaVersion, e.g. "3.6.0". goka keeps one global sarama config per
	// process: the first Open sets it and later Opens reuse it.
	SaramaVersion string
	// Logger receives goka's logs at Debug; nil = silent.
	Logger *slog.Logger
	// MaxMessageBytes is the producer's record size limit (sarama's
	// Producer.MaxMessageBytes); 0 = Kafka's default 1,048,576.
	MaxMessageBytes int
	// ChunkBytes bounds one checkpoint chunk; 0 = DefaultChunkBytes (and
	// never more than a quarter of MaxMessageBytes).
	ChunkBytes int
	// SessionTimeout and HeartbeatInterval of the goka groups' consumer
	// group sessions; 0 = DefaultSessionTimeout, DefaultHeartbeatInterval.
	// A save of a key whose partition a dead member's processor held
	// waits for the session timeout (then a rebalance and the table's
	// recovery).
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration
}

// Defaults of the goka groups' sessions (the kafka connector's defaults).
const (
	DefaultSessionTimeout    = 6 * time.Second
	DefaultHeartbeatInterval = 500 * time.Millisecond
)

// DefaultChunkBytes keeps every state record far below Kafka's 1 MB limit
// whatever the size of a domain.
const DefaultChunkBytes = 192 << 10

func (o StateOptions) withDefaults() StateOptions {
	if o.Group == "" {
		o.Group = DefaultGroup
	}
	if o.Partitions <= 0 {
		o.Partitions = DefaultPartitions
	}
	if o.Replication <= 0 {
		o.Replication = 1
	}
	if o.SaramaVersion == "" {
		o.SaramaVersion = "3.6.0"
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 1 << 20
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = DefaultChunkBytes
	}
	o.ChunkBytes = min(o.ChunkBytes, o.MaxMessageBytes/4)
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	return o
}

var (
	gokaOnce sync.Once
	gokaErr  error
)

// configureGoka replaces goka's global sarama config once per process. The
// Default*Builders copy it for every client, which is what keeps processor,
// view and emitter free of data races (the *WithConfig builders write into
// one shared config).
func configureGoka(o StateOptions) error {
	gokaOnce.Do(func() {
		v, err := sarama.ParseKafkaVersion(o.SaramaVersion)
		if err != nil {
			gokaErr = fmt.Errorf("state: sarama version %q: %w", o.SaramaVersion, err)
			return
		}
		cfg := goka.DefaultConfig()
		cfg.Version = v
		// Streams are written before the processor first joins; Newest
		// would skip those updates.
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		// goka's 100 ms flush would add 100 ms to every synchronous save.
		cfg.Producer.Flush.Frequency = 5 * time.Millisecond
		cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
		// A dead member's partitions are given to the others after the
		// session timeout; a live member joins the rebalance at its next
		// heartbeat.
		cfg.Consumer.Group.Session.Timeout = o.SessionTimeout
		cfg.Consumer.Group.Heartbeat.Interval = o.HeartbeatInterval
		cfg.Producer.MaxMessageBytes = o.MaxMessageBytes
		goka.ReplaceGlobalConfig(cfg)
	})
	return gokaErr
}

// table is one goka group: emitter in, processor keeping it, view out.
type table[T ticked] struct {
	name      string
	codec     goka.Codec
	emitter   *goka.Emitter
	processor *goka.Processor
	view      *goka.View
}

// Store reads and writes the tables.
type Store struct {
	hosts    *table[HostState]
	progress *table[Progress]
	chunks   *table[Chunk]
	chunk    int // bytes per chunk

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	closed bool
}

// Open creates the topics if needed and starts the processors and views.
// It returns once they are built; call WaitRecovered before the first Load
// or Save, so that reads see the tables as Kafka holds them. An unreachable
// broker is retried until ctx ends.
func Open(ctx context.Context, o StateOptions) (*Store, error) {
	o = o.withDefaults()
	if len(o.Brokers) == 0 {
		return nil, errors.New("state: no brokers")
	}
	if err := configureGoka(o); err != nil {
		return nil, err
	}
	log := gokaLogger{o.Logger}
	tmc := goka.NewTopicManagerConfig()
	tmc.Table.Replication = o.Replication
	tmc.Stream.Replication = o.Replication
	tmb := goka.TopicManagerBuilderWithTopicManagerConfig(tmc)

	hosts := &table[HostState]{name: o.Group + "-hosts", codec: jsonCodec[HostState]{}}
	progress := &table[Progress]{name: o.Group + "-progress", codec: jsonCodec[Progress]{}}
	chunks := &table[Chunk]{name: o.Group + "-chunks", codec: chunkCodec{}}
	if err := ensureTopics(ctx, o, tmb, hosts.name, progress.name, chunks.name); err != nil {
		return nil, err
	}

	runCtx, cancel := context.WithCancel(context.Background())
	s := &Store{hosts: hosts, progress: progress, chunks: chunks, chunk: o.ChunkBytes, cancel: cancel}
	if err := start(runCtx, s, hosts, o, tmb, log); err != nil {
		s.Close()
		return nil, err
	}
	if err := start(runCtx, s, progress, o, tmb, log); err != nil {
		s.Close()
		return nil, err
	}
	if err := start(runCtx, s, chunks, o, tmb, log); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func ensureTopics(ctx context.Context, o StateOptions, tmb goka.TopicManagerBuilder, groups ...string) error {
	var tm goka.TopicManager
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		var err error
		if tm, err = tmb(o.Brokers); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("state: no broker reachable at %v: %w", o.Brokers, errors.Join(ctx.Err(), err))
		case <-time.After(wait):
		}
	}
	defer tm.Close()
	for _, g := range groups {
		if err := tm.EnsureStreamExists(g+"-updates", o.Partitions); err != nil {
			return fmt.Errorf("state: stream %s-updates: %w", g, err)
		}
		if err := tm.EnsureTableExists(string(goka.GroupTable(goka.Group(g))), o.Partitions); err != nil {
			return fmt.Errorf("state: table of %s: %w", g, err)
		}
	}
	return nil
}

func start[T ticked](ctx context.Context, s *Store, t *table[T], o StateOptions, tmb goka.TopicManagerBuilder, log gokaLogger) error {
	codec := t.codec
	stream := goka.Stream(t.name + "-updates")
	gg := goka.DefineGroup(goka.Group(t.name),
		goka.Input(stream, codec, keepNewest[T]),
		goka.Persist(codec),
	)
	var err error
	// In-memory storage: each start recovers from the compacted table
	// topic, so nothing on local disk can disagree with Kafka.
	t.processor, err = goka.NewProcessor(o.Brokers, gg,
		goka.WithTopicManagerBuilder(tmb),
		goka.WithConsumerGroupBuilder(rejoiningGroupBuilder(o.Logger)),
		goka.WithStorageBuilder(storage.MemoryBuilder()),
		goka.WithLogger(log),
	)
	if err != nil {
		return fmt.Errorf("state: processor %s: %w", t.name, err)
	}
	t.view, err = goka.NewView(o.Brokers, goka.GroupTable(goka.Group(t.name)), codec,
		goka.WithViewTopicManagerBuilder(tmb),
		goka.WithViewStorageBuilder(storage.MemoryBuilder()),
		goka.WithViewLogger(log),
		goka.WithViewAutoReconnect(),
	)
	if err != nil {
		return fmt.Errorf("state: view %s: %w", t.name, err)
	}
	t.emitter, err = goka.NewEmitter(o.Brokers, stream, codec,
		goka.WithEmitterTopicManagerBuilder(tmb),
		goka.WithEmitterLogger(log),
	)
	if err != nil {
		return fmt.Errorf("state: emitter %s: %w", t.name, err)
	}
	for _, run := range []func(context.Context) error{t.processor.Run, t.view.Run} {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				s.mu.Lock()
				s.errs = append(s.errs, fmt.Errorf("state %s: %w", t.name, err))
				s.mu.Unlock()
			}
		}()
	}
	return nil
}

// rejoiningGroupBuilder builds goka's default consumer group, whose
// Consume joins the next generation as soon as a session ends, and keeps
// joining while the brokers are away; log (nil = silent) gets one line per
// failed join.
//
// Why: goka's Processor sleeps a hardcoded 5 s after every return of
// Consume (processor.go, rebalanceLoop) before it joins again, and a
// rebalance waits for every live member to join. So every rebalance of a
// state group (a member died, joined or left) cost at least 5 s more, and
// a save of a key in a moved partition waited for it: after a kill -9 the
// survivor's saves, hence its tick closes and its usage group's rebalance,
// waited session timeout + 5 s. goka calls the handler's Setup and Cleanup
// once per session whether sessions come from one Consume or several, so
// the loop changes nothing else there. And goka stops the processor for
// good when Consume fails, which it does when the next join finds no
// broker: a broker outage longer than that 5 s pause left the service
// without state tables until restarted. A failed join is retried here
// instead (100 ms doubling to 5 s, as the other clients do); Consume
// returns when ctx ends or the group is closed.
func rejoiningGroupBuilder(log *slog.Logger) goka.ConsumerGroupBuilder {
	return func(brokers []string, group, clientID string) (sarama.ConsumerGroup, error) {
		cg, err := goka.DefaultConsumerGroupBuilder(brokers, group, clientID)
		if err != nil {
			return nil, err
		}
		return rejoiningGroup{ConsumerGroup: cg, group: group, log: log}, nil
	}
}

type rejoiningGroup struct {
	sarama.ConsumerGroup
	group string
	log   *slog.Logger
}

// rejoinPause spaces joins when a session ends at once, so that a group
// that cannot settle does not spin.
const rejoinPause = 100 * time.Millisecond

// maxRejoinWait bounds the wait between failed joins.
const maxRejoinWait = 5 * time.Second

func (g rejoiningGroup) Consume(ctx context.Context, topics []string, h sarama.ConsumerGroupHandler) error {
	wait := rejoinPause
	for attempt := 1; ; attempt++ {
		err := g.ConsumerGroup.Consume(ctx, topics, h)
		if ctx.Err() != nil || errors.Is(err, sarama.ErrClosedConsumerGroup) {
			return err
		}
		if err == nil {
			wait, attempt = rejoinPause, 0
		} else {
			if g.log != nil {
				g.log.Warn("state group: joining failed, retrying", "group", g.group, "attempt", attempt, "retry_in", wait.String(), "err", err.Error())
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		if err != nil {
			wait = min(2*wait, maxRejoinWait)
		}
	}
}

// keepNewest stores an update unless the table holds a newer tick, so a
// delayed write of a former owner cannot roll a domain back.
func keepNewest[T ticked](ctx goka.Context, msg any) {
	v, ok := msg.(T)
	if !ok {
		ctx.Fail(fmt.Errorf("state: unexpected update %T", msg))
	}
	if cur, ok := ctx.Value().(T); ok && cur.tick() > v.tick() {
		return
	}
	ctx.SetValue(v)
}

// WaitRecovered blocks until both processors run and both views have read
// their tables to the end, so Loads return what was saved before.
func (s *Store) WaitRecovered(ctx context.Context) error {
	for _, p := range []*goka.Processor{s.hosts.processor, s.progress.processor, s.chunks.processor} {
		if err := p.WaitForReadyContext(ctx); err != nil {
			return err
		}
	}
	for _, v := range []*goka.View{s.hosts.view, s.progress.view, s.chunks.view} {
		select {
		case <-v.WaitRunning():
		case <-ctx.Done():
			return ctx.Err()
		}
		for !v.Recovered() {
			if err := s.err(); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return s.err()
}

func (s *Store) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// SaveProgress writes a domain's progress and returns once this Store's
// views show it, so a LoadProgress right after returns what was saved.
// The checkpoint goes first, in chunks of at most ChunkBytes, into the
// slots of the next generation; the progress record, which names that
// generation, last: a crash in between leaves the previous one whole.
func (s *Store) SaveProgress(ctx context.Context, domain string, p Progress) error {
	data := p.Checkpoint
	p.Checkpoint, p.Gen, p.Chunks, p.Size, p.Sum = nil, 0, 0, 0, ""
	if len(data) > 0 {
		cur, ok, err := load(s.progress, domain)
		if err != nil {
			return err
		}
		if ok && cur.tick() > p.tick() {
			return fmt.Errorf("%w: %s/%s at tick %d, save of tick %d", ErrStale, s.progress.name, domain, cur.tick(), p.tick())
		}
		p.Gen = cur.Gen + 1
		p.Size = len(data)
		sum := sha256.Sum256(data)
		p.Sum = hex.EncodeToString(sum[:])
		for off := 0; off < len(data); off += s.chunk {
			c := Chunk{Tick: p.LastClosedTick, Gen: p.Gen, Data: data[off:min(off+s.chunk, len(data))]}
			if err := save(ctx, s, s.chunks, chunkKey(domain, p.Gen, p.Chunks), c); err != nil {
				return err
			}
			p.Chunks++
		}
	}
	return save(ctx, s, s.progress, domain, p)
}

func chunkKey(domain string, gen int64, i int) string {
	return domain + "#" + strconv.FormatInt(gen%2, 10) + "#" + strconv.Itoa(i)
}

// LoadProgress reads a domain's progress with its checkpoint put back
// together; false if none was saved. A chunk this Store's view does not
// show yet (it is written before the progress record, but by another
// table) is an error worth retrying.
func (s *Store) LoadProgress(domain string) (Progress, bool, error) {
	p, ok, err := load(s.progress, domain)
	if err != nil || !ok || p.Chunks == 0 {
		return p, ok, err
	}
	data := make([]byte, 0, p.Size)
	for i := range p.Chunks {
		c, ok, err := load(s.chunks, chunkKey(domain, p.Gen, i))
		if err != nil {
			return p, false, err
		}
		if !ok || c.Gen != p.Gen {
			return p, false, fmt.Errorf("state: checkpoint of %s, generation %d: chunk %d of %d not visible yet", domain, p.Gen, i+1, p.Chunks)
		}
		data = append(data, c.Data...)
	}
	sum := sha256.Sum256(data)
	if len(data) != p.Size || hex.EncodeToString(sum[:]) != p.Sum {
		return p, false, fmt.Errorf("state: checkpoint of %s, generation %d: %d bytes do not match the %d and sum recorded", domain, p.Gen, len(data), p.Size)
	}
	// The caller gets back what it saved; how it was stored is ours.
	p.Checkpoint, p.Gen, p.Chunks, p.Size, p.Sum = data, 0, 0, 0, ""
	return p, true, nil
}

// SaveHost writes a host's state, read-your-writes like SaveProgress.
func (s *Store) SaveHost(ctx context.Context, host string, h HostState) error {
	return save(ctx, s, s.hosts, host, h)
}

// LoadHost reads a host's state; false if none was saved.
func (s *Store) LoadHost(host string) (HostState, bool, error) {
	return load(s.hosts, host)
}

// ProgressKeys lists the domains the progress table holds (a snapshot of
// this Store's view): the domains a new owner of a partition may have to
// restore before any of their records arrives.
func (s *Store) ProgressKeys() ([]string, error) {
	it, err := s.progress.view.Iterator()
	if err != nil {
		return nil, fmt.Errorf("state: list %s: %w", s.progress.name, err)
	}
	defer it.Release()
	var keys []string
	for it.Next() {
		keys = append(keys, it.Key())
	}
	return keys, it.Err()
}

// PutHost writes a host's state without waiting for it to be visible
// (nothing restores from the host table: it is what operators and other
// consumers read). It returns once the update is handed to the producer;
// a failed send is reported to onErr (if set). The processor still drops
// an update older than what the table holds.
func (s *Store) PutHost(key string, h HostState, onErr func(error)) error {
	if key == "" {
		return errors.New("state: empty key")
	}
	p, err := s.hosts.emitter.Emit(key, h)
	if err != nil {
		return fmt.Errorf("state: emit %s/%s: %w", s.hosts.name, key, err)
	}
	if onErr != nil {
		p.Then(func(err error) {
			if err != nil {
				onErr(fmt.Errorf("state: emit %s/%s: %w", s.hosts.name, key, err))
			}
		})
	}
	return nil
}

func load[T ticked](t *table[T], key string) (T, bool, error) {
	var zero T
	v, err := t.view.Get(key)
	if err != nil {
		return zero, false, fmt.Errorf("state: read %s/%s: %w", t.name, key, err)
	}
	if v == nil {
		return zero, false, nil
	}
	return v.(T), true, nil
}

func save[T ticked](ctx context.Context, s *Store, t *table[T], key string, v T) error {
	if key == "" {
		return errors.New("state: empty key")
	}
	codec := t.codec
	want, err := codec.Encode(v)
	if err != nil {
		return err
	}
	if cur, ok, err := load(t, key); err == nil && ok && cur.tick() > v.tick() {
		return fmt.Errorf("%w: %s/%s at tick %d, save of tick %d", ErrStale, t.name, key, cur.tick(), v.tick())
	}
	if err := t.emitter.EmitSync(key, v); err != nil {
		return fmt.Errorf("state: emit %s/%s: %w", t.name, key, err)
	}
	// The processor owning the key's partition may be in a rebalance (goka
	// pauses 5 s after each) or gone with a dead member until its session
	// expires. Past visibleWithin the save reports it, so the caller's retry
	// logs it and emits again (an equal update is a no-op) instead of
	// waiting silently.
	deadline := time.Now().Add(visibleWithin)
	for wait := time.Millisecond; ; wait = min(2*wait, 20*time.Millisecond) {
		cur, ok, err := load(t, key)
		if err != nil {
			return err
		}
		if ok {
			got, _ := codec.Encode(cur)
			if bytes.Equal(got, want) {
				return nil
			}
			if cur.tick() > v.tick() {
				return fmt.Errorf("%w: %s/%s at tick %d, save of tick %d", ErrStale, t.name, key, cur.tick(), v.tick())
			}
		}
		if err := s.err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("state: %s/%s emitted but not visible after %s (table processor rebalancing?)", t.name, key, visibleWithin)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("state: %s/%s saved but not yet visible: %w", t.name, key, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// Close stops processors and views (leaving the goka groups, so another
// instance takes the partitions over) and flushes the emitters.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	var errs []error
	for _, e := range []*goka.Emitter{s.hosts.emitter, s.progress.emitter, s.chunks.emitter} {
		if e != nil {
			if err := e.Finish(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	s.cancel()
	s.wg.Wait()
	return errors.Join(append(errs, s.err())...)
}

// gokaLogger sends goka's logs to slog at Debug: goka reports every
// partition state change at its only level.
type gokaLogger struct{ l *slog.Logger }

func (g gokaLogger) Print(args ...any) {
	if g.l != nil {
		g.l.Debug(fmt.Sprint(args...), "component", "goka")
	}
}
func (g gokaLogger) Println(args ...any) { g.Print(args...) }
func (g gokaLogger) Printf(format string, args ...any) {
	if g.l != nil {
		g.l.Debug(fmt.Sprintf(format, args...), "component", "goka")
	}
}
