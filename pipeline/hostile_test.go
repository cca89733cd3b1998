package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"hots/placement"
)

// panicky is an observer whose Decided panics, standing for a bug in a
// stage (here the placement stage, which calls it).
type panicky struct{ NopObserver }

func (panicky) Decided(LoopRecord, []placement.Move) { panic("boom") }

// Issue 10: a panic in a stage fails the run, naming stage, domain and
// tick. It used to be retried, the retry met an already closed tick and
// was counted as late, and the run ended without an error.
func TestReplayFailsOnAStagePanic(t *testing.T) {
	var b strings.Builder
	b.WriteString("timestamp,container_id,machine_id,cpu\n")
	for tick := range 8 {
		fmt.Fprintf(&b, "%d,c_1,n_1,1\n%d,c_2,n_2,2\n", tick, tick)
	}
	cfg := smallTrace(t, b.String(), goodMeta)
	cfg.Connector.Parameters.SepTime = 3
	res, _, err := replayFile(context.Background(), cfg, panicky{})
	var pe *PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a PanicError", err)
	}
	if want := `panic in the placement stage (domain "default", tick 3): boom`; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %v, want prefix %s", err, want)
	}
	if res.Late != 0 {
		t.Errorf("%d late ticks: the panic was retried", res.Late)
	}
}

// A sep_time the trace never reaches is valid but means no loop: said
// loudly (issue 10: it ran silently).
func TestReplayWarnsOfSepTimePastTheLastTick(t *testing.T) {
	var logs strings.Builder
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	cfg := smallTrace(t, "timestamp,container_id,machine_id,cpu\n0,c_1,n_1,1\n1,c_1,n_1,1\n", goodMeta)
	cfg.Connector.Parameters.SepTime = 1000
	if _, _, err := replayFile(context.Background(), cfg, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `msg="connector.parameters.sep_time is past the last tick of the trace: no loop will run`) ||
		!strings.Contains(logs.String(), "sep_time=1000 last_tick=1") {
		t.Errorf("log:\n%s", logs.String())
	}
}
