package prometheus_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hots/connectors"
	"hots/connectors/connectortest"
	"hots/connectors/prometheus"
	"hots/pipeline"
)

const syn = "synthetic/syn_n200"

// editTrace returns syn_n200 changed by edit, as a folder.
func editTrace(t *testing.T, edit func(tr *csvTrace)) string {
	t.Helper()
	tr := loadTrace(t, dataDir(t, syn))
	tr.rows = slices.Clone(tr.rows)
	edit(&tr)
	return writeTrace(t, tr)
}

func tickOf(r []string) int64 { k, _ := strconv.ParseInt(r[0], 10, 64); return k }

// TestServerDownAtStartAndRestartedMidRun: the replay starts with the
// server down (Initial retries), and the server is stopped and started
// again in the middle of the range (the chunk query retries): the moves
// are still the file replay's.
func TestServerDownAtStartAndRestartedMidRun(t *testing.T) {
	trace := dataDir(t, syn)
	cfg := traceConfig(t, syn)
	want, _ := fileReplay(t, cfg, trace)
	storage, last := backfill(t, trace, step)
	s := newPromServer(t, storage, "", lookback)

	env := pipeline.Env(cfg, nil)
	env.RunDir = t.TempDir()
	conn := openHistory(t, s.URL(), cfg.Connector.Parameters.Metrics, last, env, map[string]any{"max_points_per_series": 10, "retry_for": "90s"})
	var usage atomic.Int32
	restarted := make(chan struct{})
	prometheus.SetBeforeQuery(conn, func(q string) {
		if q == "trace_cpu" && usage.Add(1) == 5 { // the fifth chunk
			s.Stop()
			go func() { time.Sleep(time.Second); s.StartNoWait(); close(restarted) }()
		}
	})
	go func() { time.Sleep(time.Second); s.StartNoWait() }()
	res, err := pipeline.Run(ctxTimeout(t, 3*time.Minute), cfg, conn, pipeline.Options{})
	if err != nil {
		t.Fatalf("replay across a server down at start and restarted: %v", err)
	}
	<-restarted
	m, _ := paths(conn)
	if got := readMoves(t, m); !reflect.DeepEqual(got, want) {
		t.Errorf("moves differ from the file replay:\n got %d %s\nwant %d", len(got), connectortest.String(got), len(want))
	}
	if res.Samples != int64(len(loadTrace(t, trace).rows)) {
		t.Errorf("%d samples, want every row of the trace", res.Samples)
	}
}

// TestQueryErrors: a query the server refuses, and a server that never
// answers, end the replay with an error naming the query (no panic, no
// hang).
func TestQueryErrors(t *testing.T) {
	trace := dataDir(t, syn)
	cfg := traceConfig(t, syn)
	s, last := historyServer(t, trace)
	for name, c := range map[string]struct {
		url   string
		query string
		want  string
	}{
		"bad PromQL":  {s.URL(), "sum by (machine_id (trace_cpu", "sum by (machine_id (trace_cpu"},
		"server down": {"http://127.0.0.1:1", "trace_cpu", "trace_capacity_cpu"},
	} {
		t.Run(name, func(t *testing.T) {
			env := pipeline.Env(cfg, nil)
			env.RunDir = t.TempDir()
			conn := openHistory(t, c.url, []string{"cpu"}, last, env, map[string]any{"queries": map[string]any{"cpu": c.query}, "retry_for": "1s"})
			_, err := pipeline.Run(ctxTimeout(t, time.Minute), cfg, conn, pipeline.Options{})
			var qe *prometheus.QueryError
			if err == nil || !errors.As(err, &qe) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want a QueryError naming %q", err, c.want)
			}
			t.Logf("%v", err)
		})
	}
}

// TestHostlessSeriesVanishingAndNewContainers: a series without the host
// label is set aside once, with the reason; a container whose series
// stops is gone from then on and one that appears is placed, exactly as
// a file replay of the same trace (where the host-less row is refused
// too) decides.
func TestHostlessSeriesVanishingAndNewContainers(t *testing.T) {
	dir := editTrace(t, func(tr *csvTrace) {
		var out [][]string
		for _, r := range tr.rows {
			k := tickOf(r)
			if r[1] == "c_1" && k >= 50 {
				continue // c_1 is gone from tick 50 on
			}
			out = append(out, r)
			if r[1] == "c_2" && k >= 60 { // c_new appears at tick 60 on n_3
				out = append(out, []string{r[0], "c_new", "n_3", r[3]})
			}
		}
		out = append(out, []string{"40", "c_orphan", "", "1.5"}) // no host
		tr.rows = out
	})
	cfg := traceConfig(t, syn)
	want, wantRec := fileReplay(t, cfg, dir)
	s, last := historyServer(t, dir)
	got, res, rec, conn := historyRun(t, cfg, s.URL(), last, nil)
	sameTickLoads(t, rec, wantRec)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("moves differ from the file replay:\n got %d %s\nwant %d %s", len(got), connectortest.String(got), len(want), connectortest.String(want))
	}
	_, rj := paths(conn)
	rows := rejectRows(t, rj)
	if res.Rejected != 1 || len(rows) != 1 || !strings.Contains(rows[0][3], `no "machine_id" label`) || !strings.Contains(rows[0][4], "c_orphan") {
		t.Errorf("rejected %d, rejects %q: want the host-less series once, with the reason", res.Rejected, rows)
	}
}

