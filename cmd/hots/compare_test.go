package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"hots/connectors/file/sample"
	"hots/pipeline/rundir"
	"hots/placement/policy"
)

// TestCompare replays the bundled sample with every policy and checks the
// run directory: one row per policy in the same order as asked, no moves
// for none, the churn figures consistent with the moves files, a plot, and
// the same answer from a second run.
func TestCompare(t *testing.T) {
	data := t.TempDir()
	tr, err := sample.Generate(sample.Params{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Write(data); err != nil {
		t.Fatal(err)
	}
	runOnce := func(out string) *Comparison {
		var stdout bytes.Buffer
		args := []string{"compare", "--data", data, "--out", out, "--initial-placement=false", "--from", "30"}
		if err := dispatch(context.Background(), args, &stdout, io.Discard); err != nil {
			t.Fatal(err)
		}
		for _, n := range policy.Names {
			if !strings.Contains(stdout.String(), n) {
				t.Errorf("table has no row for %s:\n%s", n, stdout.String())
			}
		}
		b, err := os.ReadFile(filepath.Join(out, CompareJSON))
		if err != nil {
			t.Fatal(err)
		}
		var c Comparison
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		// report.html: one column per policy, values as compare.json has them.
		page, err := os.ReadFile(filepath.Join(out, rundir.ReportFile))
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		_ = json.Unmarshal(b, &doc)
		keyed := regexp.MustCompile(`data-key="([^"]+)">([^<]*)<`).FindAllStringSubmatch(string(page), -1)
		if len(keyed) < len(policy.Names)*10 {
			t.Errorf("report.html: %d keyed values", len(keyed))
		}
		for _, k := range keyed {
			if v, ok := rundir.SummaryValue(doc, k[1]); !ok || !rundir.SameValue(k[2], v) {
				t.Errorf("report.html %s = %q, compare.json %v", k[1], k[2], v)
			}
		}
		for _, n := range policy.Names {
			if !strings.Contains(string(page), "<th>"+n+"</th>") {
				t.Errorf("report.html has no column for %s", n)
			}
		}
		for _, f := range []string{CompareTable, CompareCSV, ComparePlot} {
			if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
				t.Errorf("%s missing or empty: %v", f, err)
			}
		}
		return &c
	}
	dir := t.TempDir()
	c := runOnce(dir)
	var got []string
	for _, p := range c.Policies {
		got = append(got, p.Policy)
		moves, err := os.ReadFile(filepath.Join(dir, "moves-"+p.Policy+".jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(moves, []byte("\n")); n != p.Churn.Moves {
			t.Errorf("%s: %d moves in its file, %d in the churn figures", p.Policy, n, p.Churn.Moves)
		}
		if p.Churn.ContainersMoved > p.Churn.Moves || p.Churn.MovesBack > p.Churn.ReMoves || p.Churn.MovesOffCalm > p.Churn.Moves {
			t.Errorf("%s: inconsistent churn %+v", p.Policy, p.Churn)
		}
		if len(p.CellsPerTick) == 0 || p.CellsPerTick[0].Tick < 30 {
			t.Errorf("%s: counted ticks start at %v, want 30", p.Policy, p.CellsPerTick)
		}
	}
	if !reflect.DeepEqual(got, policy.Names) {
		t.Errorf("policies %v, want %v", got, policy.Names)
	}
	if none := c.Policies[len(c.Policies)-1]; none.Churn.Moves != 0 {
		t.Errorf("policy none moved %d containers", none.Churn.Moves)
	}
	again := runOnce(t.TempDir())
	for i := range c.Policies {
		a, b := c.Policies[i], again.Policies[i]
		if !reflect.DeepEqual(a.Totals, b.Totals) || a.Churn != b.Churn {
			t.Errorf("%s: a second run differs: %+v / %+v", a.Policy, a.Churn, b.Churn)
		}
	}
}

func TestCompareRefusesUnknownPolicy(t *testing.T) {
	err := dispatch(context.Background(), []string{"compare", "--data", t.TempDir(), "--policies", "hots,magic"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "magic") {
		t.Fatalf("err %v, want a usage error naming the policy", err)
	}
}
