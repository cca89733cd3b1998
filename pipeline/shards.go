package pipeline

import (
	"strconv"
	"strings"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// shards is the number of inner shards per stage (see build). Tick closes
// of domains on different shards, and records of partitions on different
// shards, proceed in parallel; more shards than domains buy nothing.
const shards = 8

// shardTopic is shard i of an inner topic (shard 0 is the topic itself).
func shardTopic(topic string, i int) string {
	if i == 0 {
		return topic
	}
	return topic + "#" + strconv.Itoa(i)
}

// shardName is the handler name of shard i of a stage: the stage's name for
// shard 0, so that a run with one domain and one source reads as before.
func shardName(stage string, i int) string { return shardTopic(stage, i) }

// stageName is the stage a handler name belongs to.
func stageName(handler string) string {
	s, _, _ := strings.Cut(handler, "#")
	return s
}

// sharder publishes each message to the shard of the inner topic its key
// (a metadata value) was given: keys get shards in order of first sight,
// so that up to shards keys never share one. A message without the key
// goes to shard 0.
type sharder struct {
	message.Publisher
	n    int
	meta string

	mu   sync.Mutex
	of   map[string]int
	next int
}

func newSharder(p message.Publisher, n int, meta string) *sharder {
	return &sharder{Publisher: p, n: n, meta: meta, of: map[string]int{}, next: 1}
}

func (s *sharder) shard(msg *message.Message) int {
	k := msg.Metadata.Get(s.meta)
	if k == "" {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.of[k]
	if !ok {
		if len(s.of) == 0 {
			i = 0 // the first key keeps shard 0 (a run with one domain)
		} else {
			i, s.next = s.next%s.n, s.next+1
		}
		s.of[k] = i
	}
	return i
}

// Publish sends each message to its shard of topic, in order.
func (s *sharder) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		if err := s.Publisher.Publish(shardTopic(topic, s.shard(m)), m); err != nil {
			return err
		}
	}
	return nil
}
