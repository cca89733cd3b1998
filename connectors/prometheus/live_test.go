package prometheus_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientprom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"hots/config"
	"hots/connectors"
	"hots/connectors/connectortest"
	"hots/connectors/file/sample"
	"hots/connectors/prometheus"
	"hots/pipeline"
)

// exporter serves a trace's current tick as gauges (trace_<metric> per
// container, trace_capacity_<metric> per host), each sample stamped with
// its tick's time origin + k·step. The tick follows the wall clock but
// never skips one that no scrape has seen yet, so a slow machine delays
// a tick rather than losing it.
type exporter struct {
	tr      csvTrace
	metrics []string
	origin  time.Time
	step    time.Duration
	last    int64
	byTick  map[int64][][]string
	col     map[string]int

	mu     sync.Mutex
	served int64 // last tick a scrape saw (-1: none)
	descs  map[string]*clientprom.Desc
}

func newExporter(tr csvTrace, metrics []string, origin time.Time, step time.Duration) *exporter {
	e := &exporter{tr: tr, metrics: metrics, origin: origin, step: step, byTick: map[int64][][]string{}, col: map[string]int{}, served: -1,
		descs: map[string]*clientprom.Desc{}}
	for i, h := range tr.header {
		e.col[h] = i
	}
	for _, r := range tr.rows {
		k, _ := strconv.ParseInt(r[e.col["timestamp"]], 10, 64)
		e.byTick[k] = append(e.byTick[k], r)
		e.last = max(e.last, k)
	}
	for _, m := range metrics {
		e.descs["trace_"+m] = clientprom.NewDesc("trace_"+m, "usage", []string{"container_id", "machine_id"}, nil)
		e.descs["trace_capacity_"+m] = clientprom.NewDesc("trace_capacity_"+m, "capacity", []string{"machine_id"}, nil)
	}
	return e
}

func (e *exporter) Describe(ch chan<- *clientprom.Desc) {
	for _, d := range e.descs {
		ch <- d
	}
}

// Collect is one scrape.
func (e *exporter) Collect(ch chan<- clientprom.Metric) {
	e.mu.Lock()
	now := time.Since(e.origin)
	if e.origin.IsZero() || now < 0 {
		e.mu.Unlock()
		return
	}
	k := min(int64(now/e.step), e.served+1, e.last)
	e.served = k
	e.mu.Unlock()
	ts := e.origin.Add(time.Duration(k) * e.step)
	for _, r := range e.byTick[k] {
		for _, m := range e.metrics {
			v, _ := strconv.ParseFloat(r[e.col[m]], 64)
			ch <- clientprom.NewMetricWithTimestamp(ts, clientprom.MustNewConstMetric(e.descs["trace_"+m], clientprom.GaugeValue, v, r[e.col["container_id"]], r[e.col["machine_id"]]))
		}
	}
	mc := map[string]int{}
	for i, h := range e.tr.meta[0] {
		mc[h] = i
	}
	for _, r := range e.tr.meta[1:] {
		for _, m := range e.metrics {
			v, _ := strconv.ParseFloat(r[mc[m]], 64)
			ch <- clientprom.NewMetricWithTimestamp(ts, clientprom.MustNewConstMetric(e.descs["trace_capacity_"+m], clientprom.GaugeValue, v, r[mc["machine_id"]]))
		}
	}
}

// Begin sets tick 0's time.
func (e *exporter) Begin(origin time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.origin = origin
}

func (e *exporter) Served() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.served
}

// serve starts the exporter's HTTP endpoint and returns its address.
func (e *exporter) serve(t testing.TB) string {
	t.Helper()
	reg := clientprom.NewRegistry()
	reg.MustRegister(e)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// liveTrace is a small generated trace the engine moves containers in.
func liveTrace(t testing.TB) (string, config.Config) {
	t.Helper()
	tr, err := sample.Generate(sample.Params{Containers: 24, Hosts: 4, Ticks: 26, Seed: 7, Period: 12})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := tr.Write(dir); err != nil {
		t.Fatal(err)
	}
	return dir, connectortest.Config()
}

// TestLiveSameMovesAsFileReplay: an exporter serves the trace tick by
// tick, a real Prometheus scrapes it every 100 ms, and hots follows the
// server in live mode (a tick every 500 ms): its moves are the file
// replay's, ids and contents.
func TestLiveSameMovesAsFileReplay(t *testing.T) {
	promBinaries(t)
	trace, cfg := liveTrace(t)
	metrics := cfg.Connector.Parameters.Metrics
	want, wantRec := fileReplay(t, cfg, hostOrdered(t, trace))
	if len(want) == 0 {
		t.Fatal("the file replay decides no move: the comparison would prove nothing")
	}
	const liveStep = 500 * time.Millisecond
	exp := newExporter(loadTrace(t, trace), metrics, time.Time{}, liveStep)
	addr := exp.serve(t)
	s := newPromServer(t, t.TempDir(), fmt.Sprintf(`global: {scrape_interval: 100ms, scrape_timeout: 90ms}
scrape_configs:
  - job_name: trace
    static_configs: [{targets: [%q]}]
`, addr), 400*time.Millisecond)
	s.Start()
	// Prometheus starts scraping a few seconds after it is ready: tick 0
	// begins once it has scraped the exporter.
	waitScraped(t, s.URL())
	origin := time.Now().Add(time.Second).Truncate(liveStep)
	exp.Begin(origin)

	env := pipeline.Env(cfg, nil)
	moves := t.TempDir() + "/moves.jsonl"
	p := historyParams(s.URL(), metrics, liveStep, 0)
	delete(p, "end")
	p["start"] = strconv.FormatFloat(float64(origin.UnixMilli())/1000, 'f', 3, 64)
	p["lag"], p["outfile"], p["max_gap"] = "1s", moves, 1
	conn, _, err := connectors.Open(prometheus.LiveName, connectors.Raw{Parameters: p}, env)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, finite := conn.(connectors.Finite); finite {
		t.Fatal("live mode must not be Finite")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rec := &pipeline.Recorder{}
	done := make(chan error, 1)
	go func() {
		_, err := pipeline.Run(ctx, cfg, conn, pipeline.Options{Observer: rec})
		done <- err
	}()
	lastTick := wantRec.Ticks[len(wantRec.Ticks)-1].Tick
	for {
		nt, _ := rec.Sizes()
		if nt >= len(wantRec.Ticks) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the live run ended early: %v", err)
		case <-ctx.Done():
			t.Fatalf("%d of %d ticks closed before the timeout (exporter at tick %d)", nt, len(wantRec.Ticks), exp.Served())
		case <-time.After(100 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("live run: %v", err)
	}
	got := readMoves(t, moves)
	sameTickLoads(t, &pipeline.Recorder{Ticks: rec.Ticks[:len(wantRec.Ticks)]}, wantRec)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("live moves differ from the file replay:\n got %d %s\nwant %d %s", len(got), connectortest.String(got), len(want), connectortest.String(want))
	}
	t.Logf("live: %d moves over ticks 0–%d", len(got), lastTick)
}

// waitScraped waits until the server has scraped its target (up == 1).
func waitScraped(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/api/v1/query?query=up")
		if err == nil {
			var b [4096]byte
			n, _ := resp.Body.Read(b[:])
			resp.Body.Close()
			if strings.Contains(string(b[:n]), `"1"]`) {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("prometheus never scraped the exporter")
}
