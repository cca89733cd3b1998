package kafka

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// BenchmarkPublishConsume10k publishes 10k small domain-keyed messages to a
// 1-broker kfake (8 publishers, 50 messages per Publish call) and consumes
// them with one subscriber, acking each; the consume figure includes the
// consumer-group join.
func BenchmarkPublishConsume10k(b *testing.B) {
	const n, publishers, batch = 10_000, 8, 50
	o := startBroker(b, 6)
	ctx := testContext(b)
	pub, err := NewPublisher(o, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	var pubTime, subTime time.Duration
	for i := 0; b.Loop(); i++ {
		topic := fmt.Sprintf("bench-%d", i)
		o.UsageTopics = []string{topic}
		o.Group = topic
		if err := EnsureTopics(ctx, o); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		var wg sync.WaitGroup
		for p := 0; p < publishers; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := p * batch; k < n; k += publishers * batch {
					msgs := make([]*message.Message, 0, batch)
					for j := k; j < min(k+batch, n); j++ {
						m := message.NewMessage(watermill.NewUUID(), []byte(`{"tick":1,"container":"c","cpu":0.5}`))
						m.Metadata.Set(MetadataDomain, fmt.Sprintf("d%d", j%32))
						msgs = append(msgs, m)
					}
					if err := pub.Publish(topic, msgs...); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		pubTime += time.Since(start)

		start = time.Now()
		sub, err := NewSubscriber(o, nil)
		if err != nil {
			b.Fatal(err)
		}
		ch, err := sub.Subscribe(ctx, topic)
		if err != nil {
			b.Fatal(err)
		}
		receive(ctx, b, ch, n)
		subTime += time.Since(start)
		sub.Close()
	}
	b.ReportMetric(float64(b.N*n)/pubTime.Seconds(), "publish_msgs/s")
	b.ReportMetric(float64(b.N*n)/subTime.Seconds(), "consume_msgs/s")
	b.ReportMetric(float64(b.N*n)/(pubTime+subTime).Seconds(), "roundtrip_msgs/s")
}
