package pipeline

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"hots/codecs"
	"hots/config"
	"hots/connectors"
	"hots/placement"
	"hots/placement/kpi"
)

// dataDir finds an upstream trace: $HOTS_DATA, else <repo root>/../shared/data.
func dataDir(t testing.TB, name string) string {
	t.Helper()
	base := os.Getenv("HOTS_DATA")
	if base == "" {
		dir, _ := os.Getwd()
		for dir != "/" {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				break
			}
			dir = filepath.Dir(dir)
		}
		base = filepath.Join(dir, "..", "shared", "data")
	}
	p := filepath.Join(base, "upstream", name)
	if _, err := os.Stat(filepath.Join(p, "container_usage.csv")); err != nil {
		t.Skipf("trace %s not available (set HOTS_DATA): %v", name, err)
	}
	return p
}

func int64p(v int64) *int64 { return &v }

func traceConfig(t testing.TB, name string, out string) config.Config {
	var cfg config.Config
	cp := &cfg.Connector.Parameters
	setParam(&cfg, "data_folder", dataDir(t, name))
	setParam(&cfg, "outfile", filepath.Join(out, "moves.jsonl"))
	cfg.Clustering.Method = "kmeans"
	cfg.Clustering.NbClusters = 3
	cfg.Clustering.Parameters.RandomState = int64p(0)
	cfg.Problem.Parameters.Tol = 0.1
	cfg.Problem.Parameters.TolMove = 0.5
	switch name {
	case "thesis_ex_10": // upstream's sample config
		cp.SepTime, cp.TickIncrement, cp.WindowDuration = 3, 2, 3
	case "alibaba18_10n":
		cp.Metrics = []string{"cpu", "mem"}
		cp.SepTime, cp.TickIncrement, cp.WindowDuration = 10, 5, 10
	case "aw_05-03-21":
		cp.TickField, cp.IndividualField, cp.HostField, cp.Metrics = "time", "container_id", "host", []string{"value"}
		cp.SepTime, cp.TickIncrement, cp.WindowDuration = 20, 5, 10
	}
	return cfg
}

// traceRow is one usage row as an independent reader (encoding/csv, by
// header name, nothing from the pipeline) sees it.
type traceRow struct {
	tick            int64
	container, host string
	values          []float64
}

