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
// after every record in flight was acked (watermill delivers one record per
// partition at a time and waits for its ack). Both run on sarama's session
// goroutine: while they run, the group consumes nothing, but heartbeats go
// on, so a long Assigned (restoring state) does not cost the membership.
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

	inner, err := wmkafka.NewSubscriber(wmkafka.SubscriberConfig{
		Brokers:               o.Brokers,
		Unmarshaler:           marshaler{},
		OverwriteSaramaConfig: sc,
		ConsumerGroup:         o.Group,
		NackResendSleep:       100 * time.Millisecond,
		ReconnectRetrySleep:   time.Second,
		Tracer:                hookTracer{hooks},
	}, logger)
	if err != nil {
		return nil, err
	}
	return &subscriber{inner: inner, logger: logger, closing: make(chan struct{})}, nil
}

type subscriber struct {
	inner   *wmkafka.Subscriber
	logger  watermill.LoggerAdapter
	closing chan struct{}
	once    sync.Once
}

func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	var b backoff
	for attempt := 1; ; attempt++ {
		ch, err := s.inner.Subscribe(ctx, topic)
		if err == nil {
			return ch, nil
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

func (s *subscriber) Close() error {
	s.once.Do(func() { close(s.closing) })
	return s.inner.Close()
}

// hookTracer is watermill-kafka's only way in to the consumer-group
// handler: a SaramaTracer that wraps nothing but that handler.
type hookTracer struct{ hooks GroupHooks }

func (hookTracer) WrapConsumer(c sarama.Consumer) sarama.Consumer { return c }
func (hookTracer) WrapPartitionConsumer(pc sarama.PartitionConsumer) sarama.PartitionConsumer {
	return pc
}
func (hookTracer) WrapSyncProducer(_ *sarama.Config, p sarama.SyncProducer) sarama.SyncProducer {
	return p
}
func (t hookTracer) WrapConsumerGroupHandler(h sarama.ConsumerGroupHandler) sarama.ConsumerGroupHandler {
	if t.hooks.Assigned == nil && t.hooks.Revoked == nil {
		return h
	}
	return hookedHandler{ConsumerGroupHandler: h, hooks: t.hooks}
}

type hookedHandler struct {
	sarama.ConsumerGroupHandler
	hooks GroupHooks
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
