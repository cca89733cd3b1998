package kafka

import (
	"os"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"hots/connectors/kafka/devbroker"
)

// kafkaMessageMaxBytes is Apache Kafka's broker default message.max.bytes.
// kfake accepts records of any size unless told (stack.md section 9), so
// the suite's broker is given the limit a real broker enforces.
const kafkaMessageMaxBytes = "1048588"

// startSuiteBroker runs the one kfake broker a suite run shares: hots'
// default partition count for auto-created topics and Kafka's default
// record size limit.
func startSuiteBroker(t *testing.T) Options {
	t.Helper()
	b, err := devbroker.Start(devbroker.Options{
		Partitions:    DefaultPartitions,
		BrokerConfigs: map[string]string{"message.max.bytes": kafkaMessageMaxBytes},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return Options{Brokers: b.Addrs(), Partitions: DefaultPartitions}
}

// suiteLogger is silent unless HOTS_PUBSUB_DEBUG=1.
func suiteLogger() watermill.LoggerAdapter {
	if os.Getenv("HOTS_PUBSUB_DEBUG") == "1" {
		return watermill.NewStdLogger(true, false)
	}
	return nil
}

// newSuitePubSub builds the pair exactly as a hots process does, with
// NewPublisher and NewSubscriber and hots' own Options; only the brokers
// and the consumer group come from the test.
func newSuitePubSub(t *testing.T, o Options, group string) (message.Publisher, message.Subscriber) {
	t.Helper()
	o.Group = group
	pub, err := NewPublisher(o, suiteLogger())
	if err != nil {
		t.Fatal(err)
	}
	sub, err := NewSubscriber(o, suiteLogger())
	if err != nil {
		t.Fatal(err)
	}
	return pub, sub
}

// groupOf gives every suite test its own consumer group, shared by all the
// subscribers that test creates (TestContinueAfterSubscribeClose needs a
// later subscriber to resume where an earlier one stopped). The suite names
// each test run "<suite>/<test>/<uuid>", so the group is unique per run and
// tests running in parallel do not rebalance each other.
func groupOf(t *testing.T) string {
	return "hots-suite." + strings.ReplaceAll(t.Name(), "/", ".")
}

// suiteFeatures declares what hots' pair guarantees, no more.
func suiteFeatures() tests.Features {
	return tests.Features{
		// Every subscriber is in a consumer group (Options.Group); each
		// group gets every message once it has joined.
		ConsumerGroups: true,
		// At-least-once: an Ack racing Close can be dropped and a crash
		// redelivers up to the 1 s auto-commit interval (subscriber.go).
		ExactlyOnceDelivery: false,
		// Order holds per record key: the publisher keys by the "domain"
		// metadata, one domain is one partition, and a partition has one
		// message in flight. The suite's messages carry no domain, so all
		// of them share the key "default", one partition, one order; that
		// is the guarantee hots gives its own messages of one domain.
		// Messages of different domains are not ordered with each other.
		GuaranteedOrder: true,
		// Order holds with several subscribers in one group: one partition
		// has one owner at a time, and a new owner resumes from the last
		// committed offset (a redelivery, which the suite deduplicates).
		GuaranteedOrderWithSingleSubscriber: false,
		// Records live on the broker; a subscriber closed and a new one in
		// the same group resumes from the group's committed offsets.
		Persistent: true,
		// Not for hots: its subscriber always consumes in a group, so a new
		// subscriber of an existing group gets what that group has not
		// acked, not the topic's whole history again (that is what this
		// flag asks for, a group-less Kafka consumer).
		NewSubscriberReceivesOldMessages: false,
		// Kafka carries no Go context from publisher to subscriber.
		ContextPreserved: false,
	}
}

// TestPubSub runs Watermill's universal Pub/Sub suite against hots'
// Kafka publisher and subscriber on an embedded broker.
func TestPubSub(t *testing.T) {
	o := startSuiteBroker(t)
	tests.TestPubSub(t, suiteFeatures(),
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			return newSuitePubSub(t, o, groupOf(t))
		},
		func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			return newSuitePubSub(t, o, group)
		},
	)
}
