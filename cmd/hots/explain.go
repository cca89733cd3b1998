package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"hots/pipeline/rundir"
	"hots/placement"
)

func init() {
	register(command{"explain", "tell one container's story in a run directory: its hosts, why each move, what its hosts' load did after", cmdExplain})
}

func cmdExplain(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("explain", stderr)
	movesFile := fs.String("moves", "", "moves log of the run (default RUN_DIR/moves.jsonl)")
	domain := fs.String("domain", "", "the container's domain (default: any)")
	if err := parse(fs, args); err != nil {
		return err
	}
	a, err := trimArgs(fs, 2, "RUN_DIR CONTAINER")
	if err != nil {
		return err
	}
	return explain(stdout, a[0], a[1], *domain, *movesFile)
}

// hostSeries is one host's load per tick, per metric.
type hostSeries map[int64][]float64

func explain(w io.Writer, dir, container, domain, movesFile string) error {
	all, err := runMoves(dir, movesFile)
	if err != nil {
		return err
	}
	var moves []placement.Move
	for _, m := range all {
		if m.Container == container && (domain == "" || m.Domain == domain) {
			moves = append(moves, m)
		}
	}
	window := 10
	if b, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil {
		var c struct {
			Connector struct {
				Parameters struct {
					WindowDuration int `json:"window_duration"`
				} `json:"parameters"`
			} `json:"connector"`
		}
		if json.Unmarshal(b, &c) == nil && c.Connector.Parameters.WindowDuration > 0 {
			window = c.Connector.Parameters.WindowDuration
		}
	}
	capacity, _ := readCapacity(filepath.Join(dir, rundir.CapacityFile))
	usage, first, last, err := readUsage(filepath.Join(dir, rundir.NodeUsageFile))
	if err != nil {
		return err
	}
	if len(moves) == 0 {
		fmt.Fprintf(w, "%s: no move in this run (ticks %d..%d)\n", container, first, last)
		return nil
	}
	dry := ""
	if moves[0].DryRun {
		dry = " (dry run: decided and published, never applied)"
	}
	fmt.Fprintf(w, "%s: %d moves%s\n", container, len(moves), dry)
	story := fmt.Sprintf("  hosts: %s (ticks %d..%d)", moves[0].OldHost, first, moves[0].Tick)
	for k, m := range moves {
		end := last
		if k+1 < len(moves) {
			end = moves[k+1].Tick
		}
		story += fmt.Sprintf(" → %s (%d..%d)", m.NewHost, m.Tick+1, end)
	}
	fmt.Fprintln(w, story)
	for _, m := range moves {
		fmt.Fprintf(w, "\n  tick %d: %s → %s (%s)\n", m.Tick, m.OldHost, m.NewHost, m.Reason)
		if m.Why != "" {
			fmt.Fprintf(w, "    why: %s\n", m.Why)
		}
		fmt.Fprintf(w, "    forecast: %s peak %.2f → %.2f, %s peak %.2f → %.2f\n", m.NewHost, m.TargetPeakBefore, m.TargetPeakAfter, m.OldHost, m.SourcePeakBefore, m.SourcePeakAfter)
		for _, h := range []string{m.OldHost, m.NewHost} {
			key := m.Domain + "\x00" + h
			before := peakUtil(usage[key], capacity[h], m.Tick-int64(window)+1, m.Tick)
			after := peakUtil(usage[key], capacity[h], m.Tick+1, m.Tick+int64(window))
			fmt.Fprintf(w, "    measured: %s peak %s over ticks %d..%d, %s over %d..%d\n", h, before, m.Tick-int64(window)+1, m.Tick, after, m.Tick+1, m.Tick+int64(window))
		}
	}
	return nil
}

// peakUtil is the host's largest load/capacity over metrics and ticks
// [from, to], as text ("-" without data; load when capacity is unknown).
func peakUtil(s hostSeries, cp []float64, from, to int64) string {
	best, seen, raw := 0.0, false, false
	for t := from; t <= to; t++ {
		v, ok := s[t]
		if !ok {
			continue
		}
		seen = true
		for m, x := range v {
			if m < len(cp) && cp[m] > 0 {
				best = math.Max(best, x/cp[m])
			} else {
				best, raw = math.Max(best, x), true
			}
		}
	}
	switch {
	case !seen:
		return "-"
	case raw:
		return strconv.FormatFloat(best, 'f', 2, 64) + " (load: capacity unknown)"
	}
	return strconv.FormatFloat(best, 'f', 2, 64)
}

func readCapacity(path string) (map[string][]float64, error) {
	recs, err := readAll(path)
	if err != nil {
		return nil, err
	}
	out := map[string][]float64{}
	for _, r := range recs[min(1, len(recs)):] {
		for _, f := range r[1:] {
			v, _ := strconv.ParseFloat(f, 64)
			out[r[0]] = append(out[r[0]], v)
		}
	}
	return out, nil
}

// readUsage reads node_usage.csv by domain\x00host, and its tick range.
func readUsage(path string) (map[string]hostSeries, int64, int64, error) {
	recs, err := readAll(path)
	if err != nil {
		return nil, 0, 0, err
	}
	out := map[string]hostSeries{}
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	for _, r := range recs[min(1, len(recs)):] {
		if len(r) < 3 {
			continue
		}
		t, err := strconv.ParseInt(r[1], 10, 64)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("%s: tick %q", path, r[1])
		}
		first, last = min(first, t), max(last, t)
		key := r[0] + "\x00" + r[2]
		if out[key] == nil {
			out[key] = hostSeries{}
		}
		v := make([]float64, 0, len(r)-3)
		for _, f := range r[3:] {
			x, _ := strconv.ParseFloat(f, 64)
			v = append(v, x)
		}
		out[key][t] = v
	}
	return out, first, last, nil
}

func readAll(path string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return csv.NewReader(f).ReadAll()
}
