package kafka

import (
	"context"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	wmsubscriber "github.com/ThreeDotsLabs/watermill/message/subscriber"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"hots/connectors/kafka/devbroker"
)

// Watermill's universal Pub/Sub suite (pubsub/tests, watermill v1.5.1)
// against hots' Kafka pair, built with NewPublisher and NewSubscriber and
// hots' own Options, on an in-process kfake broker.
//
//	go test ./connectors/kafka/ -run PubSub -v     # about 47 s on 2 cores; -short about 21 s
//	HOTS_PUBSUB_FULL=1 go test ./connectors/kafka/ -run PubSubStress -v -timeout 30m
//	HOTS_PUBSUB_DEBUG=1 ...                        # watermill's debug log
//
// The suite's own counts apply (5000 messages to 50 subscribers, 10000 with
// 20 publishers, ...); -short selects its smaller counts.

// kafkaMessageMaxBytes is Apache Kafka's broker default message.max.bytes.
// kfake accepts records of any size unless told (stack.md section 9), so
// the suite's broker is given the limit a real broker enforces.
const kafkaMessageMaxBytes = "1048588"

// suiteBroker is the kfake broker one suite run shares: hots' default
// partition count for auto-created topics and Kafka's default record size
// limit. It keeps its data in a directory, so that it can be restarted on
// the same port like a broker process (TestPubSubReconnect).
type suiteBroker struct {
	t    *testing.T
	opts devbroker.Options

	mu       sync.Mutex
	b        *devbroker.Broker
	restarts int
}

func startSuiteBroker(t *testing.T) *suiteBroker {
	t.Helper()
	s := &suiteBroker{t: t, opts: devbroker.Options{
		Partitions:    DefaultPartitions,
		DataDir:       t.TempDir(),
		BrokerConfigs: map[string]string{"message.max.bytes": kafkaMessageMaxBytes},
	}}
	b, err := devbroker.Start(s.opts)
	if err != nil {
		t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(b.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	s.opts.Ports = []int{p} // a restart comes back where the clients look
	s.b = b
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.b.Close()
	})
	return s
}

func (s *suiteBroker) options() Options {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Options{Brokers: s.b.Addrs(), Partitions: DefaultPartitions}
}

// restart stops the broker, cutting every client connection, and starts it
// again on the same port and data directory (records, topics and committed
// group offsets survive).
func (s *suiteBroker) restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Close()
	var err error
	for range 50 { // the port may not be free again at once
		if s.b, err = devbroker.Start(s.opts); err == nil {
			s.restarts++
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Errorf("broker restart on port %v: %v", s.opts.Ports, err)
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
func newSuitePubSub(t testing.TB, o Options, group string) (message.Publisher, message.Subscriber) {
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
		// group gets every message.
		ConsumerGroups: true,
		// At-least-once: an Ack racing Close can be dropped and a crash
		// redelivers up to the 1 s auto-commit interval (subscriber.go).
		ExactlyOnceDelivery: false,
		// Order holds per record key: the publisher keys by the "domain"
		// metadata, one domain is one partition, and a partition has one
		// message in flight. The suite's messages carry no domain, so all
		// of them share the key "default", one partition, one order; that
		// is the guarantee hots gives the messages of one domain. Messages
		// of different domains are not ordered with each other
		// (TestPubSubDomainPerMessage declares that).
		GuaranteedOrder: true,
		// The order holds with several subscribers in one group too: a
		// partition has one owner at a time, and a new owner resumes at the
		// last committed offset (a redelivery, which the suite dedupes).
		GuaranteedOrderWithSingleSubscriber: false,
		// Records live on the broker; a new subscriber in the same group
		// resumes from the group's committed offsets.
		Persistent: true,
		// False for hots: its subscriber always consumes in a group, so a
		// new subscriber of an existing group gets what that group has not
		// acked, not the topic's whole history (what this flag asks for is
		// a group-less Kafka consumer).
		NewSubscriberReceivesOldMessages: false,
		// Kafka carries no Go context from publisher to subscriber.
		ContextPreserved: false,
		// Empty, so the suite skips its TestReconnect: that test compares
		// the received IDs with a slice that its publisher goroutines fill
		// through an unsynchronised collector goroutine, before waiting for
		// them. Wired to a real restart of this broker (kill -USR1 to this
		// process, handler closes kfake and starts it on the same port and
		// data dir), it failed 4 of 10 runs with "missing: [], extra [...]"
		// (every message was received; the slice lagged), and -race reports
		// the data race at test_pubsub.go:1120. TestPubSubReconnect is the
		// same test with the race removed.
		RestartServiceCommand: nil,
	}
}

func pubSubConstructors(b *suiteBroker, wrap func(message.Publisher) message.Publisher) (tests.PubSubConstructor, tests.ConsumerGroupPubSubConstructor) {
	o := b.options()
	build := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		pub, sub := newSuitePubSub(t, o, group)
		if wrap != nil {
			pub = wrap(pub)
		}
		return pub, sub
	}
	return func(t *testing.T) (message.Publisher, message.Subscriber) { return build(t, groupOf(t)) }, build
}