// TestGaps: a series missing for max_gap steps and then back is filled
// with its last value (the file replay of the trace with those rows
// filled decides the same); one missing longer is not filled.
func TestGaps(t *testing.T) {
	var filled [][]string
	dir := editTrace(t, func(tr *csvTrace) {
		var out [][]string
		var c3 []string
		for _, r := range tr.rows {
			k := tickOf(r)
			if r[1] == "c_3" && k == 39 {
				c3 = r
			}
			if (r[1] == "c_3" && (k == 40 || k == 41)) || (r[1] == "c_4" && k >= 40 && k <= 42) {
				if r[1] == "c_3" {
					filled = append(filled, []string{r[0], c3[1], c3[2], c3[3]})
				}
				continue
			}
			out = append(out, r)
		}
		tr.rows = out
	})
	ref := editTrace(t, func(tr *csvTrace) {
		var out [][]string
		for _, r := range tr.rows {
			k := tickOf(r)
			if r[1] == "c_4" && k >= 40 && k <= 42 {
				continue
			}
			if r[1] == "c_3" && (k == 40 || k == 41) {
				r = filled[k-40]
			}
			out = append(out, r)
		}
		tr.rows = out
	})
	cfg := traceConfig(t, syn)
	want, wantRec := fileReplay(t, cfg, ref)
	s, last := historyServer(t, dir)
	got, _, rec, _ := historyRun(t, cfg, s.URL(), last, map[string]any{"max_gap": 2, "max_points_per_series": 41})
	sameTickLoads(t, rec, wantRec)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("moves differ from the file replay of the gap-filled trace:\n got %d %s\nwant %d %s", len(got), connectortest.String(got), len(want), connectortest.String(want))
	}
}

// TestCapacityMissingForAHost: a host of the usage without a capacity
// answer is an error naming it.
func TestCapacityMissingForAHost(t *testing.T) {
	dir := editTrace(t, func(tr *csvTrace) {
		tr.meta = slices.DeleteFunc(slices.Clone(tr.meta), func(r []string) bool { return r[0] == "n_5" })
	})
	cfg := traceConfig(t, syn)
	s, last := historyServer(t, dir)
	env := pipeline.Env(cfg, nil)
	env.RunDir = t.TempDir()
	conn := openHistory(t, s.URL(), []string{"cpu"}, last, env, nil)
	_, err := conn.Initial(context.Background())
	if err == nil || !strings.Contains(err.Error(), `"n_5"`) {
		t.Fatalf("Initial: %v, want an error naming host n_5", err)
	}
	t.Log(err)
}

// TestArgs: defaults fit cAdvisor + kube-state-metrics; every bad value
// is named by its key.
func TestArgs(t *testing.T) {
	d, err := connectors.Decode(prometheus.Name, connectors.Raw{Parameters: map[string]any{"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"}})
	if err != nil {
		t.Fatal(err)
	}
	a := d.Args.(*prometheus.Args)
	if a.ContainerLabel != "pod" || a.HostLabel != "node" || a.Step != time.Minute || !strings.Contains(a.Queries["cpu"], "container_cpu_usage_seconds_total") ||
		!strings.Contains(a.CapacityQueries["mem"], "kube_node_status_allocatable") || a.MaxPoints != 11000 {
		t.Errorf("defaults %+v", a)
	}
	_, err = connectors.Decode(prometheus.Name, connectors.Raw{Parameters: map[string]any{"url": "ftp://x", "step": "0s", "end": "yesterday"}})
	for _, k := range []string{"connector.parameters.url", "connector.parameters.step", "connector.parameters.start", "connector.parameters.end"} {
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("history: %v does not name %s", err, k)
		}
	}
	_, err = connectors.Decode(prometheus.LiveName, connectors.Raw{Parameters: map[string]any{"end": "2024-01-02T00:00:00Z"}})
	if err == nil || !strings.Contains(err.Error(), "connector.parameters.end") {
		t.Errorf("live with an end: %v", err)
	}
	if _, err := connectors.Decode(prometheus.LiveName, connectors.Raw{Parameters: map[string]any{}}); err != nil {
		t.Errorf("live with the defaults: %v", err)
	}
	env := pipeline.Env(traceConfig(t, "upstream/alibaba18_10n"), nil)
	env.RunDir = t.TempDir()
	_, _, err = connectors.Open(prometheus.Name, connectors.Raw{Parameters: map[string]any{"start": "0", "end": "60", "queries": map[string]any{"cpu": ""}}}, env)
	if err == nil || !strings.Contains(err.Error(), "connector.parameters.queries.cpu") {
		t.Errorf("a metric without a query: %v", err)
	}
}
