package kafka

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// NewPublisher returns a synchronous watermill-kafka Publisher that keys
// every record by its "domain" metadata (DomainKey), so one domain's
// records stay on one partition, in order. It connects on first Publish,
// retrying for up to o.ConnectTimeout, so it can be built before the broker
// is up.
func NewPublisher(o Options, logger watermill.LoggerAdapter) (message.Publisher, error) {
	o, logger, sc, err := o.prepare(logger)
	if err != nil {
		return nil, err
	}
	sc.Producer.Return.Successes = true
	sc.Producer.Retry.Max = 10
	// Default hash partitioner: FNV-1a of the key modulo partitions, the
	// same for every hots instance (not the Java client's murmur2, so a
	// non-Go producer may put a domain on another partition; consumers
	// must not rely on partition numbers across client kinds).
	return &publisher{
		cfg: wmkafka.PublisherConfig{
			Brokers:               o.Brokers,
			Marshaler:             marshaler{},
			OverwriteSaramaConfig: sc,
		},
		timeout: o.ConnectTimeout,
		logger:  logger,
		closing: make(chan struct{}),
	}, nil
}

type publisher struct {
	cfg     wmkafka.PublisherConfig
	timeout time.Duration
	logger  watermill.LoggerAdapter

	// closing ends a connect retry early; mu is held for the whole retry.
	closing   chan struct{}
	closeOnce sync.Once

	mu     sync.Mutex
	inner  *wmkafka.Publisher
	closed bool
}

func (p *publisher) connect() (*wmkafka.Publisher, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("publisher closed")
	}
	if p.inner != nil {
		return p.inner, nil
	}
	var b backoff
	deadline := time.Now().Add(p.timeout)
	for attempt := 1; ; attempt++ {
		inner, err := wmkafka.NewPublisher(p.cfg, p.logger)
		if err == nil {
			p.inner = inner
			return inner, nil
		}
		wait := b.next()
		if time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("kafka publisher: no broker reachable at %v after %d attempts: %w", p.cfg.Brokers, attempt, err)
		}
		p.logger.Info("Kafka not reachable yet, retrying publisher connect", watermill.LogFields{
			"attempt": attempt, "retry_in": wait.String(), "err": err.Error(),
		})
		select {
		case <-time.After(wait):
		case <-p.closing:
			return nil, errors.New("publisher closed while connecting")
		}
	}
}

func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	inner, err := p.connect()
	if err != nil {
		return err
	}
	return inner.Publish(topic, msgs...)
}

func (p *publisher) Close() error {
	p.closeOnce.Do(func() { close(p.closing) })
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.inner == nil {
		return nil
	}
	return p.inner.Close()
}