// TestPubSub runs Watermill's universal Pub/Sub suite against hots'
// Kafka publisher and subscriber, as they are configured for a user.
func TestPubSub(t *testing.T) {
	t.Parallel()
	b := startSuiteBroker(t)
	pubSub, groupPubSub := pubSubConstructors(b, nil)
	tests.TestPubSub(t, suiteFeatures(), pubSub, groupPubSub)
}

// TestPubSubDomainPerMessage runs the suite again with every message in a
// domain of its own, so that the records spread over all partitions, as
// hots' traffic from many domains does: consumer groups with several
// partitions, rebalances between many subscribers, partitions resumed by
// another member. Order across domains is not guaranteed, so the ordered
// tests (TestPublishSubscribeInOrder, TestNoAck) skip here.
func TestPubSubDomainPerMessage(t *testing.T) {
	t.Parallel()
	b := startSuiteBroker(t)
	features := suiteFeatures()
	features.GuaranteedOrder = false
	pubSub, groupPubSub := pubSubConstructors(b, func(p message.Publisher) message.Publisher {
		return domainPerMessage{p}
	})
	tests.TestPubSub(t, features, pubSub, groupPubSub)
}

// domainPerMessage gives every message without a domain its UUID as the
// domain, so the publisher keys it by that.
type domainPerMessage struct{ message.Publisher }

func (p domainPerMessage) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		if m.Metadata.Get(MetadataDomain) == "" {
			m.Metadata.Set(MetadataDomain, m.UUID)
		}
	}
	return p.Publisher.Publish(topic, msgs...)
}

// TestPubSubStressTest is the suite's stress test: TestPubSub 10 times in
// parallel on one broker (STRESS_TEST_COUNT overrides 10). It takes
// minutes on two cores, so it runs only with HOTS_PUBSUB_FULL=1.
func TestPubSubStressTest(t *testing.T) {
	if os.Getenv("HOTS_PUBSUB_FULL") != "1" {
		t.Skip("set HOTS_PUBSUB_FULL=1 to run the suite's stress test")
	}
	b := startSuiteBroker(t)
	pubSub, groupPubSub := pubSubConstructors(b, nil)
	tests.TestPubSubStressTest(t, suiteFeatures(), pubSub, groupPubSub)
}

// TestPubSubReconnect is the suite's TestReconnect, with the race in its
// bookkeeping removed: 100 publishers send 10000 messages while one
// subscriber reads them, and the broker restarts after 1/3 and after 1/2 of
// the messages were handed out. Every message whose Publish returned nil
// must arrive (duplicates are allowed: at-least-once), and nothing else.
func TestPubSubReconnect(t *testing.T) {
	t.Parallel()
	const total, publishers = 10000, 100
	b := startSuiteBroker(t)
	pub, sub := newSuitePubSub(t, b.options(), "hots-suite.reconnect")
	defer func() {
		if err := pub.Close(); err != nil {
			t.Error(err)
		}
		if err := sub.Close(); err != nil {
			t.Error(err)
		}
	}()
	topic := "reconnect-" + watermill.NewShortUUID()
	msgs, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(time.Minute)
	var (
		mu        sync.Mutex
		published message.Messages
		next      = make(chan int)
		pubs      sync.WaitGroup
		restarts  sync.WaitGroup
	)
	go func() {
		for i := range total {
			next <- i
			if i == total/3 || i == total/2 {
				restarts.Go(b.restart)
			}
		}
		close(next)
	}()
	for range publishers {
		pubs.Go(func() {
			for range next {
				m := message.NewMessage(watermill.NewUUID(), []byte("x"))
				if rand.N(10) == 0 { // as the suite: spread the sends over the restarts
					time.Sleep(500 * time.Millisecond)
				}
				for {
					err := pub.Publish(topic, m)
					if err == nil {
						break
					}
					if time.Now().After(deadline) {
						t.Errorf("publish %s still failing after a minute: %v", m.UUID, err)
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
				mu.Lock()
				published = append(published, m)
				mu.Unlock()
			}
		})
	}
	received, all := wmsubscriber.BulkReadWithDeduplication(msgs, total, time.Until(deadline))
	pubs.Wait()
	restarts.Wait()
	if !all {
		t.Errorf("received %d of %d messages", len(received), total)
	}
	if b.restarts != 2 {
		t.Errorf("broker restarted %d times, want 2", b.restarts)
	}
	tests.AssertAllMessagesReceived(t, published, received)
}
