package state

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// fakeGroup's Consume returns the next of results (nil: a session ended,
// e.g. for a rebalance) and cancels the run once they are used up.
type fakeGroup struct {
	sarama.ConsumerGroup
	results []error
	calls   int
	cancel  context.CancelFunc
}

func (g *fakeGroup) Consume(context.Context, []string, sarama.ConsumerGroupHandler) error {
	g.calls++
	if g.calls >= len(g.results) {
		g.cancel()
		return nil
	}
	return g.results[g.calls-1]
}

func consume(t *testing.T, results ...error) (calls int, took time.Duration, err error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := &fakeGroup{results: results, cancel: cancel}
	start := time.Now()
	err = rejoiningGroup{ConsumerGroup: g, group: "test"}.Consume(ctx, []string{"t"}, nil)
	return g.calls, time.Since(start), err
}

// A session that ends (a rebalance) is followed by the next join within
// rejoinPause, not after goka's 5 s; a failed join (no broker) is retried
// instead of ending the processor; a closed group and the run's end still
// end Consume at once.
func TestRejoiningGroupJoinsTheNextGenerationAtOnce(t *testing.T) {
	calls, took, err := consume(t, nil, nil, nil, nil)
	if err != nil || calls != 4 {
		t.Errorf("three rebalances, then the run ended: err %v after %d calls, want nil after 4", err, calls)
	}
	if took > 2*time.Second {
		t.Errorf("three rejoins took %s, want about 3 x %s", took, rejoinPause)
	}

	noBroker := errors.New("kafka: client has run out of available brokers to talk to")
	calls, took, err = consume(t, noBroker, noBroker, nil, nil)
	if err != nil || calls != 4 {
		t.Errorf("two failed joins, a session, then the run ended: err %v after %d calls, want nil after 4", err, calls)
	}
	if took > 3*time.Second {
		t.Errorf("two retries and a rejoin took %s, want 100+200+100 ms", took)
	}

	calls, _, err = consume(t, sarama.ErrClosedConsumerGroup, nil)
	if !errors.Is(err, sarama.ErrClosedConsumerGroup) || calls != 1 {
		t.Errorf("a closed group: err %v after %d calls, want ErrClosedConsumerGroup after 1", err, calls)
	}
}
