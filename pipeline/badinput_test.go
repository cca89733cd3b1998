package pipeline

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"hots/codecs"
	"hots/config"
	"hots/connectors"
	"hots/placement"
)

func smallTrace(t *testing.T, usage, meta string) config.Config {
	t.Helper()
	dir := t.TempDir()
	if usage != "" {
		os.WriteFile(filepath.Join(dir, "container_usage.csv"), []byte(usage), 0o644)
	}
	if meta != "" {
		os.WriteFile(filepath.Join(dir, "node_meta.csv"), []byte(meta), 0o644)
	}
	var cfg config.Config
	setParam(&cfg, "data_folder", dir)
	setParam(&cfg, "outfile", filepath.Join(dir, "out", "moves.jsonl"))
	cfg.Connector.Parameters.SepTime = 1
	return cfg
}

const goodMeta = "machine_id,cpu\nn_1,10\nn_2,10\n"

func TestReplayRejectsBadRowsAndGoesOn(t *testing.T) {
	usage := "timestamp,container_id,machine_id,cpu\n" +
		"0,c_1,n_1,1\n" + // 2 kept
		"0,c_2,n_2,abc\n" + // 3 bad metric (decode)
		"0,c_1,n_1,5\n" + // 4 duplicate (connector)
		"zz,c_3,n_1,1\n" + // 5 bad tick (connector)
		"0,c_4,n_9,2\n" + // 6 host not in node_meta: kept, warned
		"1,c_1,n_1,2\n" + // 7
		"1,c_2,n_2,-3\n" + // 8 negative (decode)
		"1,c_4,n_9,1\n" // 9
	meta := goodMeta + "n_1,99\n" // duplicate host row: first kept
	cfg := smallTrace(t, usage, meta)
	rec := &Recorder{}
	res, conn, err := replayFile(context.Background(), cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	src := res.Source
	if src.Rows != 8 || res.Samples != 4 || res.Rejected != 5 || src.Ticks != 2 || src.HostsKnown != 2 ||
		len(src.UnknownHosts) != 1 || src.UnknownHosts[0] != "n_9" || res.Containers != 2 {
		t.Errorf("result %+v", *res)
	}
	_, _, _, rejectsPath := conn.Paths()
	f, err := os.Open(rejectsPath)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ // line -> reason prefix
		"3": "metric is not a number", "4": "duplicate (tick 0, container): first row (line 2) kept",
		"5": "tick is not an integer", "8": "metric is negative", "4@nm": "duplicate host, first row (line 2) kept",
	}
	if len(recs) != 6 {
		t.Fatalf("rejects file %q, want header + 5", recs)
	}
	for _, r := range recs[1:] {
		key := r[1]
		if strings.HasSuffix(r[0], "node_meta.csv") {
			key += "@nm"
		}
		if !strings.HasPrefix(r[3], want[key]) {
			t.Errorf("reject %q: want reason %q", r, want[key])
		}
	}
	if len(rec.Rejects) != 5 {
		t.Errorf("observer saw %d rejects, want 5", len(rec.Rejects))
	}
	if got := rec.Ticks[0].Baseline["n_9"]; len(got) != 1 || got[0] != 2 {
		t.Errorf("unknown host n_9 load at tick 0 = %v, want [2] (samples of unknown hosts are kept)", got)
	}
}

