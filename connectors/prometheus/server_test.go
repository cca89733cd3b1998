package prometheus_test

import (
	"bufio"
	"cmp"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The harness runs the real Prometheus server (Debian's package:
// /usr/bin/prometheus and promtool; .ci/run installs it) on a loopback
// port with a temporary storage folder.

func promBinaries(t testing.TB) (server, promtool string) {
	t.Helper()
	server, err1 := exec.LookPath("prometheus")
	promtool, err2 := exec.LookPath("promtool")
	if err1 != nil || err2 != nil {
		t.Skip("prometheus and promtool are not installed (apt-get install -y --no-install-recommends prometheus; .ci/run does): the Prometheus connector tests need a real server")
	}
	return server, promtool
}

// promServer is one Prometheus process over a storage folder.
type promServer struct {
	t       testing.TB
	bin     string
	storage string
	config  string
	port    int
	flags   []string
	cmd     *exec.Cmd
	exited  chan struct{}
	log     string
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newPromServer prepares a server over storage with a scrape config (""
// = nothing to scrape). lookback is the query lookback delta: below one
// step, a series that stops is not repeated by the server for 5 minutes
// (backfilled data has no staleness markers).
func newPromServer(t testing.TB, storage, scrapeYAML string, lookback time.Duration) *promServer {
	t.Helper()
	bin, _ := promBinaries(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if scrapeYAML == "" {
		scrapeYAML = "global: {scrape_interval: 15s}\n"
	}
	if err := os.WriteFile(cfg, []byte(scrapeYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &promServer{t: t, bin: bin, storage: storage, config: cfg, port: freePort(t), log: filepath.Join(dir, "prometheus.log"),
		flags: []string{"--storage.tsdb.retention.time=100y", "--query.lookback-delta=" + lookback.String()}}
	t.Cleanup(s.Stop)
	return s
}

func (s *promServer) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", s.port) }

// Start starts the server and waits until it is ready.
func (s *promServer) Start() {
	s.t.Helper()
	s.StartNoWait()
	s.WaitReady()
}

func (s *promServer) StartNoWait() {
	s.t.Helper()
	lf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	args := append([]string{"--config.file=" + s.config, "--storage.tsdb.path=" + s.storage,
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", s.port), "--log.level=warn"}, s.flags...)
	s.cmd = exec.Command(s.bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = lf, lf
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func(c *exec.Cmd, ch chan struct{}) { c.Wait(); lf.Close(); close(ch) }(s.cmd, s.exited)
}

func (s *promServer) WaitReady() {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.URL() + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-s.exited:
			b, _ := os.ReadFile(s.log)
			s.t.Fatalf("prometheus exited at start:\n%s", b)
		case <-time.After(100 * time.Millisecond):
		}
	}
	b, _ := os.ReadFile(s.log)
	s.t.Fatalf("prometheus not ready after 60 s:\n%s", b)
}

// Stop stops the server (SIGTERM, then SIGKILL after 20 s). Idempotent.
func (s *promServer) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	s.cmd = nil
}

// csvTrace is a trace folder read as strings.
type csvTrace struct {
	header []string
	rows   [][]string
	meta   [][]string // node_meta.csv with its header
}

func readCSV(t testing.TB, path string) [][]string {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	rows, err := csv.NewReader(bufio.NewReader(fh)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func loadTrace(t testing.TB, dir string) csvTrace {
	rows := readCSV(t, filepath.Join(dir, "container_usage.csv"))
	return csvTrace{header: rows[0], rows: rows[1:], meta: readCSV(t, filepath.Join(dir, "node_meta.csv"))}
}

// base is tick 0 of every backfilled trace: a fixed past time.
var base = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// omValue is a CSV value as an OpenMetrics sample: a value Prometheus
// cannot store (not a number) becomes NaN, which the decode stage
// refuses as it refuses the CSV's text.
func omValue(s string) string {
	if _, err := strconv.ParseFloat(s, 64); err != nil {
		return "NaN"
	}
	return s
}

// writeOpenMetrics writes a trace as OpenMetrics: trace_<metric> gauges
// labelled container_id and machine_id (an empty id is no label: that is
// what Prometheus makes of it), and trace_capacity_<metric> per host at
// every tick. Tick k is at base + k·step.
func writeOpenMetrics(t testing.TB, tr csvTrace, metrics []string, step time.Duration, w io.Writer) {
	t.Helper()
	col := map[string]int{}
	for i, h := range tr.header {
		col[h] = i
	}
	type series struct{ container, host string }
	bySeries := map[series][][]string{}
	var order []series
	var lastTick int64
	for _, r := range tr.rows {
		s := series{r[col["container_id"]], r[col["machine_id"]]}
		if _, ok := bySeries[s]; !ok {
			order = append(order, s)
		}
		bySeries[s] = append(bySeries[s], r)
		tk, _ := strconv.ParseInt(r[col["timestamp"]], 10, 64)
		lastTick = max(lastTick, tk)
	}
	ts := func(tick string) string {
		k, _ := strconv.ParseInt(tick, 10, 64)
		return strconv.FormatInt(base.Add(time.Duration(k)*step).Unix(), 10)
	}
	bw := bufio.NewWriter(w)
	for _, m := range metrics {
		fmt.Fprintf(bw, "# TYPE trace_%s gauge\n", m)
		for _, s := range order {
			rows := bySeries[s]
			slices.SortStableFunc(rows, func(a, b []string) int {
				x, _ := strconv.ParseInt(a[col["timestamp"]], 10, 64)
				y, _ := strconv.ParseInt(b[col["timestamp"]], 10, 64)
				return cmp.Compare(x, y)
			})
			var ls []string
			if s.container != "" {
				ls = append(ls, fmt.Sprintf(`container_id=%q`, s.container))
			}
			if s.host != "" {
				ls = append(ls, fmt.Sprintf(`machine_id=%q`, s.host))
			}
			labels := strings.Join(ls, ",")
			for _, r := range rows {
				fmt.Fprintf(bw, "trace_%s{%s} %s %s\n", m, labels, omValue(r[col[m]]), ts(r[col["timestamp"]]))
			}
		}
	}
	mcol := map[string]int{}
	for i, h := range tr.meta[0] {
		mcol[h] = i
	}
	for _, m := range metrics {
		fmt.Fprintf(bw, "# TYPE trace_capacity_%s gauge\n", m)
		for _, r := range tr.meta[1:] {
			for k := int64(0); k <= lastTick; k++ {
				fmt.Fprintf(bw, "trace_capacity_%s{machine_id=%q} %s %d\n", m, r[mcol["machine_id"]], r[mcol[m]], base.Add(time.Duration(k)*step).Unix())
			}
		}
	}
	fmt.Fprintln(bw, "# EOF")
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
}

// backfill turns a trace into a Prometheus storage folder with promtool
// and returns it with the trace's last tick.
// Every metric column of the trace is written (the configuration picks).
func backfill(t testing.TB, traceDir string, step time.Duration) (storage string, lastTick int64) {
	t.Helper()
	_, promtool := promBinaries(t)
	tr := loadTrace(t, traceDir)
	return backfillTrace(t, promtool, tr, tr.header[3:], step)
}

func backfillTrace(t testing.TB, promtool string, tr csvTrace, metrics []string, step time.Duration) (string, int64) {
	t.Helper()
	dir := t.TempDir()
	om := filepath.Join(dir, "trace.om")
	f, err := os.Create(om)
	if err != nil {
		t.Fatal(err)
	}
	writeOpenMetrics(t, tr, metrics, step, f)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	storage := filepath.Join(dir, "tsdb")
	out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", om, storage).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool create-blocks-from openmetrics: %v\n%s", err, out)
	}
	os.Remove(om)
	var last int64
	col := slices.Index(tr.header, "timestamp")
	for _, r := range tr.rows {
		k, _ := strconv.ParseInt(r[col], 10, 64)
		last = max(last, k)
	}
	return storage, last
}

// dataDir finds a shared trace: $HOTS_DATA, else <repo root>/../shared/data.
func dataDir(t testing.TB, rel string) string {
	t.Helper()
	b := os.Getenv("HOTS_DATA")
	if b == "" {
		dir, _ := os.Getwd()
		for dir != "/" {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				break
			}
			dir = filepath.Dir(dir)
		}
		b = filepath.Join(dir, "..", "shared", "data")
	}
	p := filepath.Join(b, rel)
	if _, err := os.Stat(filepath.Join(p, "container_usage.csv")); err != nil {
		t.Skipf("trace %s not available (set HOTS_DATA to the folder holding synthetic/ and upstream/): %v", rel, err)
	}
	return p
}

// historyParams are the connector parameters that read a backfilled trace.
func historyParams(url string, metrics []string, step time.Duration, lastTick int64) map[string]any {
	q, cq := map[string]any{}, map[string]any{}
	for _, m := range metrics {
		q[m], cq[m] = "trace_"+m, "trace_capacity_"+m
	}
	return map[string]any{
		"url": url, "queries": q, "capacity_queries": cq,
		"container_label": "container_id", "host_label": "machine_id",
		"step": step.String(), "start": base.Format(time.RFC3339),
		"end":       base.Add(time.Duration(lastTick) * step).Format(time.RFC3339),
		"retry_for": "30s", "query_timeout": "30s",
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// writeTrace writes a trace folder (the file replay reads it, backfill too).
func writeTrace(t testing.TB, tr csvTrace) string {
	t.Helper()
	dir := t.TempDir()
	for name, rows := range map[string][][]string{"container_usage.csv": append([][]string{tr.header}, tr.rows...), "node_meta.csv": tr.meta} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		w := csv.NewWriter(f)
		if err := w.WriteAll(rows); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return dir
}
