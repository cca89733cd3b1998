package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"hots/pipeline/rundir"
	"hots/placement"
)

// sharedTrace finds a shared trace ($HOTS_DATA or ../shared/data beside
// the repo root) or skips.
func sharedTrace(t *testing.T, name string) string {
	t.Helper()
	base := os.Getenv("HOTS_DATA")
	if base == "" {
		wd, _ := os.Getwd()
		base = filepath.Join(wd, "..", "..", "..", "shared", "data")
	}
	dir := filepath.Join(base, name)
	if _, err := os.Stat(filepath.Join(dir, "container_usage.csv")); err != nil {
		t.Skipf("shared trace %s not found (set HOTS_DATA to the traces folder): %v", name, err)
	}
	return dir
}

// runSyn200 replays syn_n200 through the whole pipeline (file connector,
// window, placer, moves log, run directory) with extra flags.
func runSyn200(t *testing.T, extra ...string) (string, *rundir.Summary, []placement.Move) {
	t.Helper()
	return runTrace(t, sharedTrace(t, "synthetic/syn_n200"), extra...)
}

// TestControlsPipeline: the controls hold end to end on a shared trace,
// as the moves log and the run directory show them.
func TestControlsPipeline(t *testing.T) {
	_, free, freeMoves := runSyn200(t)
	if len(freeMoves) == 0 {
		t.Fatal("syn_n200 moved nothing")
	}
	t.Run("dry run equals the baseline", func(t *testing.T) {
		_, s, moves := runSyn200(t, "--dry-run")
		if len(moves) != len(freeMoves) || len(moves) == 0 {
			t.Logf("dry run decided %d moves, the applied run %d (the engine sees different loads)", len(moves), len(freeMoves))
		}
		for _, m := range moves {
			if !m.DryRun || m.Why == "" {
				t.Fatalf("move without dry_run or why: %+v", m)
			}
		}
		if !reflect.DeepEqual(s.Actual, s.Baseline) || !s.DryRun {
			t.Errorf("dry run: actual %+v, baseline %+v", s.Actual, s.Baseline)
		}
		if !reflect.DeepEqual(s.Baseline, free.Baseline) {
			t.Errorf("dry-run baseline differs from the applied run's")
		}
		if s.Forecast.WindowOverloadsAfter > s.Forecast.WindowOverloadsBefore {
			t.Errorf("forecast %+v", s.Forecast)
		}
		var tb bytes.Buffer
		_ = s.WriteTable(&tb)
		if !strings.Contains(tb.String(), "dry run") {
			t.Errorf("summary does not say dry run:\n%s", tb.String())
		}
	})
	t.Run("pin, exclude and a limit", func(t *testing.T) {
		pin, excl := freeMoves[0].Container, freeMoves[0].NewHost
		dir, s, moves := runSyn200(t, "--pin", pin+",c_1?", "--exclude-hosts", excl, "--set", "controls.limits.max_moves_per_loop=2")
		perTick := map[int64]int{}
		for _, m := range moves {
			if ok, _ := filepath.Match("c_1?", m.Container); ok || m.Container == pin {
				t.Errorf("pinned container moved: %+v", m)
			}
			if m.NewHost == excl {
				t.Errorf("move onto excluded %s: %+v", excl, m)
			}
			if perTick[m.Tick]++; perTick[m.Tick] > 2 {
				t.Errorf("tick %d: %d moves, limit 2", m.Tick, perTick[m.Tick])
			}
		}
		held := s.HeldBack[placement.LimitPerLoop]
		if held == 0 {
			t.Errorf("nothing held back by max_moves_per_loop: %+v", s.HeldBack)
		}
		// metrics.csv's column adds up to the summary's count.
		recs := readCSVFile(t, filepath.Join(dir, rundir.MetricsFile))
		col := -1
		for i, h := range recs[0] {
			if h == "held_max_moves_per_loop" {
				col = i
			}
		}
		sum := 0
		for _, r := range recs[1:] {
			n, _ := strconv.Atoi(r[col])
			sum += n
		}
		if col < 0 || sum != held {
			t.Errorf("metrics.csv held_max_moves_per_loop sums to %d (column %d), summary %d", sum, col, held)
		}
	})
}

func readCSVFile(t *testing.T, path string) [][]string {
	t.Helper()
	recs, err := readAll(path)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestExplain: hots explain tells a moved container's story from the run
// directory: its hosts, each move's why, and measured peaks after.
func TestExplain(t *testing.T) {
	dir := t.TempDir()
	cfg, dec := defaultConfig(t, dir)
	if err := run(context.Background(), cfg, dec, discardLogger(), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	moves, err := rundir.ReadMoves(filepath.Join(dir, "moves.jsonl"))
	if err != nil || len(moves) == 0 {
		t.Fatalf("%d moves, %v", len(moves), err)
	}
	m := moves[len(moves)-1]
	var out bytes.Buffer
	if err := dispatch(context.Background(), []string{"explain", dir, m.Container}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{m.Container + ":", "hosts: ", "→ " + m.NewHost, "why: " + m.Why, "measured: " + m.NewHost + " peak"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("explain lacks %q:\n%s", want, out.String())
		}
	}
	b, _ := json.Marshal(m)
	if !strings.Contains(string(b), `"why":`) {
		t.Errorf("move JSON has no why: %s", b)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
