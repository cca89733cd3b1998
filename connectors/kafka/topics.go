package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// EnsureTopics creates the usage, moves and poison topics and the compacted
// nodes topic (host -> capacities; only the latest value per host matters).
// Topics that exist are left as they are, so it is safe to call on every
// start. It retries an unreachable broker until ctx ends.
func EnsureTopics(ctx context.Context, o Options) error {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return err
	}
	sc, err := o.saramaConfig()
	if err != nil {
		return err
	}
	admin, err := connectAdmin(ctx, o.Brokers, sc)
	if err != nil {
		return err
	}
	defer admin.Close()

	compact := "compact"
	type want struct {
		name   string
		config map[string]*string
	}
	var topics []want
	for _, t := range o.UsageTopics {
		topics = append(topics, want{name: t})
	}
	topics = append(topics,
		want{name: o.MovesTopic},
		want{name: o.PoisonTopic},
		want{name: o.NodesTopic, config: map[string]*string{"cleanup.policy": &compact}},
	)
	var errs []error
	for _, t := range topics {
		if strings.TrimSpace(t.name) == "" {
			errs = append(errs, errors.New("kafka: empty topic name"))
			continue
		}
		err := admin.CreateTopic(t.name, &sarama.TopicDetail{
			NumPartitions:     int32(o.Partitions),
			ReplicationFactor: o.Replication,
			ConfigEntries:     t.config,
		}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("kafka: create topic %s: %w", t.name, err))
		}
	}
	return errors.Join(errs...)
}

func connectAdmin(ctx context.Context, brokers []string, sc *sarama.Config) (sarama.ClusterAdmin, error) {
	var b backoff
	for {
		admin, err := sarama.NewClusterAdmin(brokers, sc)
		if err == nil {
			return admin, nil
		}
		t := time.NewTimer(b.next())
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("kafka: no broker reachable at %v: %w", brokers, errors.Join(ctx.Err(), err))
		case <-t.C:
		}
	}
}
