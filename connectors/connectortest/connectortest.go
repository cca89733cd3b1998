// Package connectortest is the conformance suite every connector's tests
// run, the way Watermill's pubsub/tests suite is run by every Pub/Sub: a
// connector that passes it plugs into the pipeline with no change to the
// rest of hots. Call Run from a test with a Harness that builds the
// connector over a trace folder and, for a connector that does not read
// files itself, feeds the trace through it (posts it, produces it).
//
// What it checks, on traces it generates:
//   - ticks close in order, each once, every tick of the trace;
//   - the moves equal placement.Replay's on the same trace (ids and
//     contents), and the connector's sink received exactly those;
//   - a move decided at tick t applies from tick t+1 (the closed ticks'
//     loads are the trace re-attributed by the moves);
//   - bad records are never lost: each is counted and reaches the poison
//     sink, and every good record still arrives;
//   - Close is idempotent;
//   - cancelling the run ends it promptly.
package connectortest

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"hots/codecs"
	"hots/config"
	"hots/connectors"
	"hots/connectors/file/sample"
	"hots/pipeline"
	"hots/placement"
)

// Harness is how the suite drives one connector.
type Harness struct {
	// Open builds a connector over a trace folder (container_usage.csv,
	// node_meta.csv) with env. It returns, for a source that does not read
	// the folder itself, feed: called once the pipeline runs, it sends
	// every record (see Records) and returns when they were all sent. A
	// live source closes the last tick by idleness (set a short idle
	// timeout) or by a watermark the feed sends, if it has them.
	Open func(t *testing.T, trace string, env connectors.Env) (conn connectors.Connector, feed Feed)
	// Published reads back the moves the connector's sink received, in
	// order (from its file, topic or endpoint). The suite has closed the
	// connector by then.
	Published func(t *testing.T, conn connectors.Connector) []placement.Move
	// Poisoned counts the records its poison sink received.
	Poisoned func(t *testing.T, conn connectors.Connector) int
	// Timeout bounds one run (default 2 minutes).
	Timeout time.Duration
}

// Feed sends a trace's records (nil when the connector reads the trace).
type Feed func(ctx context.Context, recs []Record) error

// Record is one usage row of a trace as a JSON object, the form stream
// connectors carry; a value that is not a number stays a string (so that
// it is refused downstream, as the file connector refuses it).
type Record struct {
	Tick   int64
	Domain string
	JSON   []byte
}

// Config is the configuration the suite runs with: the bundled sample's
// method on a smaller generated trace, ticks closing as soon as a later
// tick's first sample arrives (a live source's lateness is the
// connector's, see Harness).
func Config() config.Config {
	cfg, _, err := config.Load(config.LoadOptions{Environ: []string{}})
	if err != nil {
		panic(err)
	}
	cp := &cfg.Connector.Parameters
	cp.Extra = nil
	cp.SepTime, cp.TickIncrement, cp.WindowDuration = 11, 3, 6
	cfg.Problem.Parameters.HistoryTicks = 12
	return *cfg
}

