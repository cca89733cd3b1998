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
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	sc, err := o.saramaConfig()
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