func TestReplayStopsOnUnusableInput(t *testing.T) {
	header := "timestamp,container_id,machine_id,cpu\n"
	tests := []struct {
		name, usage, meta string
		edit              func(*config.Config)
		want              []string
	}{
		{"missing usage file", "", goodMeta, nil, []string{"container_usage.csv", "no such file"}},
		{"missing node_meta", header + "0,c,n_1,1\n", "", nil, []string{"node_meta.csv", "no such file"}},
		{"missing column", "timestamp,container_id,host,cpu\n0,c,n_1,1\n", goodMeta, nil, []string{"container_usage.csv", `missing column "machine_id"`}},
		{"node_meta lacks a metric", header + "0,c,n_1,1\n", goodMeta, func(c *config.Config) { c.Connector.Parameters.Metrics = []string{"cpu", "mem"} },
			[]string{"node_meta.csv", `missing column "mem"`}},
		{"empty usage file", "", goodMeta, func(c *config.Config) {
			os.WriteFile(filepath.Join(param(*c, "data_folder"), "container_usage.csv"), nil, 0o644)
		}, []string{"container_usage.csv", "empty file"}},
		{"no data rows", header, goodMeta, nil, []string{"container_usage.csv", "no data rows"}},
		{"bad_input stop", header + "0,c,n_1,1\n0,d,n_1,x\n1,c,n_1,1\n", goodMeta, func(c *config.Config) { c.Connector.Parameters.BadInput = "stop" },
			[]string{"bad_input: stop", "container_usage.csv:3", "metric is not a number"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := smallTrace(t, tt.usage, tt.meta)
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			_, _, err := replayFile(context.Background(), cfg, nil)
			if err == nil {
				t.Fatal("replay succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to mention %q", err, w)
				}
			}
		})
	}
}

// chanConnector is a connector over gochannel: JSON records in (the
// Kafka shape), ticks closed by lateness, poisoned records recorded.
type chanConnector struct {
	src, sink *gochannel.GoChannel
	poisoned  chan *message.Message
	rule      connectors.TickRule
}

func (c *chanConnector) Initial(context.Context) (connectors.Initial, error) {
	return connectors.Initial{Hosts: []placement.Host{{Name: "n", Capacity: []float64{10}}}}, nil
}
func (c *chanConnector) Source() connectors.Source {
	return connectors.Source{Subscriber: c.src, Topics: []string{"usage"}}
}
func (c *chanConnector) Sink() connectors.Sink {
	return connectors.Sink{Publisher: c.sink, Topic: "moves"}
}
func (c *chanConnector) Poison() connectors.Sink {
	return connectors.Sink{Publisher: poisonRecorder(c.poisoned), Topic: "poison"}
}
func (c *chanConnector) Ticks() connectors.TickRule { return c.rule }
func (c *chanConnector) Close() error               { return nil }

type poisonRecorder chan *message.Message

func (p poisonRecorder) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		p <- m
	}
	return nil
}
func (poisonRecorder) Close() error { return nil }

// runChanConnector runs the pipeline over a chanConnector with rule until
// stop, which returns the run's result.
func runChanConnector(t *testing.T, rule connectors.TickRule) (*chanConnector, *Recorder, func() *Result) {
	t.Helper()
	logger := watermill.NopLogger{}
	c := &chanConnector{src: gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, logger),
		sink: gochannel.NewGoChannel(gochannel.Config{}, logger), poisoned: make(chan *message.Message, 4), rule: rule}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	rec := &Recorder{}
	svc, _ := NewService(ServiceOptions{}, nil)
	type ran struct {
		res *Result
		err error
	}
	done := make(chan ran, 1)
	go func() {
		res, err := Run(ctx, config.Config{}, c, Options{Observer: rec, Service: svc})
		done <- ran{res, err}
	}()
	for !svc.ready.Load() {
		time.Sleep(5 * time.Millisecond)
	}
	return c, rec, func() *Result {
		t.Helper()
		cancel()
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.res
	}
}

// A JSON source (the Kafka shape): a bad record is poisoned with its reason
// at once (no retries for a permanent error), good ones go through.
func TestRouterPoisonsUndecodableRecords(t *testing.T) {
	c, rec, stop := runChanConnector(t, connectors.TickRule{})
	bad := message.NewMessage("bad", []byte(`{"timestamp":1,"container_id":"c","machine_id":"n"}`))
	bad.Metadata.Set(codecs.MetaSource, "usage")
	good := message.NewMessage("good", []byte(`{"containers":[{"timestamp":1,"container_id":"c","machine_id":"n","cpu":2}]}`))
	if err := c.src.Publish("usage", bad, good); err != nil { // returns once both were acked
		t.Fatal(err)
	}
	res := stop()
	if len(c.poisoned) != 1 {
		t.Fatalf("%d records poisoned, want 1", len(c.poisoned))
	}
	p := <-c.poisoned
	if p.UUID != "bad" || !strings.Contains(p.Metadata.Get("reason_poisoned"), `"cpu": missing metric`) {
		t.Errorf("poisoned %s with %q, want the bad record with its reason", p.UUID, p.Metadata.Get("reason_poisoned"))
	}
	if len(rec.Rejects) != 1 || !strings.Contains(rec.Rejects[0].Reason, "poisoned in decode") {
		t.Errorf("observer saw rejects %+v", rec.Rejects)
	}
	if res.Samples != 1 || res.Rejected != 1 {
		t.Errorf("result %+v, want the good record's 1 sample and 1 reject", res)
	}
}

