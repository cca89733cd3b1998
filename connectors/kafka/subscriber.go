package kafka

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// NewSubscriber returns a watermill-kafka Subscriber in consumer group
// o.Group that starts a new group at the oldest offset and auto-commits
// acked offsets every second. Subscribe waits, retrying with backoff, until
// the brokers answer or ctx ends, so a service started before its broker
// connects when the broker comes up.
//
// Delivery is at-least-once: an Ack followed at once by Close can be lost
// (watermill picks randomly between the two), and a crash redelivers up to
// the auto-commit interval. Consumers must be idempotent.
func NewSubscriber(o Options, logger watermill.LoggerAdapter) (message.Subscriber, error) {
	return NewSubscriberWithHooks(o, logger, GroupHooks{})
}

// Assignment is this member's share of the consumer group for one
// generation: the partitions it consumes until the next rebalance.
type Assignment struct {
	MemberID   string
	Generation int32
	Claims     map[string][]int32
}

// GroupHooks are called by the consumer-group session (sarama's handler
// Setup and Cleanup). Assigned runs after a rebalance, before any record of
// the new generation is delivered; Revoked runs when the generation ends,
// after every record handed to the consumer was acked (watermill delivers
// one record per partition at a time and waits for its ack; a record still
// waiting to be taken from the channel when the generation ends is not
// handed over, see handOver). Both run on sarama's session goroutine: while
// they run, the group consumes nothing, but heartbeats go on, so a long
// Assigned (restoring state) does not cost the membership.
type GroupHooks struct {
	Assigned func(Assignment)
	Revoked  func(Assignment)
}

// NewSubscriberWithHooks is NewSubscriber with group-session hooks, so the
// caller learns the exact partitions it owns (and when it stops owning
// them) instead of polling the group's member list.
func NewSubscriberWithHooks(o Options, logger watermill.LoggerAdapter, hooks GroupHooks) (message.Subscriber, error) {
	o, logger, sc, err := o.prepare(logger)
	if err != nil {
		return nil, err
	}
	sc.Consumer.Return.Errors = true
	// The usage topic is usually written before the group first joins;
	// OffsetNewest would skip those records.
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	// Keep auto-commit on: with it off watermill commits synchronously after
	// every Ack, which deadlocked sarama 1.46.3 against kfake after a
	// restart (stack.md section 2).
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = time.Second

	claims := &claimSessions{m: map[claimKey]context.Context{}}
	bundles := newBundler(o.BundleRecords)
	inner, err := wmkafka.NewSubscriber(wmkafka.SubscriberConfig{
		Brokers:               o.Brokers,
		Unmarshaler:           marshaler{bundles: bundles},
		OverwriteSaramaConfig: sc,
		ConsumerGroup:         o.Group,
		NackResendSleep:       100 * time.Millisecond,
		ReconnectRetrySleep:   time.Second,
		Tracer:                hookTracer{hooks: hooks, claims: claims, bundles: bundles},
	}, logger)
	if err != nil {
		return nil, err
	}
	return &subscriber{inner: inner, claims: claims, logger: logger, closing: make(chan struct{})}, nil
}

type subscriber struct {
	inner      *wmkafka.Subscriber
	claims     *claimSessions
	logger     watermill.LoggerAdapter
	closing    chan struct{}
	once       sync.Once
	forwarders sync.WaitGroup
}

func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	var b backoff
	for attempt := 1; ; attempt++ {
		ch, err := s.inner.Subscribe(ctx, topic)
		if err == nil {
			out := make(chan *message.Message)
			s.forwarders.Go(func() { s.handOver(topic, ch, out) })
			return out, nil
		}
		wait := b.next()
		s.logger.Info("Kafka not reachable yet, retrying subscribe", watermill.LogFields{
			"topic": topic, "attempt": attempt, "retry_in": wait.String(), "err": err.Error(),
		})
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, errors.Join(ctx.Err(), err)
		case <-s.closing:
			t.Stop()
			return nil, errors.New("subscriber closed")
		case <-t.C:
		}
	}
}

