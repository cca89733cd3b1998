// Package kafka holds the Kafka side of hots live mode: watermill-kafka
// Subscriber and Publisher configured the way they work here (see
// README.md), topic creation, and the metadata keys that name where a
// received message came from. The goka state tables live in ./state and
// the development broker in ./devbroker.
package kafka

import (
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
)

// Defaults for Options fields left empty.
const (
	DefaultMovesTopic    = "hots.moves"
	DefaultPoisonTopic   = "hots.poison"
	DefaultNodesTopic    = "hots.nodes"
	DefaultUsageTopic    = "hots.usage"
	DefaultGroup         = "hots"
	DefaultPartitions    = 6
	DefaultSaramaVersion = "3.6.0"
	DefaultClientID      = "hots"
	// DefaultConnectTimeout bounds how long a Publish waits for a broker
	// that is not up yet before it reports an error.
	DefaultConnectTimeout = 30 * time.Second
	// DefaultSessionTimeout is the consumer groups' session timeout (the
	// usage group and the goka state groups): how long a member that
	// stopped heartbeating (kill -9, a partition) keeps its partitions
	// before the group gives them to the others. Kafka's (and kfake's)
	// group.min.session.timeout.ms is 6 s, the least a broker accepts by
	// default; sarama's own default is 10 s.
	DefaultSessionTimeout = 6 * time.Second
	// DefaultHeartbeatInterval is how often members heartbeat, which is
	// also how soon a live member learns that a rebalance began.
	DefaultHeartbeatInterval = 500 * time.Millisecond
	// MinSessionTimeout and MaxSessionTimeout are the range a Kafka broker
	// accepts by default (group.min.session.timeout.ms and
	// group.max.session.timeout.ms); outside it a join fails with
	// INVALID_SESSION_TIMEOUT.
	MinSessionTimeout = 6 * time.Second
	MaxSessionTimeout = 30 * time.Minute
)

// Options configures the Kafka connectors. Zero values take the defaults
// above (see WithDefaults).
type Options struct {
	Brokers     []string
	Group       string   // consumer group of the usage subscriber
	UsageTopics []string // usage samples in
	MovesTopic  string   // moves out
	PoisonTopic string   // undecodable or invalid input, with the reason
	NodesTopic  string   // compacted: host -> capacities
	Partitions  int      // for topics EnsureTopics creates
	// Replication for topics EnsureTopics creates; 0 = 1, which is what a
	// one-broker dev cluster accepts (kfake rejects RF > brokers).
	Replication int16
	// SaramaVersion is the Kafka protocol version sarama speaks, e.g.
	// "3.6.0"; kfake accepts 1.0.0 through 4.0.0.
	SaramaVersion string
	ClientID      string
	// ConnectTimeout bounds the wait for an unreachable broker in Publish;
	// 0 = DefaultConnectTimeout. Subscribe and EnsureTopics wait as long as
	// their ctx allows instead.
	ConnectTimeout time.Duration
	// MaxMessageBytes is the producer's record size limit; 0 = Kafka's
	// default (sarama's Producer.MaxMessageBytes, 1,048,576).
	MaxMessageBytes int
	// BundleRecords: a subscriber hands over up to this many records of a
	// partition that are already waiting as one codecs.KindRecords message
	// (see bundle.go); 0 or 1 = one message per record, as watermill-kafka.
	BundleRecords int
	// SessionTimeout and HeartbeatInterval of the usage consumer group
	// (sarama Consumer.Group.Session.Timeout and Heartbeat.Interval); 0 =
	// DefaultSessionTimeout, DefaultHeartbeatInterval.
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration
}

// WithDefaults returns o with every empty field set to its default.
func (o Options) WithDefaults() Options {
	if o.Group == "" {
		o.Group = DefaultGroup
	}
	if len(o.UsageTopics) == 0 {
		o.UsageTopics = []string{DefaultUsageTopic}
	}
	if o.MovesTopic == "" {
		o.MovesTopic = DefaultMovesTopic
	}
	if o.PoisonTopic == "" {
		o.PoisonTopic = DefaultPoisonTopic
	}
	if o.NodesTopic == "" {
		o.NodesTopic = DefaultNodesTopic
	}
	if o.Partitions <= 0 {
		o.Partitions = DefaultPartitions
	}
	if o.Replication <= 0 {
		o.Replication = 1
	}
	if o.SaramaVersion == "" {
		o.SaramaVersion = DefaultSaramaVersion
	}
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	return o
}

// Validate reports what is missing, naming the option.
func (o Options) Validate() error {
	var errs []error
	if len(o.Brokers) == 0 {
		errs = append(errs, errors.New("kafka.brokers: at least one broker address is needed"))
	}
	if _, err := sarama.ParseKafkaVersion(o.SaramaVersion); err != nil {
		errs = append(errs, fmt.Errorf("kafka sarama version %q: %w", o.SaramaVersion, err))
	}
	return errors.Join(errs...)
}

// saramaConfig is the part every client shares. Metadata retries are fast
// because watermill's 2 s backoff makes a first connect and every topic
// refresh slow, and our callers retry the connect themselves.
func (o Options) saramaConfig() (*sarama.Config, error) {
	v, err := sarama.ParseKafkaVersion(o.SaramaVersion)
	if err != nil {
		return nil, fmt.Errorf("kafka sarama version %q: %w", o.SaramaVersion, err)
	}
	c := sarama.NewConfig()
	c.Version = v
	c.ClientID = o.ClientID
	c.Metadata.Retry.Backoff = 100 * time.Millisecond
	c.Metadata.Retry.Max = 3
	if o.MaxMessageBytes > 0 {
		c.Producer.MaxMessageBytes = o.MaxMessageBytes
	}
	if o.SessionTimeout > 0 {
		c.Consumer.Group.Session.Timeout = o.SessionTimeout
	}
	if o.HeartbeatInterval > 0 {
		c.Consumer.Group.Heartbeat.Interval = o.HeartbeatInterval
	}
	return c, nil
}

// backoff grows a retry delay from 100 ms to 5 s.
type backoff struct{ d time.Duration }

func (b *backoff) next() time.Duration {
	switch {
	case b.d == 0:
		b.d = 100 * time.Millisecond
	case b.d < 5*time.Second:
		b.d = min(2*b.d, 5*time.Second)
	}
	return b.d
}

// prepare is what every client constructor starts with: defaults,
// validation, a logger that is never nil, and the sarama configuration.
func (o Options) prepare(logger watermill.LoggerAdapter) (Options, watermill.LoggerAdapter, *sarama.Config, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return o, nil, nil, err
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	sc, err := o.saramaConfig()
	return o, logger, sc, err
}
