package rundir

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/plot/plotutil"

	"hots/pipeline"
	"hots/placement"
	"hots/placement/kpi"
)

// run feeds a small hand-made run: 3 hosts, capacity cpu 10 / mem 100,
// 4 ticks; h1 is overloaded on cpu at ticks 1 and 2 in the trace, and the
// run's moves relieve it from tick 2 on.
func run(t *testing.T, dir string, plotHosts int) *Summary {
	t.Helper()
	w, err := New(Options{Dir: dir, Metrics: []string{"cpu", "mem"}, PlotHosts: plotHosts, Trace: "hand", ConfigDigest: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	w.SetCapacity(map[string][]float64{"h1": {10, 100}, "h2": {10, 100}, "h3": {10, 100}})
	type tick struct{ actual, baseline map[string][]float64 }
	ticks := []tick{
		{map[string][]float64{"h1": {8, 50}, "h2": {4, 20}, "h3": {1, 10}}, map[string][]float64{"h1": {8, 50}, "h2": {4, 20}, "h3": {1, 10}}},
		{map[string][]float64{"h1": {12, 50}, "h2": {4, 20}, "h3": {1, 10}}, map[string][]float64{"h1": {12, 50}, "h2": {4, 20}, "h3": {1, 10}}},
		{map[string][]float64{"h1": {7, 40}, "h2": {4, 20}, "h3": {4, 20}}, map[string][]float64{"h1": {11, 60}, "h2": {4, 20}, "h3": {0, 0}}},
		{map[string][]float64{"h1": {6, 40}, "h2": {5, 20}, "h3": {4, 20}}, map[string][]float64{"h1": {10, 60}, "h2": {5, 20}, "h3": {0, 0}}},
	}
	for i, tk := range ticks {
		w.TickClosed("default", int64(i), tk.actual, tk.baseline)
		if i == 1 {
			w.Decided(pipeline.LoopRecord{Domain: "default", Tick: 1, Kind: "initial", LoopSeconds: 0.002,
				Report: placement.LoopReport{WindowStart: 0, WindowEnd: 1, Containers: 5, Hosts: 3, Clusters: 2,
					ClusterGraph: placement.GraphStats{Nodes: 4, Edges: 3, MaxDegree: 2, MeanDeg: 1.5},
					Selected:     2, OverloadSelected: 1, Moves: 2, WindowOverloadsBefore: 1}},
				[]placement.Move{{Domain: "default", Tick: 1, Container: "c1", OldHost: "h1", NewHost: "h3"},
					{Domain: "default", Tick: 1, Container: "c2", OldHost: "h1", NewHost: "h3"}})
		}
		if i == 3 {
			w.Decided(pipeline.LoopRecord{Domain: "default", Tick: 3, Kind: "loop", LoopSeconds: 0.004,
				Report: placement.LoopReport{WindowStart: 2, WindowEnd: 3, Containers: 5, Hosts: 3, Clusters: 2,
					HeldBack: map[string]int{placement.LimitPerSourceHost: 2}}},
				[]placement.Move{{Domain: "default", Tick: 3, Container: "c1", OldHost: "h3", NewHost: "h2"}})
		}
	}
	w.Rejected(pipeline.Reject{Reason: "bad"})
	s, err := w.Close(RunInfo{Samples: 20, WallSeconds: 1.5})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestRunDirectory(t *testing.T) {
	dir := t.TempDir()
	s := run(t, dir, 8)

	metrics := readCSV(t, filepath.Join(dir, MetricsFile))
	if !reflect.DeepEqual(metrics[0], MetricsHeader) {
		t.Errorf("metrics header %v", metrics[0])
	}
	wantRows := [][]string{
		{"default", "1", "initial", "0", "1", "5", "3", "2", "4", "3", "2", "1.5", "0", "0", "0", "0", "0", "2", "1", "2", "1", "0", "0.002000", "0", "0", "0", "0", "0", "0"},
		{"default", "3", "loop", "2", "3", "5", "3", "2", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "1", "0", "0", "0.004000", "0", "2", "0", "0", "0", "0"},
	}
	if !reflect.DeepEqual(metrics[1:], wantRows) {
		t.Errorf("metrics rows\n got %v\nwant %v", metrics[1:], wantRows)
	}

	usage := readCSV(t, filepath.Join(dir, NodeUsageFile))
	base := readCSV(t, filepath.Join(dir, NodeUsageBaseline))
	if want := []string{"domain", "tick", "host", "cpu", "mem"}; !reflect.DeepEqual(usage[0], want) || !reflect.DeepEqual(base[0], want) {
		t.Errorf("usage headers %v / %v", usage[0], base[0])
	}
	if len(usage) != 13 || len(base) != 13 {
		t.Fatalf("usage rows %d / %d, want 12 + header", len(usage), len(base))
	}
	if got, want := usage[7], []string{"default", "2", "h1", "7", "40"}; !reflect.DeepEqual(got, want) {
		t.Errorf("usage row %v, want %v", got, want)
	}
	if got, want := base[7], []string{"default", "2", "h1", "11", "60"}; !reflect.DeepEqual(got, want) {
		t.Errorf("baseline row %v, want %v", got, want)
	}

	if s.Ticks != 4 || s.Hosts != 3 || s.Containers != 5 || s.Loops != 2 || s.Moves != 3 || s.ContainersMoved != 2 ||
		s.Rejects != 1 || s.Samples != 20 || s.LoopSecondsMax != 0.004 || s.Trace != "hand" || s.ConfigDigest != "abc" {
		t.Errorf("summary facts %+v", s)
	}
	if d := s.LoopSecondsMean - 0.003; d > 1e-12 || d < -1e-12 {
		t.Errorf("loop mean %v", s.LoopSecondsMean)
	}
	// Baseline: h1 cpu 12 (tick 1) and 11 (tick 2) exceed 10; 10 at tick 3
	// does not. With moves only tick 1 (before they apply) remains.
	if !reflect.DeepEqual(s.Baseline.OverloadedCells, []int{2, 0}) || !reflect.DeepEqual(s.Actual.OverloadedCells, []int{1, 0}) {
		t.Errorf("overloads %v → %v", s.Baseline.OverloadedCells, s.Actual.OverloadedCells)
	}
	if s.Baseline.Excess[0] != 3 || s.Actual.Excess[0] != 2 {
		t.Errorf("excess %v → %v", s.Baseline.Excess, s.Actual.Excess)
	}
	if s.Baseline.PeakUtil[0] != 1.2 || s.Baseline.HostsUsed != 3 {
		t.Errorf("peak %v hosts used %d", s.Baseline.PeakUtil, s.Baseline.HostsUsed)
	}

	// c1 and c2 leave the overloaded h1 at tick 1; c1 leaves h3, calm over
	// the 2-tick window, at tick 3. Window and horizon come from the
	// decisions: the loop's window and the ticks between decisions.
	if want := (kpi.Churn{Moves: 3, ContainersMoved: 2, ReMoves: 1, MovesOffCalm: 1, Window: 2, Horizon: 2}); s.Churn != want {
		t.Errorf("churn %+v, want %+v", s.Churn, want)
	}

	back, err := ReadSummary(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Errorf("summary.json round trip\n got %+v\nwant %+v", back, s)
	}
	var tb bytes.Buffer
	if err := back.WriteTable(&tb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"trace", "hand", "moves", "3 (2 containers)", "overloaded cells cpu", "2", "→ 1", "load variance mem", "wall 1.50s", "moves off calm hosts", "1 (no overload in the 2 ticks before)",
		"2 moves held back by max_moves_per_source_host", "overloaded cells of the loops' windows 1 → 0"} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tb.String())
		}
	}
}

