package prometheus_test

import (
	"context"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"hots/config"
	"hots/connectors"
	"hots/connectors/connectortest"
	_ "hots/connectors/file"
	"hots/connectors/prometheus"
	"hots/pipeline"
	"hots/placement"
)

const step = time.Minute

// lookback is below one step: a backfilled series that ends is not
// repeated by the server (there are no staleness markers in a backfill).
const lookback = 30 * time.Second

// historyServer backfills a trace folder and serves it.
func historyServer(t testing.TB, trace string) (*promServer, int64) {
	t.Helper()
	storage, last := backfill(t, trace, step)
	s := newPromServer(t, storage, "", lookback)
	s.Start()
	return s, last
}

func openHistory(t testing.TB, url string, metrics []string, last int64, env connectors.Env, extra map[string]any) connectors.Connector {
	t.Helper()
	p := historyParams(url, metrics, step, last)
	for k, v := range extra {
		p[k] = v
	}
	conn, _, err := connectors.Open(prometheus.Name, connectors.Raw{Parameters: p}, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func readMoves(t testing.TB, path string) []placement.Move { return connectortest.MovesFile(t, path) }

func rejectRows(t testing.TB, path string) [][]string { return connectortest.RejectsFile(t, path) }

func paths(conn connectors.Connector) (moves, rejects string) {
	type pather interface{ Paths() (string, string) }
	if h, ok := conn.(pather); ok {
		return h.Paths()
	}
	return "", ""
}

// TestConformance runs the connector suite in history mode: each trace
// the suite generates is backfilled into a real Prometheus, which the
// connector replays. max_gap is 0: the suite's bad row with an empty
// container id leaves its container without a sample at that tick, a gap
// the connector would otherwise bridge (TestGaps checks that rule).
func TestConformance(t *testing.T) {
	connectortest.Run(t, connectortest.Harness{
		Open: func(t *testing.T, trace string, env connectors.Env) (connectors.Connector, connectortest.Feed) {
			s, last := historyServer(t, trace)
			return openHistory(t, s.URL(), env.Fields.Metrics, last, env, map[string]any{"max_gap": 0}), nil
		},
		Published: func(t *testing.T, conn connectors.Connector) []placement.Move {
			m, _ := paths(conn)
			return readMoves(t, m)
		},
		Poisoned: func(t *testing.T, conn connectors.Connector) int {
			_, r := paths(conn)
			return len(rejectRows(t, r))
		},
	})
}

// traceConfig is the configuration a shared trace is compared with.
func traceConfig(t testing.TB, name string) config.Config {
	t.Helper()
	cfg, _, err := config.Load(config.LoadOptions{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	cp := &cfg.Connector.Parameters
	cp.Extra = nil
	cfg.Clustering.Method, cfg.Clustering.NbClusters = "kmeans", 3
	rs := int64(0)
	cfg.Clustering.Parameters.RandomState = &rs
	cfg.Problem.Parameters.Tol, cfg.Problem.Parameters.TolMove = 0.1, 0.5
	switch name {
	case "synthetic/syn_n200": // upstream's synthetic measurements
		cp.Metrics = []string{"cpu"}
		cp.SepTime, cp.TickIncrement, cp.WindowDuration = 33, 5, 10
	case "upstream/alibaba18_10n": // as placement's trace tests
		cp.Metrics = []string{"cpu", "mem"}
		cp.SepTime, cp.TickIncrement, cp.WindowDuration = 16, 3, 6
		cfg.Problem.Parameters.TolMove = 0.2
	}
	return *cfg
}

// fileReplay replays a trace folder with the file connector, as
// integration's harness does, and returns its moves in order with what
// the run observed (tick loads).
func fileReplay(t testing.TB, cfg config.Config, trace string) ([]placement.Move, *pipeline.Recorder) {
	t.Helper()
	out := t.TempDir() + "/moves.jsonl"
	raw := pipeline.RawConnector(cfg)
	raw.Parameters["data_folder"], raw.Parameters["outfile"] = trace, out
	conn, _, err := connectors.Open("file", raw, pipeline.Env(cfg, nil))
	if err != nil {
		t.Fatal(err)
	}
	rec := &pipeline.Recorder{}
	if _, err := pipeline.Run(context.Background(), cfg, conn, pipeline.Options{Observer: rec}); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil { // the run leaves its connector to the caller
		t.Fatal(err)
	}
	return readMoves(t, out), rec
}

func historyRun(t testing.TB, cfg config.Config, url string, last int64, extra map[string]any) ([]placement.Move, *pipeline.Result, *pipeline.Recorder, connectors.Connector) {
	t.Helper()
	env := pipeline.Env(cfg, nil)
	env.RunDir = t.TempDir()
	conn := openHistory(t, url, cfg.Connector.Parameters.Metrics, last, env, extra)
	rec := &pipeline.Recorder{}
	res, err := pipeline.Run(ctxTimeout(t, 5*time.Minute), cfg, conn, pipeline.Options{Observer: rec})
	if err != nil {
		t.Fatalf("prometheus replay: %v", err)
	}
	if err := conn.Close(); err != nil { // flushes the moves and rejects files
		t.Fatal(err)
	}
	m, _ := paths(conn)
	return readMoves(t, m), res, rec, conn
}

// sameTickLoads compares two runs' closed ticks: same ticks in order, and
// per host the same loads of every metric, with and without the moves
// (to rounding: a sum's order follows the input's).
func sameTickLoads(t testing.TB, got, want *pipeline.Recorder) {
	t.Helper()
	if len(got.Ticks) != len(want.Ticks) {
		t.Fatalf("%d ticks closed, the file replay closed %d", len(got.Ticks), len(want.Ticks))
	}
	eq := func(a, b map[string][]float64) bool {
		if len(a) != len(b) {
			return false
		}
		for h, x := range a {
			y, ok := b[h]
			if !ok || len(x) != len(y) {
				return false
			}
			for k := range x {
				if math.Abs(x[k]-y[k]) > 1e-9*math.Max(1, math.Abs(y[k])) {
					return false
				}
			}
		}
		return true
	}
	for i, g := range got.Ticks {
		w := want.Ticks[i]
		if g.Tick != w.Tick || g.Domain != w.Domain || !eq(g.Actual, w.Actual) || !eq(g.Baseline, w.Baseline) {
			t.Fatalf("tick #%d: %s/%d actual %v baseline %v; the file replay: %s/%d %v %v", i, g.Domain, g.Tick, g.Actual, g.Baseline, w.Domain, w.Tick, w.Actual, w.Baseline)
		}
	}
}

// TestHistorySameMovesAsFileReplay: a shared trace backfilled into
// Prometheus and replayed through the connector decides the very moves
// (ids and contents, in order) of a file replay of the trace, and every
// closed tick has the same host loads in every metric. alibaba18_10n (two
// metrics) decides no move under any configuration tried (its hosts are
// far from full), so there the loads are what is compared.
func TestHistorySameMovesAsFileReplay(t *testing.T) {
	for _, name := range []string{"synthetic/syn_n200", "upstream/alibaba18_10n"} {
		t.Run(name, func(t *testing.T) {
			trace := dataDir(t, name)
			cfg := traceConfig(t, name)
			want, wantRec := fileReplay(t, cfg, hostOrdered(t, trace))
			if len(want) == 0 && name == "synthetic/syn_n200" {
				t.Fatal("the file replay decides no move: the comparison would prove nothing")
			}
			s, last := historyServer(t, trace)
			// Small chunks: the replay spans several range queries.
			got, res, rec, _ := historyRun(t, cfg, s.URL(), last, map[string]any{"max_points_per_series": 17})
			sameTickLoads(t, rec, wantRec)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("moves differ from the file replay:\n got %d %s\nwant %d %s", len(got), connectortest.String(got), len(want), connectortest.String(want))
			}
			if res.Rejected != 0 {
				t.Errorf("%d rejected, want 0", res.Rejected)
			}
			t.Logf("%s: %d moves, %d samples, %d ticks", name, len(got), res.Samples, res.Ticks)
		})
	}
}

// hostOrdered is the trace with node_meta's rows in the order the
// connector gives hosts (prometheus.NaturalCompare): the engine's
// decisions depend on the host order, and Prometheus has none. The trace
// itself is used when it is in that order already; else a temporary
// folder with the usage CSV linked and node_meta rewritten.
func hostOrdered(t testing.TB, trace string) string {
	t.Helper()
	meta := readCSV(t, filepath.Join(trace, "node_meta.csv"))
	rows := slices.Clone(meta[1:])
	col := slices.Index(meta[0], "machine_id")
	slices.SortStableFunc(rows, func(a, b []string) int { return prometheus.NaturalCompare(a[col], b[col]) })
	if reflect.DeepEqual(rows, meta[1:]) {
		return trace
	}
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(trace, "container_usage.csv"), filepath.Join(dir, "container_usage.csv")); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "node_meta.csv"))
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.WriteAll(append([][]string{meta[0]}, rows...))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}