// A records message (what a log connector bundles) is taken record by
// record: the bad one is poisoned alone, as written, with its own
// provenance; the others' samples all go through.
func TestRouterTakesABundleRecordByRecord(t *testing.T) {
	c, rec, stop := runChanConnector(t, connectors.TickRule{IdleTimeout: time.Hour, MaxTickJump: 10})
	record := func(off int, v string) codecs.SourceRecord {
		return codecs.SourceRecord{UUID: fmt.Sprintf("usage/0/%d", off), Payload: []byte(v),
			Metadata: map[string]string{codecs.MetaSource: "usage", codecs.MetaPartition: "0", codecs.MetaOffset: strconv.Itoa(off), "h": "kept"}}
	}
	badJSON := `{"timestamp":1,"container_id":"c2","machine_id":"n"}`
	bundle := message.NewMessage("bundle", codecs.EncodeRecords([]codecs.SourceRecord{
		record(10, `{"timestamp":1,"container_id":"c1","machine_id":"n","cpu":2}`),
		record(11, badJSON),
		record(12, `{"containers":[{"timestamp":2,"container_id":"c3","machine_id":"n","cpu":1},{"timestamp":2,"container_id":"c4","machine_id":"n","cpu":1}]}`),
		record(13, `{"timestamp":5,"container_id":"c1","machine_id":"n","cpu":2}`),
		// 25 ahead of tick 5, which the record before will have set when
		// this one reaches the window: poisoned as written, here.
		record(14, `{"timestamp":30,"container_id":"c1","machine_id":"n","cpu":2}`),
	}))
	bundle.Metadata.Set(codecs.MetaKind, codecs.KindRecords)
	bundle.Metadata.Set(codecs.MetaSource, "usage")
	if err := c.src.Publish("usage", bundle); err != nil {
		t.Fatal(err)
	}
	res := stop()
	if len(c.poisoned) != 2 {
		t.Fatalf("%d messages poisoned, want the two bad records", len(c.poisoned))
	}
	p := <-c.poisoned
	if p.UUID != "usage/0/11" || string(p.Payload) != badJSON || p.Metadata.Get(codecs.MetaOffset) != "11" || p.Metadata.Get("h") != "kept" ||
		!strings.Contains(p.Metadata.Get("reason_poisoned"), `"cpu": missing metric`) || p.Metadata.Get("handler_poisoned") != "decode:usage" {
		t.Errorf("poisoned %s %q with %v, want record 11 as written, its metadata and reason", p.UUID, p.Payload, p.Metadata)
	}
	if far := <-c.poisoned; far.UUID != "usage/0/14" || !strings.Contains(far.Metadata.Get("reason_poisoned"), "ahead of the domain's clock (tick 5)") {
		t.Errorf("poisoned %s with %q, want record 14 against the clock record 13 sets", far.UUID, far.Metadata.Get("reason_poisoned"))
	}
	if len(rec.Rejects) != 2 || rec.Rejects[0].Offset != 11 || rec.Rejects[1].Offset != 14 {
		t.Errorf("observer saw rejects %+v, want records 11 and 14", rec.Rejects)
	}
	if res.Samples != 4 || res.Rejected != 2 {
		t.Errorf("result %+v, want 4 samples (records 10, 12, 13) and 2 rejects", res)
	}
}