// Trace writes the suite's generated trace into a new folder: containers
// with phase-shifted profiles on hosts that peak together, so that the
// method moves some of them.
func Trace(t *testing.T) string {
	t.Helper()
	tr, err := sample.Generate(sample.Params{Containers: 24, Hosts: 4, Ticks: 48, Seed: 7, Period: 12})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := tr.Write(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Records reads a trace's usage rows as JSON records in tick order (stable:
// the file's order within a tick), as `hots produce` sends them.
func Records(t *testing.T, trace string, cfg config.Config) []Record {
	t.Helper()
	rows := readCSV(t, filepath.Join(trace, "container_usage.csv"))
	f := pipeline.UsageFields(cfg)
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	var out []Record
	for _, r := range rows[1:] {
		obj := map[string]any{}
		for name, i := range col {
			if v, err := strconv.ParseFloat(r[i], 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) && name != f.Individual && name != f.Host {
				obj[name] = v
			} else {
				obj[name] = r[i]
			}
		}
		tick, _ := strconv.ParseInt(r[col[f.Tick]], 10, 64)
		b, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Record{Tick: tick, Domain: f.DefaultDomain, JSON: b})
	}
	slices.SortStableFunc(out, func(a, b Record) int { return cmp.Compare(a.Tick, b.Tick) })
	return out
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	rows, err := csv.NewReader(fh).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	if h.Timeout == 0 {
		h.Timeout = 2 * time.Minute
	}
	t.Run("SameMovesAsTheEngine", func(t *testing.T) { sameMoves(t, h) })
	t.Run("RejectsAreNeverLost", func(t *testing.T) { rejects(t, h) })
	t.Run("CloseIsIdempotent", func(t *testing.T) {
		conn, _ := h.Open(t, Trace(t), env(t, Config()))
		for i := range 2 {
			if err := conn.Close(); err != nil {
				t.Errorf("Close #%d: %v", i+1, err)
			}
		}
	})
	t.Run("CancelEndsTheRun", func(t *testing.T) { cancelEnds(t, h) })
}

func env(t *testing.T, cfg config.Config) connectors.Env {
	e := pipeline.Env(cfg, nil)
	e.RunDir = t.TempDir()
	return e
}

// run runs the pipeline over conn until every tick of the trace closed
// (and want poisoned records were counted), then cancels it.
type run struct {
	res   *pipeline.Result
	rec   *pipeline.Recorder
	err   error
	ticks []int64
}

func runToEnd(t *testing.T, h Harness, cfg config.Config, trace string, ticks int, rejects int) (*run, connectors.Connector) {
	t.Helper()
	conn, feed := h.Open(t, trace, env(t, cfg))
	ctx, cancel := context.WithTimeout(context.Background(), h.Timeout)
	defer cancel()
	rec := &pipeline.Recorder{}
	svc, err := pipeline.NewService(pipeline.ServiceOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *run, 1)
	ended := make(chan struct{})
	go func() {
		res, err := pipeline.Run(ctx, cfg, conn, pipeline.Options{Observer: rec, Service: svc})
		done <- &run{res: res, err: err, rec: rec}
		close(ended)
	}()
	_, finite := conn.(connectors.Finite)
	if feed != nil {
		if !waitFor(ctx, ended, func() bool { return svc.Ready() }) {
			t.Fatal("the pipeline never became ready")
		}
		if err := feed(ctx, Records(t, trace, cfg)); err != nil {
			t.Fatalf("feeding the trace: %v", err)
		}
	}
	if !finite {
		// Closed counts ticks whose moves are published, not merely closed.
		ok := waitFor(ctx, ended, func() bool {
			_, nr := rec.Sizes()
			return svc.Closed() >= int64(ticks) && nr >= rejects
		})
		if !ok {
			_, nr := rec.Sizes()
			t.Fatalf("%d of %d ticks through, %d of %d rejects seen before the timeout", svc.Closed(), ticks, nr, rejects)
		}
		cancel()
	}
	var r *run
	select {
	case r = <-done:
	case <-time.After(h.Timeout):
		t.Fatal("the run did not end")
	}
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	// The run leaves the connector to its opener: closing it flushes what
	// its sinks hold (files), before the harness reads them back.
	if err := conn.Close(); err != nil {
		t.Fatalf("Close after the run: %v", err)
	}
	for _, tl := range rec.Ticks {
		r.ticks = append(r.ticks, tl.Tick)
	}
	return r, conn
}

// waitFor polls cond until it holds, ctx ends or the run ended.
func waitFor(ctx context.Context, ended <-chan struct{}, cond func() bool) bool {
	for !cond() {
		select {
		case <-ctx.Done():
			return cond()
		case <-ended:
			return cond()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}

// traceTicks reads a trace's samples per tick, as placement.Replay takes them.
func traceTicks(t *testing.T, trace string, cfg config.Config) []placement.TickBatch {
	t.Helper()
	rows := readCSV(t, filepath.Join(trace, "container_usage.csv"))
	f := pipeline.UsageFields(cfg)
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	byTick := map[int64]*placement.TickBatch{}
	for _, r := range rows[1:] {
		tick, _ := strconv.ParseInt(r[col[f.Tick]], 10, 64)
		s := placement.Sample{Domain: f.DefaultDomain, Tick: tick, Container: r[col[f.Individual]], Host: r[col[f.Host]]}
		if i, ok := col[f.Pinned]; ok {
			s.Pinned, _ = codecs.ParsePinned(r[i])
		}
		for _, m := range f.Metrics {
			v, _ := strconv.ParseFloat(r[col[m]], 64)
			s.Values = append(s.Values, v)
		}
		b := byTick[tick]
		if b == nil {
			b = &placement.TickBatch{Domain: f.DefaultDomain, Tick: tick}
			byTick[tick] = b
		}
		b.Samples = append(b.Samples, s)
	}
	var out []placement.TickBatch
	for _, b := range byTick {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b placement.TickBatch) int { return cmp.Compare(a.Tick, b.Tick) })
	return out
}

func hostsOf(t *testing.T, trace string, cfg config.Config) []placement.Host {
	t.Helper()
	fh, err := os.Open(filepath.Join(trace, "node_meta.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	f := pipeline.UsageFields(cfg)
	nm, err := codecs.ReadNodeMeta(fh, "node_meta.csv", f.Host, f.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	return nm.Hosts
}

func sameMoves(t *testing.T, h Harness) {
	cfg := Config()
	trace := Trace(t)
	ticks := traceTicks(t, trace, cfg)
	params := pipeline.EngineParams(cfg)
	ref, err := placement.Replay(pipeline.UsageFields(cfg).DefaultDomain, params, hostsOf(t, trace, cfg), ticks)
	if err != nil {
		t.Fatal(err)
	}
	if len(ref.Moves) == 0 {
		t.Fatal("the engine decides no move on the suite's trace: the comparison would prove nothing")
	}
	r, conn := runToEnd(t, h, cfg, trace, len(ticks), 0)

	// Ticks in order, each once, all of them.
	want := make([]int64, len(ticks))
	for i, b := range ticks {
		want[i] = b.Tick
	}
	if !reflect.DeepEqual(r.ticks, want) {
		t.Errorf("ticks closed %v, want %v (in order, each once)", r.ticks, want)
	}
	if !reflect.DeepEqual(r.rec.Moves, ref.Moves) {
		t.Errorf("moves differ from placement.Replay:\n got %d %+v\nwant %d %+v", len(r.rec.Moves), r.rec.Moves, len(ref.Moves), ref.Moves)
	}
	if pub := h.Published(t, conn); !reflect.DeepEqual(pub, ref.Moves) {
		t.Errorf("the sink received %d moves, want the %d decided:\n got %+v\nwant %+v", len(pub), len(ref.Moves), pub, ref.Moves)
	}
	if r.res.Moves != int64(len(ref.Moves)) || r.res.Samples != countSamples(ticks) || r.res.Rejected != 0 {
		t.Errorf("result %+v: want %d moves, %d samples, 0 rejected", r.res, len(ref.Moves), countSamples(ticks))
	}

	// A move of tick t applies from t+1: the closed ticks' loads are the
	// engine's own view of the trace (samples re-attributed by the moves).
	for i, tl := range r.rec.Ticks {
		if i >= len(ref.Ticks) {
			break
		}
		exp, _ := loads(ref.Ticks[i].Samples, len(params.Metrics))
		if !sameLoads(tl.Actual, exp) {
			t.Errorf("tick %d: host loads %v, want the trace re-attributed by the moves before it: %v", tl.Tick, tl.Actual, exp)
			break
		}
		_, base := loads(ticks[i].Samples, len(params.Metrics))
		if !sameLoads(tl.Baseline, base) {
			t.Errorf("tick %d: baseline loads %v, want the trace as recorded %v", tl.Tick, tl.Baseline, base)
			break
		}
	}
}

func countSamples(bs []placement.TickBatch) int64 {
	n := 0
	for _, b := range bs {
		n += len(b.Samples)
	}
	return int64(n)
}

func loads(ss []placement.Sample, metrics int) (actual, recorded map[string][]float64) {
	actual, recorded = map[string][]float64{}, map[string][]float64{}
	for _, s := range ss {
		for _, p := range []struct {
			m map[string][]float64
			h string
		}{{actual, s.Host}, {recorded, cmp.Or(s.TraceHost, s.Host)}} {
			l := p.m[p.h]
			if l == nil {
				l = make([]float64, metrics)
				p.m[p.h] = l
			}
			for k := range l {
				l[k] += s.Values[k]
			}
		}
	}
	return actual, recorded
}

func sameLoads(a, b map[string][]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for h, la := range a {
		lb, ok := b[h]
		if !ok || len(la) != len(lb) {
			return false
		}
		for k := range la {
			if math.Abs(la[k]-lb[k]) > 1e-9*math.Max(1, math.Abs(lb[k])) {
				return false
			}
		}
	}
	return true
}

// rejects: a trace with bad values (not a number, negative, an empty
// container id) keeps every good sample; each bad one is counted and
// reaches the poison sink.
func rejects(t *testing.T, h Harness) {
	cfg := Config()
	trace := Trace(t)
	path := filepath.Join(trace, "container_usage.csv")
	rows := readCSV(t, path)
	bad := map[int]func([]string){
		5:  func(r []string) { r[3] = "abc" },
		40: func(r []string) { r[3] = "-2" },
		77: func(r []string) { r[1] = "" },
		90: func(r []string) { r[4] = "NaN" },
	}
	for i, f := range bad {
		f(rows[i])
	}
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(fh)
	w.WriteAll(rows)
	fh.Close()
	ticks := traceTicks(t, trace, cfg)
	r, conn := runToEnd(t, h, cfg, trace, len(ticks), len(bad))
	good := int64(len(rows) - 1 - len(bad))
	if r.res.Samples != good || r.res.Rejected != int64(len(bad)) {
		t.Errorf("samples %d rejected %d, want %d and %d", r.res.Samples, r.res.Rejected, good, len(bad))
	}
	if n := h.Poisoned(t, conn); n != len(bad) {
		t.Errorf("the poison sink received %d records, want %d", n, len(bad))
	}
	if len(r.rec.Rejects) != len(bad) {
		t.Errorf("the observer saw %d rejects, want %d: %+v", len(r.rec.Rejects), len(bad), r.rec.Rejects)
	}
}

// cancelEnds: a run cancelled right after it started ends promptly,
// without error for a service and with the reason for a replay.
func cancelEnds(t *testing.T, h Harness) {
	cfg := Config()
	conn, _ := h.Open(t, Trace(t), env(t, cfg))
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := pipeline.NewService(pipeline.ServiceOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	ended := make(chan struct{})
	go func() {
		_, err := pipeline.Run(ctx, cfg, conn, pipeline.Options{Service: svc})
		done <- err
		close(ended)
	}()
	// A replay may end before readiness is seen: cancel then is a no-op.
	waitFor(ctx, ended, func() bool { return svc.Ready() })
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if _, finite := conn.(connectors.Finite); !finite && err != nil {
			t.Errorf("a cancelled service run returned %v, want nil", err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("the run did not end within 45 s of its cancel")
	}
	t.Logf("ended %v after cancel", time.Since(start).Round(time.Millisecond))
	if err := conn.Close(); err != nil {
		t.Errorf("Close after the run: %v", err)
	}
}

// String describes a move list briefly (for failures).
func String(ms []placement.Move) string {
	s := ""
	for _, m := range ms {
		s += fmt.Sprintf("%d:%s %s>%s ", m.Tick, m.Container, m.OldHost, m.NewHost)
	}
	return s
}
