package kafka_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"hots/codecs"
	"hots/config"
	"hots/connectors"
	"hots/connectors/connectortest"
	"hots/connectors/kafka"
	"hots/connectors/kafka/devbroker"
	"hots/pipeline"
	"hots/placement"
)

// The Kafka connector passes the conformance suite against an embedded
// broker holding Kafka's default message size limit, over TCP, through the
// same watermill-kafka, goka and sarama code a service runs. Each run has
// its own topics and groups; the last tick closes on idleness.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("Kafka conformance: about 10 s against the embedded broker")
	}
	b, err := devbroker.Start(devbroker.Options{Partitions: 3, BrokerConfigs: map[string]string{"message.max.bytes": "1048588"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	n := 0
	connectortest.Run(t, connectortest.Harness{
		Timeout: 3 * time.Minute,
		Open: func(t *testing.T, trace string, env connectors.Env) (connectors.Connector, connectortest.Feed) {
			n++
			var a kafka.Args
			a.Default()
			a.DataFolder = trace
			a.Kafka.Brokers = b.Addrs()
			a.Kafka.Group = fmt.Sprintf("conformance-%d", n)
			a.Kafka.UsageTopics = []string{fmt.Sprintf("usage-%d", n)}
			a.Kafka.MovesTopic, a.Kafka.PoisonTopic, a.Kafka.NodesTopic = fmt.Sprintf("moves-%d", n), fmt.Sprintf("poison-%d", n), fmt.Sprintf("nodes-%d", n)
			a.Kafka.Partitions = 3
			a.Kafka.Lateness, a.Kafka.IdleTimeout = 0, 2*time.Second
			if err := a.Validate(); err != nil {
				t.Fatal(err)
			}
			c, err := kafka.New(env, a)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			topic := a.Kafka.UsageTopics[0]
			return c, func(ctx context.Context, recs []connectortest.Record) error {
				p, err := producer(b.Addrs())
				if err != nil {
					return err
				}
				defer p.Close()
				msgs := make([]*sarama.ProducerMessage, 0, len(recs))
				for _, r := range recs {
					msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(r.Domain), Value: sarama.ByteEncoder(r.JSON)})
				}
				return p.SendMessages(msgs)
			}
		},
		Published: func(t *testing.T, conn connectors.Connector) []placement.Move {
			var out []placement.Move
			for _, v := range readTopic(t, b.Addrs(), conn.Sink().Topic) {
				m, err := codecs.DecodeMove(v)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, m)
			}
			return out
		},
		Poisoned: func(t *testing.T, conn connectors.Connector) int {
			return len(readTopic(t, b.Addrs(), conn.Poison().Topic))
		},
	})
}

func producer(brokers []string) (sarama.SyncProducer, error) {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	return sarama.NewSyncProducer(brokers, sc)
}

// readTopic reads every record of a topic (all partitions, in partition
// then offset order; one domain is on one partition, so its order holds).
func readTopic(t *testing.T, brokers []string, topic string) [][]byte {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	client, err := sarama.NewClient(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var out [][]byte
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if end == 0 {
			continue
		}
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
	read:
		for {
			select {
			case m := <-pc.Messages():
				out = append(out, m.Value)
				if m.Offset == end-1 {
					break read
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("%s[%d]: no record for 30 s", topic, p)
			}
		}
		pc.Close()
	}
	return out
}

// Upstream's Kafka sample (connector.parameters bootstrap.servers and
// topics) and the env spelling of the dotted key reach the client options;
// kafka.* wins over upstream's keys.
func TestUpstreamKeysReachTheOptions(t *testing.T) {
	load := func(env ...string) kafka.Options {
		t.Helper()
		cfg, _, err := config.Load(config.LoadOptions{File: "../../config/testdata/head_kafka_sample.json", Environ: env, Sections: connectors.Sections()})
		if err != nil {
			t.Fatal(err)
		}
		d, err := connectors.Decode(kafka.Name, pipeline.RawConnector(*cfg))
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Unknown) != 0 {
			t.Errorf("unknown keys %v", d.Unknown)
		}
		o, err := d.Args.(*kafka.Args).Options()
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	o := load()
	if !reflect.DeepEqual(o.Brokers, []string{"localhost:9092"}) || !reflect.DeepEqual(o.UsageTopics, []string{"hots_moves"}) {
		t.Errorf("sample: brokers %v topics %v", o.Brokers, o.UsageTopics)
	}
	if o := load("HOTS_CONNECTOR__PARAMETERS__BOOTSTRAP_SERVERS=b1:9092,b2:9092"); !reflect.DeepEqual(o.Brokers, []string{"b1:9092", "b2:9092"}) {
		t.Errorf("env: brokers %v", o.Brokers)
	}
}

// kafka.session_timeout and kafka.heartbeat_interval are validated by
// name and reach the client options (the usage group and goka's groups
// are configured from them).
func TestSessionSettingsAreValidated(t *testing.T) {
	tests := []struct {
		name               string
		session, heartbeat time.Duration
		err                string // "" = valid
	}{
		{"defaults", kafka.DefaultSessionTimeout, kafka.DefaultHeartbeatInterval, ""},
		{"sarama's defaults", 10 * time.Second, 3 * time.Second, ""},
		{"Kafka 3's consumer defaults", 45 * time.Second, 3 * time.Second, ""},
		{"the broker's minimum, a third of it", 6 * time.Second, 2 * time.Second, ""},
		{"the broker's maximum", 30 * time.Minute, time.Second, ""},
		{"below the broker's minimum", 5 * time.Second, time.Second, "kafka.session_timeout = 5s: a duration between 6s and 30m0s"},
		{"zero", 0, kafka.DefaultHeartbeatInterval, "kafka.session_timeout = 0s"},
		{"above the broker's maximum", 31 * time.Minute, time.Second, "kafka.session_timeout = 31m0s"},
		{"heartbeat over a third", 6 * time.Second, 2001 * time.Millisecond, "kafka.heartbeat_interval = 2.001s: a duration of at least 1ms and at most a third of kafka.session_timeout (6s)"},
		{"heartbeat zero", 6 * time.Second, 0, "kafka.heartbeat_interval = 0s"},
		{"heartbeat negative", 6 * time.Second, -time.Second, "kafka.heartbeat_interval = -1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a kafka.Args
			a.Default()
			a.Kafka.SessionTimeout, a.Kafka.HeartbeatInterval = tc.session, tc.heartbeat
			err := a.Validate()
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				o, err := a.Options()
				if err != nil {
					t.Fatal(err)
				}
				if o.SessionTimeout != tc.session || o.HeartbeatInterval != tc.heartbeat {
					t.Errorf("options carry session %s heartbeat %s, want %s %s", o.SessionTimeout, o.HeartbeatInterval, tc.session, tc.heartbeat)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Validate() = %v, want it to say %q", err, tc.err)
			}
		})
	}
}