// svgStats parses an SVG and counts the stroked paths per stroke colour and
// the legend texts.
func svgStats(t *testing.T, path string) (strokes map[string]int, texts []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	strokes = map[string]int{}
	d := xml.NewDecoder(bytes.NewReader(b))
	inText := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s is not XML: %v", path, err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			inText = e.Name.Local == "text"
			if e.Name.Local != "path" {
				continue
			}
			for _, a := range e.Attr {
				if a.Name.Local == "style" {
					for _, part := range strings.Split(a.Value, ";") {
						if c, ok := strings.CutPrefix(part, "stroke:"); ok {
							strokes[c]++
						}
					}
				}
			}
		case xml.CharData:
			if inText {
				texts = append(texts, string(e))
			}
		case xml.EndElement:
			inText = false
		}
	}
	return strokes, texts
}

func TestPlots(t *testing.T) {
	dir := t.TempDir()
	run(t, dir, 2)
	for _, name := range []string{"load_cpu_moves.svg", "load_cpu_baseline.svg", "load_mem_moves.svg", "load_mem_baseline.svg"} {
		strokes, texts := svgStats(t, filepath.Join(dir, PlotsDir, name))
		// Capacity: the line plus its legend thumbnail.
		if n := strokes["#DC0000"]; n != 2 {
			t.Errorf("%s: %d capacity strokes, want 2 (%v)", name, n, strokes)
		}
		// Two host series (line + thumbnail each), in plotutil's first colours.
		for i := range 2 {
			r, g, b, _ := plotutil.Color(i).RGBA()
			hex := fmt.Sprintf("#%02X%02X%02X", r>>8, g>>8, b>>8)
			if n := strokes[hex]; n != 2 {
				t.Errorf("%s: series %d (%s): %d strokes, want 2", name, i, hex, n)
			}
		}
		legend := map[string]bool{}
		for _, s := range texts {
			legend[s] = true
		}
		// The two busiest hosts are lines, h3 is the band.
		for _, want := range []string{"h1", "h2", "capacity", "other 1 hosts (min–max)"} {
			if !legend[want] {
				t.Errorf("%s: legend lacks %q (%v)", name, want, texts)
			}
		}
		if legend["h3"] {
			t.Errorf("%s: h3 should be in the band", name)
		}
	}
}

