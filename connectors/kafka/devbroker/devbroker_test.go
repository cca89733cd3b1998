package devbroker

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/IBM/sarama"
)

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	c.Producer.Return.Successes = true
	return c
}

func TestStartSeedsTopicsWithPartitions(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		wantBroker int
		wantParts  int
	}{
		{"one broker default partitions", Options{Topics: []string{"a"}}, 1, DefaultPartitions},
		{"two brokers three partitions", Options{Ports: []int{0, 0}, Partitions: 3, Topics: []string{"a", "b"}}, 2, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Start(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if got := len(b.Addrs()); got != tc.wantBroker {
				t.Fatalf("addrs %v: want %d brokers", b.Addrs(), tc.wantBroker)
			}
			client, err := sarama.NewClient(b.Addrs(), saramaConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			for _, topic := range tc.opts.Topics {
				parts, err := client.Partitions(topic)
				if err != nil {
					t.Fatalf("topic %s: %v", topic, err)
				}
				if len(parts) != tc.wantParts {
					t.Errorf("topic %s: %d partitions, want %d", topic, len(parts), tc.wantParts)
				}
			}
		})
	}
}

// A broker restarted on the same DataDir keeps the records, which is what
// lets a developer stop `hots broker` and resume a run later.
func TestDataDirSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Partitions: 1, Topics: []string{"usage"}, DataDir: dir}
	b, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := sarama.NewSyncProducer(b.Addrs(), saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "usage", Value: sarama.StringEncoder("x")}); err != nil {
			t.Fatal(err)
		}
	}
	prod.Close()
	b.Close()

	b2, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	client, err := sarama.NewClient(b2.Addrs(), saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	next, err := client.GetOffset("usage", 0, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	if next != 5 {
		t.Fatalf("next offset after restart = %d, want 5", next)
	}
}

func TestRunUntilSignalPrintsAddressesAndStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- RunUntilSignal(ctx, Options{Topics: []string{"t"}}, pw); pw.Close() }()

	var addrs []string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "brokers="); ok {
			addrs = strings.Split(v, ",")
			break
		}
	}
	if len(addrs) != 1 || !strings.HasPrefix(addrs[0], "127.0.0.1:") {
		t.Fatalf("addresses = %v", addrs)
	}
	client, err := sarama.NewClient(addrs, saramaConfig())
	if err != nil {
		t.Fatalf("printed address does not answer: %v", err)
	}
	client.Close()
	go io.Copy(io.Discard, pr)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunUntilSignal after cancel: %v", err)
	}
}
