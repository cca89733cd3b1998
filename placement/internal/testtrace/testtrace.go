// Package testtrace loads the shared traces as engine input for the
// engine's tests and benchmarks. It is test support only: the engine itself
// reads no files; the product reads traces through codecs and
// connectors/file.
package testtrace

import (
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"hots/placement"
	"hots/placement/internal/tracedata"
)

// Fields names the CSV columns.
type Fields struct {
	Tick, Container, Host string
	Metrics               []string
}

// Default is upstream's naming.
var Default = Fields{Tick: "timestamp", Container: "container_id", Host: "machine_id", Metrics: []string{"cpu"}}

// Trace is a whole trace in memory.
type Trace struct {
	Hosts []placement.Host
	Ticks []placement.TickBatch
}

// DataDir returns the shared data folder or skips the test.
func DataDir(tb testing.TB) string { return tracedata.Dir(tb) }

// Load reads <dir>/container_usage.csv and <dir>/node_meta.csv (first row
// of a duplicated host wins).
func Load(tb testing.TB, dir string, f Fields) *Trace {
	tb.Helper()
	rows, err := tracedata.ReadUsage(filepath.Join(dir, "container_usage.csv"), f.Tick, f.Container, f.Host, f.Metrics)
	if err != nil {
		tb.Fatal(err)
	}
	tr := &Trace{}
	byTick := map[int64][]placement.Sample{}
	for _, r := range rows {
		byTick[r.Tick] = append(byTick[r.Tick], placement.Sample{Tick: r.Tick, Container: r.Container, Host: r.Host, Values: r.Values})
	}
	seen := map[string]bool{}
	err = tracedata.Read(filepath.Join(dir, "node_meta.csv"), append([]string{f.Host}, f.Metrics...), func(col map[string]int, rec []string) error {
		h := placement.Host{Name: rec[col[f.Host]]}
		if seen[h.Name] {
			return nil
		}
		seen[h.Name] = true
		for _, m := range f.Metrics {
			v, err := strconv.ParseFloat(rec[col[m]], 64)
			if err != nil {
				return err
			}
			h.Capacity = append(h.Capacity, v)
		}
		tr.Hosts = append(tr.Hosts, h)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	ticks := make([]int64, 0, len(byTick))
	for t := range byTick {
		ticks = append(ticks, t)
	}
	sort.Slice(ticks, func(i, j int) bool { return ticks[i] < ticks[j] })
	for _, t := range ticks {
		tr.Ticks = append(tr.Ticks, placement.TickBatch{Tick: t, Samples: byTick[t]})
	}
	return tr
}

// Loads returns each host's load per metric per tick for a replayed trace,
// using the effective host (after moves) or, with baseline, the trace's.
func Loads(ticks []placement.TickBatch, baseline bool) map[int64]map[string][]float64 {
	out := map[int64]map[string][]float64{}
	for _, tb := range ticks {
		m := map[string][]float64{}
		for _, s := range tb.Samples {
			h := s.Host
			if baseline && s.TraceHost != "" {
				h = s.TraceHost
			}
			if m[h] == nil {
				m[h] = make([]float64, len(s.Values))
			}
			for k, v := range s.Values {
				m[h][k] += v
			}
		}
		out[tb.Tick] = m
	}
	return out
}