// TestLegendNames: host names with "_" read exactly in the legend (gonum's
// default LaTeX handler set them as subscripts).
func TestLegendNames(t *testing.T) {
	dir := t.TempDir()
	w, err := New(Options{Dir: dir, Metrics: []string{"cpu"}, Trace: "t"})
	if err != nil {
		t.Fatal(err)
	}
	w.SetCapacity(map[string][]float64{"n_1": {10}, "n_22": {10}})
	for tick := range int64(3) {
		l := map[string][]float64{"n_1": {float64(5 + tick)}, "n_22": {3}}
		w.TickClosed("default", tick, l, l)
	}
	if _, err := w.Close(RunInfo{}); err != nil {
		t.Fatal(err)
	}
	_, texts := svgStats(t, filepath.Join(dir, PlotsDir, "load_cpu_moves.svg"))
	legend := map[string]bool{}
	for _, s := range texts {
		legend[s] = true
	}
	for _, want := range []string{"n_1", "n_22", "capacity"} {
		if !legend[want] {
			t.Errorf("legend lacks %q: %q", want, texts)
		}
	}
}

// TestReport: report.html is self-contained, every value it shows with a
// data-key equals summary.json's, and every plot plots.json lists is
// inlined with its series in its legend.
func TestReport(t *testing.T) {
	dir := t.TempDir()
	run(t, dir, 2)
	b, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, bad := range []string{"http://", "https://", "<link", "src="} {
		if strings.Contains(page, bad) && !strings.Contains(page, "http://www.w3.org/") {
			t.Errorf("report.html refers to something outside: %q", bad)
		}
	}
	var sum map[string]any
	sb, _ := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err := json.Unmarshal(sb, &sum); err != nil {
		t.Fatal(err)
	}
	keys := regexp.MustCompile(`data-key="([^"]+)">([^<]*)<`).FindAllStringSubmatch(page, -1)
	if len(keys) < 30 {
		t.Fatalf("%d keyed values in report.html", len(keys))
	}
	for _, k := range keys {
		want, ok := SummaryValue(sum, k[1])
		if !ok {
			t.Errorf("%s: not in summary.json", k[1])
			continue
		}
		if !SameValue(k[2], want) {
			t.Errorf("%s: page %q, summary %v", k[1], k[2], want)
		}
	}
	var index []PlotInfo
	ib, _ := os.ReadFile(filepath.Join(dir, PlotsDir, PlotIndexFile))
	if err := json.Unmarshal(ib, &index); err != nil || len(index) != 5 {
		t.Fatalf("plots.json: %d plots, err %v", len(index), err)
	}
	for _, pi := range index {
		i := strings.Index(page, `id="chart-`+strings.TrimSuffix(pi.File, ".svg")+`"`)
		if i < 0 || !strings.Contains(page[i:], "<svg") {
			t.Errorf("%s not inlined", pi.File)
		}
		_, texts := svgStats(t, filepath.Join(dir, PlotsDir, pi.File))
		for _, s := range pi.Series {
			if !slices.Contains(texts, s) {
				t.Errorf("%s: series %q not in its legend %q", pi.File, s, texts)
			}
		}
	}
	if !strings.Contains(page, "moves held back by max_moves_per_source_host") {
		t.Error("held-back count missing")
	}
}
