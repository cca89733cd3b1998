package main

import (
	"context"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"hots/codecs"
	"hots/pipeline/rundir"
	"hots/placement"
)

// pinnedTrace copies syn_n200 into a new folder with a column named col
// whose cell is cell(tick, container); bad, if not 0, is a line
// whose cell is "maybe".
func pinnedTrace(t *testing.T, col string, cell func(tick int64, container string) string, bad int) string {
	t.Helper()
	src := sharedTrace(t, "synthetic/syn_n200")
	dir := t.TempDir()
	meta, err := os.ReadFile(filepath.Join(src, "node_meta.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "node_meta.csv"), meta, 0o644); err != nil {
		t.Fatal(err)
	}
	recs := readCSVFile(t, filepath.Join(src, "container_usage.csv"))
	out, err := os.Create(filepath.Join(dir, "container_usage.csv"))
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(out)
	// The column goes in the middle: columns are found by name.
	_ = w.Write([]string{recs[0][0], recs[0][1], col, recs[0][2], recs[0][3]})
	for i, r := range recs[1:] {
		tick, _ := strconv.ParseInt(r[0], 10, 64)
		v := cell(tick, r[1])
		if i+2 == bad {
			v = "maybe"
		}
		_ = w.Write([]string{r[0], r[1], v, r[2], r[3]})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	out.Close()
	return dir
}

// runTrace replays a trace folder through the whole pipeline (file
// connector, window, placer, moves log, run directory) with extra flags.
func runTrace(t *testing.T, data string, extra ...string) (string, *rundir.Summary, []placement.Move) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "run")
	args := append([]string{"run", "--data", data, "--out", out, "--metrics", "cpu", "--sep-time", "33", "--window", "10",
		"--tick-increment", "5", "--tol-move", "0.5", "--initial-placement=false"}, extra...)
	if err := dispatch(context.Background(), args, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	s, err := rundir.ReadSummary(out)
	if err != nil {
		t.Fatal(err)
	}
	moves, err := rundir.ReadMoves(filepath.Join(out, "moves.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return out, s, moves
}

// TestPinnedColumn: a pinned column in container_usage.csv holds end to
// end (file connector, decode, window, engine, moves log): pinned
// containers are never in moves.jsonl, unpinned ones may move again, a bad
// value is a reject naming file, line and field, and a column of falses
// changes nothing.
func TestPinnedColumn(t *testing.T) {
	_, _, freeMoves := runSyn200(t)
	movers := map[string]bool{}
	for _, m := range freeMoves {
		movers[m.Container] = true
	}
	if len(movers) < 3 {
		t.Fatalf("syn_n200 moved %d containers", len(movers))
	}
	yes := func(c string) string {
		if movers[c] {
			return "true"
		}
		return "false"
	}
	t.Run("all false equals no column", func(t *testing.T) {
		_, s, moves := runTrace(t, pinnedTrace(t, "pinned", func(int64, string) string { return "0" }, 0))
		if !reflect.DeepEqual(moves, freeMoves) || s.Rejects != 0 {
			t.Errorf("%d moves (%d rejects), free run %d", len(moves), s.Rejects, len(freeMoves))
		}
	})
	t.Run("pinned never in moves.jsonl", func(t *testing.T) {
		_, s, moves := runTrace(t, pinnedTrace(t, "pinned", func(_ int64, c string) string { return yes(c) }, 0))
		for _, m := range moves {
			if movers[m.Container] {
				t.Errorf("pinned %s moved: %+v", m.Container, m)
			}
		}
		if s.Rejects != 0 {
			t.Errorf("%d rejects", s.Rejects)
		}
	})
	t.Run("pinned_field names the column; unpinned later moves again", func(t *testing.T) {
		until := freeMoves[len(freeMoves)/2].Tick
		data := pinnedTrace(t, "hold", func(tick int64, c string) string {
			if tick <= until && movers[c] {
				return "yes"
			}
			return "" // empty = false
		}, 0)
		_, _, moves := runTrace(t, data, "--set", "connector.parameters.pinned_field=hold")
		later := 0
		for _, m := range moves {
			if movers[m.Container] {
				if m.Tick <= until {
					t.Errorf("%s moved at tick %d, pinned up to %d", m.Container, m.Tick, until)
				}
				later++
			}
		}
		if later == 0 {
			t.Errorf("nothing moved again after tick %d", until)
		}
	})
	t.Run("a bad value is a reject with file, line and field", func(t *testing.T) {
		data := pinnedTrace(t, "pinned", func(int64, string) string { return "no" }, 5)
		dir, s, _ := runTrace(t, data)
		if s.Rejects != 1 {
			t.Errorf("%d rejects, want 1", s.Rejects)
		}
		recs := readCSVFile(t, filepath.Join(dir, "rejects.csv"))
		if len(recs) != 2 {
			t.Fatalf("rejects.csv: %q", recs)
		}
		r := recs[1] // source, line, field, reason, raw
		if filepath.Base(r[0]) != "container_usage.csv" || r[1] != "5" || r[2] != "pinned" {
			t.Errorf("reject %q, want container_usage.csv line 5 field pinned", r)
		}
	})
}

// hots produce carries the pinned column into its JSON records, which the
// service decodes to the same samples as the file replay.
func TestProducePinnedRecords(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "container_usage.csv")
	if err := os.WriteFile(path, []byte("timestamp,container_id,machine_id,cpu,pinned\n0,c_1,n_1,1,yes\n0,c_2,n_1,2,\n1,c_1,n_1,1,0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := codecs.UsageFields{}.WithDefaults()
	recs, err := readTrace(path, f)
	if err != nil || len(recs) != 3 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	var got []bool
	for _, r := range recs {
		ss, err := codecs.DecodeSamplesJSON(r.value, codecs.Position{}, "", f)
		if err != nil || len(ss) != 1 {
			t.Fatalf("%s: %v", r.value, err)
		}
		got = append(got, ss[0].Pinned)
	}
	if !reflect.DeepEqual(got, []bool{true, false, false}) {
		t.Errorf("pinned %v", got)
	}
	if err := os.WriteFile(path, []byte("timestamp,container_id,machine_id,cpu,pinned\n0,c_1,n_1,1,maybe\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readTrace(path, f); err == nil || !strings.Contains(err.Error(), ":2: pinned") {
		t.Errorf("bad value: %v", err)
	}
}
