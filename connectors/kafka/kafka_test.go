package kafka

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"hots/connectors/kafka/devbroker"
)

// startBroker runs a one-broker kfake cluster for the test and returns
// Options pointing at it.
func startBroker(t testing.TB, partitions int) Options {
	t.Helper()
	b, err := devbroker.Start(devbroker.Options{Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return Options{Brokers: b.Addrs(), Partitions: partitions, UsageTopics: []string{"usage"}}.WithDefaults()
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newMsg(domain string, seq int) *message.Message {
	m := message.NewMessage(watermill.NewUUID(), []byte(strconv.Itoa(seq)))
	m.Metadata.Set(MetadataDomain, domain)
	return m
}

// receive takes n messages from ch, acking each, and fails on ctx end.
func receive(ctx context.Context, t testing.TB, ch <-chan *message.Message, n int) []*message.Message {
	t.Helper()
	out := make([]*message.Message, 0, n)
	for len(out) < n {
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatalf("channel closed after %d of %d messages", len(out), n)
			}
			m.Ack()
			out = append(out, m)
		case <-ctx.Done():
			t.Fatalf("got %d of %d messages: %v", len(out), n, ctx.Err())
		}
	}
	return out
}

func TestPublishSubscribeKeepsEachDomainOrderedOnOnePartition(t *testing.T) {
	ctx := testContext(t)
	o := startBroker(t, 4)
	if err := EnsureTopics(ctx, o); err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	domains := []string{"eu-1", "eu-2", "us-1", "us-2", "ap-1", ""}
	const perDomain = 50
	for seq := 0; seq < perDomain; seq++ {
		for _, d := range domains {
			if err := pub.Publish("usage", newMsg(d, seq)); err != nil {
				t.Fatal(err)
			}
		}
	}

	sub, err := NewSubscriber(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ch, err := sub.Subscribe(ctx, "usage")
	if err != nil {
		t.Fatal(err)
	}
	got := receive(ctx, t, ch, perDomain*len(domains))

	next := map[string]int{}
	partitionOf := map[string]int32{}
	partitionsUsed := map[int32]bool{}
	for _, m := range got {
		d := DomainKey(m)
		if Key(m) != d {
			t.Errorf("record key %q, want the domain %q", Key(m), d)
		}
		seq, _ := strconv.Atoi(string(m.Payload))
		if seq != next[d] {
			t.Fatalf("domain %s: got seq %d, want %d (order lost)", d, seq, next[d])
		}
		next[d]++
		topic, p, off := Provenance(m)
		if topic != "usage" || off < 0 {
			t.Errorf("provenance = %s/%d/%d", topic, p, off)
		}
		if first, ok := partitionOf[d]; ok && first != p {
			t.Errorf("domain %s on partitions %d and %d", d, first, p)
		}
		partitionOf[d] = p
		partitionsUsed[p] = true
	}
	if _, ok := next["default"]; !ok {
		t.Errorf("a message without domain metadata was not keyed %q: %v", "default", next)
	}
	if len(partitionsUsed) < 2 {
		t.Errorf("all domains on one partition %v: the key does not spread load", partitionsUsed)
	}
}

// committed sums the group's committed offsets on topic.
func committed(t testing.TB, o Options, group, topic string) int64 {
	t.Helper()
	sc, _ := o.saramaConfig()
	admin, err := sarama.NewClusterAdmin(o.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	parts := make([]int32, o.Partitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	res, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		return 0
	}
	var sum int64
	for _, b := range res.Blocks[topic] {
		if b.Offset > 0 {
			sum += b.Offset
		}
	}
	return sum
}

// A second subscriber in the same group resumes where the first one's acks
// ended: nothing acked comes again, nothing is lost.
func TestRestartedSubscriberGetsExactlyTheRest(t *testing.T) {
	ctx := testContext(t)
	o := startBroker(t, 3)
	o.Group = "restart"
	if err := EnsureTopics(ctx, o); err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	const total, half = 300, 150
	for i := 0; i < total; i++ {
		if err := pub.Publish("usage", newMsg(fmt.Sprintf("d%d", i%7), i)); err != nil {
			t.Fatal(err)
		}
	}

	seen := map[string]int{}
	run := func(n int, beforeClose func()) {
		sub, err := NewSubscriber(o, nil)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := sub.Subscribe(ctx, "usage")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range receive(ctx, t, ch, n) {
			seen[string(m.Payload)]++
		}
		beforeClose()
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// An Ack racing Close can be dropped (stack.md): close only once the
	// broker holds every ack of run 1 as a committed offset.
	run(half, func() {
		for committed(t, o, o.Group, "usage") < half {
			select {
			case <-ctx.Done():
				t.Fatalf("acks of run 1 never committed: %d of %d", committed(t, o, o.Group, "usage"), half)
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	run(total-half, func() {})

	if len(seen) != total {
		t.Fatalf("%d distinct messages seen, want %d", len(seen), total)
	}
	for payload, n := range seen {
		if n != 1 {
			t.Errorf("message %s delivered %d times", payload, n)
		}
	}
}

// A service may start before its broker: Subscribe waits and connects.
func TestSubscribeWaitsForALateBroker(t *testing.T) {
	ctx := testContext(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	o := Options{Brokers: []string{fmt.Sprintf("127.0.0.1:%d", port)}, Partitions: 2, UsageTopics: []string{"usage"}}

	retrying := &signalLogger{LoggerAdapter: watermill.NopLogger{}, seen: make(chan struct{})}
	sub, err := NewSubscriber(o, retrying)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	pub, err := NewPublisher(o, nil)
	if err != nil {
		t.Fatalf("NewPublisher must not need a broker yet: %v", err)
	}
	defer pub.Close()
	type result struct {
		ch  <-chan *message.Message
		err error
	}
	subscribed := make(chan result, 1)
	go func() {
		ch, err := sub.Subscribe(ctx, "usage")
		subscribed <- result{ch, err}
	}()

	select { // the broker must really be late: one attempt has failed
	case <-retrying.seen:
	case <-ctx.Done():
		t.Fatal("Subscribe never retried")
	}
	b, err := devbroker.Start(devbroker.Options{Ports: []int{port}, Partitions: 2, Topics: []string{"usage"}})
	if err != nil {
		t.Skipf("port %d taken meanwhile: %v", port, err)
	}
	defer b.Close()
	r := <-subscribed
	if r.err != nil {
		t.Fatal(r.err)
	}
	if err := pub.Publish("usage", newMsg("late", 42)); err != nil {
		t.Fatal(err)
	}
	m := receive(ctx, t, r.ch, 1)[0]
	if string(m.Payload) != "42" || DomainKey(m) != "late" {
		t.Fatalf("got %q domain %q", m.Payload, DomainKey(m))
	}
}

// signalLogger closes seen on the first Info log (the retry notice).
type signalLogger struct {
	watermill.LoggerAdapter
	once sync.Once
	seen chan struct{}
}

func (l *signalLogger) Info(msg string, fields watermill.LogFields) {
	if strings.Contains(msg, "retrying") {
		l.once.Do(func() { close(l.seen) })
	}
}

func (l *signalLogger) With(watermill.LogFields) watermill.LoggerAdapter { return l }

func TestEnsureTopicsIsIdempotentAndCompactsNodes(t *testing.T) {
	ctx := testContext(t)
	o := startBroker(t, 3)
	o.UsageTopics = []string{"usage-a", "usage-b"}
	for i := 0; i < 2; i++ {
		if err := EnsureTopics(ctx, o); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	sc, _ := o.saramaConfig()
	admin, err := sarama.NewClusterAdmin(o.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	meta, err := admin.DescribeTopics([]string{"usage-a", "usage-b", DefaultMovesTopic, DefaultPoisonTopic, DefaultNodesTopic})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range meta {
		if m.Err != sarama.ErrNoError || len(m.Partitions) != 3 {
			t.Errorf("topic %s: err %v, %d partitions, want 3", m.Name, m.Err, len(m.Partitions))
		}
	}
	tests := []struct{ topic, want string }{
		{DefaultNodesTopic, "compact"},
		{DefaultMovesTopic, "delete"},
	}
	for _, tc := range tests {
		entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: tc.topic, ConfigNames: []string{"cleanup.policy"}})
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, e := range entries {
			if e.Name == "cleanup.policy" {
				got = e.Value
			}
		}
		if got != tc.want {
			t.Errorf("%s cleanup.policy = %q, want %q", tc.topic, got, tc.want)
		}
	}
}

func TestProvenanceOfANonKafkaMessage(t *testing.T) {
	topic, p, off := Provenance(message.NewMessage("x", nil))
	if topic != "" || p != -1 || off != -1 {
		t.Fatalf("got %q/%d/%d, want \"\"/-1/-1", topic, p, off)
	}
}

func TestOptionsDefaultsAndValidation(t *testing.T) {
	got := Options{Brokers: []string{"b:9092"}}.WithDefaults()
	want := Options{Brokers: []string{"b:9092"}, Group: "hots", UsageTopics: []string{"hots.usage"},
		MovesTopic: "hots.moves", PoisonTopic: "hots.poison", NodesTopic: "hots.nodes", Partitions: 6,
		Replication: 1, SaramaVersion: "3.6.0", ClientID: "hots", ConnectTimeout: DefaultConnectTimeout,
		SessionTimeout: DefaultSessionTimeout, HeartbeatInterval: DefaultHeartbeatInterval}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// The usage group's sarama config carries the session settings.
	sc, err := Options{Brokers: []string{"b:9092"}, SessionTimeout: 7 * time.Second, HeartbeatInterval: time.Second}.WithDefaults().saramaConfig()
	if err != nil {
		t.Fatal(err)
	}
	if sc.Consumer.Group.Session.Timeout != 7*time.Second || sc.Consumer.Group.Heartbeat.Interval != time.Second {
		t.Errorf("sarama group session %s heartbeat %s, want 7s 1s", sc.Consumer.Group.Session.Timeout, sc.Consumer.Group.Heartbeat.Interval)
	}
	tests := []struct {
		name string
		o    Options
		ok   bool
	}{
		{"defaults with a broker", Options{Brokers: []string{"b:9092"}}.WithDefaults(), true},
		{"no broker", Options{}.WithDefaults(), false},
		{"bad version", Options{Brokers: []string{"b:9092"}, SaramaVersion: "x"}.WithDefaults(), false},
	}
	for _, tc := range tests {
		if err := tc.o.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
}

func TestPublishWithoutBrokerGivesUpAfterConnectTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	pub, err := NewPublisher(Options{Brokers: []string{addr}, ConnectTimeout: 300 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	err = pub.Publish("usage", newMsg("d", 1))
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Publish with no broker: err = %v, want one naming %s", err, addr)
	}
}

// Each Subscribe is its own member of the group, and a rebalance waits for
// every member. A subscription nobody reads must not hold up the others:
// here topic b's record waits unread while a member for topic a joins.
// Before the hand-off gave such records back, a got nothing for over 90 s.
func TestUnreadSubscriptionDoesNotStallTheGroup(t *testing.T) {
	ctx := testContext(t)
	o := startBroker(t, 2)
	o.Group = "unread"
	pub, err := NewPublisher(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for _, topic := range []string{"a", "b"} {
		if err := pub.Publish(topic, newMsg("d", 1)); err != nil {
			t.Fatal(err)
		}
	}
	bAssigned := make(chan struct{})
	var once sync.Once
	sub, err := NewSubscriberWithHooks(o, nil, GroupHooks{Assigned: func(a Assignment) {
		if len(a.Claims["b"]) > 0 {
			once.Do(func() { close(bAssigned) })
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	chB, err := sub.Subscribe(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-bAssigned:
	case <-ctx.Done():
		t.Fatal("b never assigned")
	}
	time.Sleep(300 * time.Millisecond) // b's record is fetched and waits, unread

	start := time.Now()
	chA, err := sub.Subscribe(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-chA:
		m.Ack()
		t.Logf("a's record after %v", time.Since(start))
	case <-time.After(20 * time.Second):
		t.Fatalf("a got nothing in 20 s: the unread subscription b holds the rebalance")
	}
	// b's record was given back, not lost.
	if m := receive(ctx, t, chB, 1)[0]; string(m.Payload) != "1" {
		t.Fatalf("b: got %q", m.Payload)
	}
}

// With two usage topics each session reports its own topic's partitions:
// the window is told the union, and a topic's revocation takes only its own.
func TestClaimsOverTopicsAreMerged(t *testing.T) {
	var s claimSet
	got := s.assign(map[string][]int32{"a": {0, 1}})
	got = s.assign(map[string][]int32{"b": {2}})
	if len(got) != 2 || len(got["a"]) != 2 || len(got["b"]) != 1 {
		t.Fatalf("union %v, want a:[0 1] b:[2]", got)
	}
	got["a"][0] = 9 // the caller's copy
	s.revoke(map[string][]int32{"a": {0, 1}})
	if got := s.assign(map[string][]int32{"b": {2, 3}}); len(got) != 1 || len(got["b"]) != 2 {
		t.Errorf("after a's revocation and b's new assignment: %v, want b:[2 3] only", got)
	}
}
