package integration

import (
	"strings"
	"testing"

	"github.com/IBM/sarama"
)

type kv struct{ key, value string }

// sendRaw produces records with sarama's default (hash) partitioner, the
// one hots produce and the service's publisher use.
func sendRaw(t testing.TB, brokers, topic string, msgs []kv) {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sc.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(strings.Split(brokers, ","), sc)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var pm []*sarama.ProducerMessage
	for _, m := range msgs {
		pm = append(pm, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(m.key), Value: sarama.StringEncoder(m.value)})
	}
	if err := p.SendMessages(pm); err != nil {
		t.Fatal(err)
	}
}

type poisoned struct{ value, reason, topic, partition, offset string }

func readPoison(t testing.TB, brokers string) []poisoned {
	var out []poisoned
	for _, m := range readTopic(t, brokers, "hots.poison") {
		p := poisoned{value: string(m.Value)}
		for _, h := range m.Headers {
			switch string(h.Key) {
			case "reason_poisoned":
				p.reason = string(h.Value)
			case "kafka_topic":
				p.topic = string(h.Value)
			case "kafka_partition":
				p.partition = string(h.Value)
			case "kafka_offset":
				p.offset = string(h.Value)
			}
		}
		out = append(out, p)
	}
	return out
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