func readTrace(t testing.TB, cfg config.Config) []traceRow {
	t.Helper()
	f := UsageFields(cfg)
	fh, err := os.Open(filepath.Join(param(cfg, "data_folder"), "container_usage.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	r := csv.NewReader(bufio.NewReader(fh))
	header, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	var rows []traceRow
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		tk, err := strconv.ParseInt(rec[col[f.Tick]], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		row := traceRow{tick: tk, container: rec[col[f.Individual]], host: rec[col[f.Host]]}
		for _, m := range f.Metrics {
			v, err := strconv.ParseFloat(rec[col[m]], 64)
			if err != nil {
				t.Fatal(err)
			}
			row.values = append(row.values, v)
		}
		rows = append(rows, row)
	}
	return rows
}

// directRun feeds the same ticks straight to an engine (no router, no
// connector), re-attributing moved containers itself, and checks that each
// move's old_host is where the container was.
func directRun(t testing.TB, cfg config.Config, rows []traceRow) []placement.Move {
	t.Helper()
	fh, err := os.Open(filepath.Join(param(cfg, "data_folder"), "node_meta.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	f := UsageFields(cfg)
	meta, err := codecs.ReadNodeMeta(fh, "node_meta.csv", f.Host, f.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	p := EngineParams(cfg)
	p.Metrics = f.Metrics
	eng, err := placement.New(f.DefaultDomain, p, meta.Hosts)
	if err != nil {
		t.Fatal(err)
	}
	byTick := map[int64][]traceRow{}
	var ticks []int64
	for _, r := range rows {
		if _, ok := byTick[r.tick]; !ok {
			ticks = append(ticks, r.tick)
		}
		byTick[r.tick] = append(byTick[r.tick], r)
	}
	slices.Sort(ticks)
	movedTo := map[string]string{}
	var moves []placement.Move
	for _, tk := range ticks {
		b := placement.TickBatch{Domain: f.DefaultDomain, Tick: tk}
		hostAt := map[string]string{}
		for _, r := range byTick[tk] {
			s := placement.Sample{Domain: f.DefaultDomain, Tick: tk, Container: r.container, Host: r.host, Values: r.values}
			if h, ok := movedTo[r.container]; ok && h != r.host {
				s.Host, s.TraceHost = h, r.host
			}
			hostAt[r.container] = s.Host
			b.Samples = append(b.Samples, s)
		}
		d, err := eng.CloseTick(b)
		if err != nil {
			t.Fatal(err)
		}
		if d == nil {
			continue
		}
		for _, m := range d.Moves {
			if h, ok := hostAt[m.Container]; ok && h != m.OldHost {
				t.Errorf("move %+v: container was on %s at tick %d", m, h, tk)
			}
			movedTo[m.Container] = m.NewHost
		}
		moves = append(moves, d.Moves...)
	}
	return moves
}

func nodeCapacities(t testing.TB, cfg config.Config) map[string][]float64 {
	t.Helper()
	fh, err := os.Open(filepath.Join(param(cfg, "data_folder"), "node_meta.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	f := UsageFields(cfg)
	meta, err := codecs.ReadNodeMeta(fh, "node_meta.csv", f.Host, f.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	caps := map[string][]float64{}
	for _, h := range meta.Hosts {
		caps[h.Name] = h.Capacity
	}
	return caps
}

func readMoves(t testing.TB, path string) []placement.Move {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []placement.Move
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		m, err := codecs.DecodeMove(sc.Bytes())
		if err != nil {
			t.Fatalf("moves file line %d: %v", len(out)+1, err)
		}
		out = append(out, m)
	}
	return out
}

func TestReplayUpstreamTraces(t *testing.T) {
	for _, name := range []string{"thesis_ex_10", "alibaba18_10n", "aw_05-03-21"} {
		t.Run(name, func(t *testing.T) {
			cfg := traceConfig(t, name, t.TempDir())
			rows := readTrace(t, cfg)
			ticks, conts, hosts := map[int64]bool{}, map[string]bool{}, map[string]bool{}
			type cell struct {
				tick int64
				host string
			}
			baseline := map[cell][]float64{}
			for _, r := range rows {
				ticks[r.tick], conts[r.container], hosts[r.host] = true, true, true
				c := cell{r.tick, r.host}
				if baseline[c] == nil {
					baseline[c] = make([]float64, len(r.values))
				}
				for k, v := range r.values {
					baseline[c][k] += v
				}
			}

			rec := &Recorder{}
			res, _, err := replayFile(context.Background(), cfg, rec)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %+v", name, *res)
			want := Result{Samples: int64(len(rows)), Ticks: int64(len(ticks)), Domains: 1, Containers: len(conts),
				Source: connectors.Counts{Rows: int64(len(rows)), Ticks: int64(len(ticks))}}
			got := Result{Samples: res.Samples, Ticks: res.Ticks, Domains: res.Domains, Containers: res.Containers,
				Source: connectors.Counts{Rows: res.Source.Rows, Ticks: res.Source.Ticks}}
			if !reflect.DeepEqual(got, want) || res.Rejected != 0 || res.Late != 0 {
				t.Errorf("counts %+v (rejected %d, late %d), want %+v", got, res.Rejected, res.Late, want)
			}
			if res.Hosts < len(hosts) {
				t.Errorf("hosts %d, trace has %d", res.Hosts, len(hosts))
			}
			if len(rec.Ticks) != len(ticks) {
				t.Fatalf("TickClosed called %d times, want %d", len(rec.Ticks), len(ticks))
			}
			cells := 0
			for i, tl := range rec.Ticks {
				if i > 0 && tl.Tick <= rec.Ticks[i-1].Tick {
					t.Errorf("tick %d closed after %d", tl.Tick, rec.Ticks[i-1].Tick)
				}
				for h, load := range tl.Baseline {
					cells++
					exp := baseline[cell{tl.Tick, h}]
					for k := range load {
						if math.Abs(load[k]-exp[k]) > 1e-9*math.Max(1, math.Abs(exp[k])) {
							t.Errorf("tick %d host %s metric %d: baseline %v, trace sums to %v", tl.Tick, h, k, load[k], exp[k])
						}
					}
				}
			}
			if cells != len(baseline) {
				t.Errorf("%d baseline (tick, host) cells, trace has %d", cells, len(baseline))
			}

			// Moves: decodable, the same as a direct engine run over the same
			// ticks, and consistent (checked inside directRun).
			fileMoves := readMoves(t, param(cfg, "outfile"))
			direct := directRun(t, cfg, rows)
			if len(fileMoves) != len(direct) || (len(direct) > 0 && !reflect.DeepEqual(fileMoves, direct)) {
				t.Errorf("file pipeline moves (%d) differ from a direct engine run (%d)", len(fileMoves), len(direct))
			}
			if int64(len(fileMoves)) != res.Moves || len(rec.Moves) != len(fileMoves) {
				t.Errorf("moves: file %d, result %d, observer %d", len(fileMoves), res.Moves, len(rec.Moves))
			}
			t.Logf("%s: %d moves (direct run: %d), %d loops", name, len(fileMoves), len(direct), res.Loops)

			// KPIs: the actual loads are the trace re-attributed by the
			// moves (from the tick after each), and the run never has more
			// overloaded cells than the trace without moves, per metric.
			moved := map[string][]placement.Move{}
			for _, m := range fileMoves {
				moved[m.Container] = append(moved[m.Container], m)
			}
			actual := map[cell][]float64{}
			for _, r := range rows {
				h := r.host
				for _, m := range moved[r.container] {
					if r.tick > m.Tick {
						h = m.NewHost
					}
				}
				c := cell{r.tick, h}
				if actual[c] == nil {
					actual[c] = make([]float64, len(r.values))
				}
				for k, v := range r.values {
					actual[c][k] += v
				}
			}
			caps := nodeCapacities(t, cfg)
			metrics := UsageFields(cfg).Metrics
			withMoves, without := kpi.New(metrics, caps), kpi.New(metrics, caps)
			for _, tl := range rec.Ticks {
				for h, load := range tl.Actual {
					exp := actual[cell{tl.Tick, h}]
					for k := range load {
						if math.Abs(load[k]-exp[k]) > 1e-9*math.Max(1, math.Abs(exp[k])) {
							t.Errorf("tick %d host %s metric %d: load after moves %v, trace re-attributed sums to %v", tl.Tick, h, k, load[k], exp[k])
						}
					}
				}
				withMoves.AddTick(tl.Tick, tl.Actual)
				without.AddTick(tl.Tick, tl.Baseline)
			}
			a, b := withMoves.Totals(), without.Totals()
			for k := range metrics {
				if a.OverloadedCells[k] > b.OverloadedCells[k] {
					t.Errorf("metric %s: %d overloaded cells with moves, %d without", metrics[k], a.OverloadedCells[k], b.OverloadedCells[k])
				}
			}
			t.Logf("%s: overloaded cells %v -> %v, mean spread %v -> %v", name, b.OverloadedCells, a.OverloadedCells, b.MeanSpread, a.MeanSpread)
		})
	}
}