// handOver passes the records of one subscription on to the consumer, but
// gives up a record nobody takes before its group session ends.
//
// Why: every Subscribe is its own member of the consumer group, and a
// rebalance waits until each member's claims have returned. watermill-kafka
// waits for a record to be taken and acked watching only its own closing
// and the Subscribe ctx, not the session. So one subscription that is not
// being read (the suite's TestTopic reads topic 1 before it touches topic
// 2) held the rebalance, and every other subscription of the group,
// cluster-wide: a member subscribed to topic 1 after an unread topic 2
// member had started got nothing for 90 s (sarama's 60 s rebalance timeout
// did not end it). A record that was never handed over is not in flight
// for the consumer, so it is given back instead: acked after its session
// ended, which watermill-kafka does not mark (it checks the session first),
// so it ends the claim, the rebalance goes on, and the record comes again
// from the committed offset, to whichever member owns it next. A record
// already taken is still waited for until it is acked (what Revoked relies
// on).
func (s *subscriber) handOver(topic string, in <-chan *message.Message, out chan<- *message.Message) {
	defer close(out)
	for m := range in {
		p, _ := wmkafka.MessagePartitionFromCtx(m.Context())
		select {
		case out <- m:
		case <-s.claims.done(topic, p):
			m.Ack()
		case <-s.closing: // watermill-kafka drops it unmarked too
		}
	}
}

func (s *subscriber) Close() error {
	s.once.Do(func() { close(s.closing) })
	err := s.inner.Close()
	// Closed output channels once Close returns, as watermill-kafka's own.
	s.forwarders.Wait()
	return err
}

// claimSessions records, per topic and partition, the context of the group
// session whose claim is delivering that partition's records. A partition's
// next claim, in this member or another one of this subscriber, starts only
// after the previous one returned, so the entry is the session of every
// record of that partition the hand-off still holds.
type claimSessions struct {
	mu sync.Mutex
	m  map[claimKey]context.Context
}

type claimKey struct {
	topic     string
	partition int32
}

func (c *claimSessions) set(topic string, partition int32, ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[claimKey{topic, partition}] = ctx
}

// done is the end of the record's session; nil (never) if unknown.
func (c *claimSessions) done(topic string, partition int32) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ctx, ok := c.m[claimKey{topic, partition}]; ok {
		return ctx.Done()
	}
	return nil
}

// hookTracer is watermill-kafka's only way in to the consumer-group
// handler: a SaramaTracer that wraps nothing but that handler.
type hookTracer struct {
	hooks   GroupHooks
	claims  *claimSessions
	bundles *bundler
}

func (hookTracer) WrapConsumer(c sarama.Consumer) sarama.Consumer { return c }
func (hookTracer) WrapPartitionConsumer(pc sarama.PartitionConsumer) sarama.PartitionConsumer {
	return pc
}
func (hookTracer) WrapSyncProducer(_ *sarama.Config, p sarama.SyncProducer) sarama.SyncProducer {
	return p
}
func (t hookTracer) WrapConsumerGroupHandler(h sarama.ConsumerGroupHandler) sarama.ConsumerGroupHandler {
	return hookedHandler{ConsumerGroupHandler: h, hooks: t.hooks, claims: t.claims, bundles: t.bundles}
}

type hookedHandler struct {
	sarama.ConsumerGroupHandler
	hooks   GroupHooks
	claims  *claimSessions
	bundles *bundler
}

func (h hookedHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	h.claims.set(c.Topic(), c.Partition(), s.Context())
	bc, stop := h.bundles.wrap(c)
	defer stop()
	return h.ConsumerGroupHandler.ConsumeClaim(s, bc)
}

func assignmentOf(s sarama.ConsumerGroupSession) Assignment {
	claims := map[string][]int32{}
	for t, ps := range s.Claims() {
		claims[t] = append([]int32(nil), ps...)
	}
	return Assignment{MemberID: s.MemberID(), Generation: s.GenerationID(), Claims: claims}
}

func (h hookedHandler) Setup(s sarama.ConsumerGroupSession) error {
	if err := h.ConsumerGroupHandler.Setup(s); err != nil {
		return err
	}
	if h.hooks.Assigned != nil {
		h.hooks.Assigned(assignmentOf(s))
	}
	return nil
}

func (h hookedHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	if h.hooks.Revoked != nil {
		h.hooks.Revoked(assignmentOf(s))
	}
	return h.ConsumerGroupHandler.Cleanup(s)
}
