package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"hots/config"
	"hots/connectors"
	"hots/connectors/file/sample"
	"hots/pipeline/rundir"
)

func defaultConfig(t *testing.T, dir string) (config.Config, *connectors.Decoded) {
	t.Helper()
	cfg, _, err := config.Load(config.LoadOptions{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Reporting.ResultsFolder = dir
	dec, err := connectors.Decode(cfg.Connector.Type, connectors.Raw{Parameters: cfg.Connector.Parameters.Extra})
	if err != nil {
		t.Fatal(err)
	}
	return *cfg, dec
}

// baselineOverloads counts (tick, host) cells over capacity per metric,
// straight from the CSVs, independently of the pipeline and the KPIs.
func baselineOverloads(t *testing.T, data string) []int {
	t.Helper()
	read := func(name string) [][]string {
		f, err := os.Open(filepath.Join(data, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		recs, err := csv.NewReader(f).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return recs[1:]
	}
	num := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	capacity := map[string][]float64{}
	for _, r := range read("node_meta.csv") {
		capacity[r[0]] = []float64{num(r[1]), num(r[2])}
	}
	load := map[string][]float64{} // "tick/host" → load
	for _, r := range read("container_usage.csv") {
		k := r[0] + "/" + r[2]
		if load[k] == nil {
			load[k] = make([]float64, 2)
		}
		load[k][0] += num(r[3])
		load[k][1] += num(r[4])
	}
	out := make([]int, 2)
	for k, l := range load {
		c := capacity[k[strings.Index(k, "/")+1:]]
		for m := range out {
			if l[m] > c[m] {
				out[m]++
			}
		}
	}
	return out
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for s := bufio.NewScanner(f); s.Scan(); {
		n++
	}
	return n
}

// The main job on the bundled default, end to end, in process.
func TestRunBundledSample(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg, dec := defaultConfig(t, dir)
	if err := run(context.Background(), cfg, dec, log, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	s, err := rundir.ReadSummary(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Ticks != sample.DefaultTicks || s.Containers != sample.DefaultContainers || s.Hosts != sample.DefaultHosts {
		t.Errorf("ticks %d containers %d hosts %d, want %d %d %d", s.Ticks, s.Containers, s.Hosts,
			sample.DefaultTicks, sample.DefaultContainers, sample.DefaultHosts)
	}
	if s.Samples != sample.DefaultTicks*sample.DefaultContainers || s.Rejects != 0 {
		t.Errorf("samples %d rejects %d", s.Samples, s.Rejects)
	}
	want := baselineOverloads(t, filepath.Join(dir, "input"))
	for m := range want {
		if s.Baseline.OverloadedCells[m] != want[m] {
			t.Errorf("baseline overloads %s = %d, CSV says %d", s.Metrics[m], s.Baseline.OverloadedCells[m], want[m])
		}
	}
	if want[0] == 0 {
		t.Error("the bundled sample has no overloads to fix")
	}
	// DESIGN: moving must never make the trace's overloads worse.
	if s.Actual.OverloadedCellsAny > s.Baseline.OverloadedCellsAny {
		t.Errorf("overloaded cells %d with moves > %d without", s.Actual.OverloadedCellsAny, s.Baseline.OverloadedCellsAny)
	}
	if n := countLines(t, filepath.Join(dir, "moves.jsonl")); n != s.Moves {
		t.Errorf("moves.jsonl has %d lines, summary says %d moves", n, s.Moves)
	}
	if n := countLines(t, filepath.Join(dir, rundir.MetricsFile)); n != s.Loops+1 {
		t.Errorf("metrics.csv has %d lines, want %d loops + header", n, s.Loops)
	}
	for _, want := range []string{"overloaded cells cpu", "run directory: " + dir} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}

	// hots report prints the same table again.
	var rep bytes.Buffer
	if err := dispatch(context.Background(), []string{"report", dir}, &rep, io.Discard); err != nil {
		t.Fatal(err)
	}
	table, _, _ := strings.Cut(stdout.String(), "run directory")
	if !strings.HasPrefix(rep.String(), table) || !strings.Contains(rep.String(), "metrics.csv: "+strconv.Itoa(s.Loops)+" evaluations") {
		t.Errorf("report:\n%s\nrun printed:\n%s", rep.String(), table)
	}
}

// A run interrupted before it starts still writes its outputs and says why
// it stopped.
func TestRunInterrupted(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// Interrupted is not finished: main exits 130/143 on this error.
	var interrupted *interruptedError
	cfg, dec := defaultConfig(t, dir)
	if err := run(ctx, cfg, dec, log, io.Discard, io.Discard); !errors.As(err, &interrupted) {
		t.Fatalf("run: %v, want an interruptedError", err)
	}
	s, err := rundir.ReadSummary(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Stopped != "signal" || s.Ticks >= sample.DefaultTicks {
		t.Errorf("stopped %q after %d ticks", s.Stopped, s.Ticks)
	}
}

func TestDispatch(t *testing.T) {
	tests := []struct {
		args []string
		want string // error substring; "" = success
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"run", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"run", "--set", "connector.type=ftp"}, "connector.type = \"ftp\": unknown connector; registered: " + strings.Join(connectors.Names(), ", ")},
		{[]string{"generate"}, "--out DIR is required"},
		{[]string{"report"}, "want RUN_DIR"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := dispatch(context.Background(), tt.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// Live mode started with no reachable broker waits for one (a service may
// start before its broker) and still stops promptly when asked to.
func TestKafkaRunWaitsForBrokerAndStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- dispatch(ctx, []string{"run", "--set", "connector.type=kafka", "--set", "kafka.brokers=127.0.0.1:1"}, io.Discard, io.Discard)
	}()
	select {
	case err := <-done:
		if ctx.Err() == nil {
			t.Fatalf("live mode returned before it was stopped: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("live mode did not stop within 30 s of its context ending")
	}
}

func TestGenerateCommand(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := dispatch(context.Background(), []string{"generate", "--out", dir, "--containers", "8", "--hosts", "2", "--ticks", "5"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if n := countLines(t, filepath.Join(dir, "container_usage.csv")); n != 1+8*5 {
		t.Errorf("container_usage.csv: %d lines, want 41", n)
	}
	if n := countLines(t, filepath.Join(dir, "node_meta.csv")); n != 3 {
		t.Errorf("node_meta.csv: %d lines, want 3", n)
	}
}

// generate --domains: N clusters in one trace, a domain column in both
// files, distinct names per domain, and the config hint.
func TestGenerateDomains(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := dispatch(context.Background(), []string{"generate", "--out", dir, "--domains", "3", "--containers", "8", "--hosts", "2", "--ticks", "5"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "connector.parameters.domain_field: domain") {
		t.Errorf("no config hint in %q", out.String())
	}
	usage, err := os.ReadFile(filepath.Join(dir, "container_usage.csv"))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := os.ReadFile(filepath.Join(dir, "node_meta.csv"))
	if err != nil {
		t.Fatal(err)
	}
	ul, ml := strings.Split(strings.TrimSpace(string(usage)), "\n"), strings.Split(strings.TrimSpace(string(meta)), "\n")
	if len(ul) != 1+3*8*5 || ul[0] != "timestamp,domain,container_id,machine_id,cpu,mem" || !strings.HasPrefix(ul[1], "0,d1,d1_c_1,d1_n_") {
		t.Errorf("container_usage.csv: %d lines, header %q, first row %q", len(ul), ul[0], ul[1])
	}
	if len(ml) != 1+3*2 || ml[0] != "machine_id,domain,cpu,mem" || !strings.HasPrefix(ml[6], "d3_n_2,d3,") {
		t.Errorf("node_meta.csv: %q", ml)
	}
	// Every row's host is a host of its own domain.
	for _, l := range ul[1:] {
		f := strings.Split(l, ",")
		if !strings.HasPrefix(f[3], f[1]+"_") || !strings.HasPrefix(f[2], f[1]+"_") {
			t.Fatalf("row %q: container or host outside its domain", l)
		}
	}
}
