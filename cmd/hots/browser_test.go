package main

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"hots/pipeline/rundir"
)

// chromium finds Debian's headless Chromium or skips.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed (apt-get install -y --no-install-recommends chromium; .ci/run installs it): the browser test of report.html is skipped")
	return ""
}

// TestReportInBrowser loads the bundled sample's report.html in headless
// Chromium: the summary values in the rendered DOM equal summary.json,
// every chart is a non-empty SVG naming its series, and a screenshot is
// kept ($HOTS_ARTEFACTS, else the test's temp dir; the path is logged).
func TestReportInBrowser(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	cfg, dec := defaultConfig(t, dir)
	if err := run(context.Background(), cfg, dec, discardLogger(), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	page, err := filepath.Abs(filepath.Join(dir, rundir.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	// A guard against a hung browser, not a timing assertion.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	browse := func(args ...string) []byte {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
			"--user-data-dir=" + filepath.Join(t.TempDir(), "profile")}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", args, err)
		}
		return out
	}
	dom := string(browse("--dump-dom", "file://"+page))

	var sum map[string]any
	b, err := os.ReadFile(filepath.Join(dir, rundir.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	cells := regexp.MustCompile(`data-key="([^"]+)"[^>]*>([^<]*)<`).FindAllStringSubmatch(dom, -1)
	seen := map[string]bool{}
	for _, c := range cells {
		seen[c[1]] = true
		want, ok := rundir.SummaryValue(sum, c[1])
		if !ok || !rundir.SameValue(html.UnescapeString(c[2]), want) {
			t.Errorf("DOM %s = %q, summary.json %v", c[1], c[2], want)
		}
	}
	for _, k := range []string{"moves", "loops", "ticks", "baseline.overloaded_cells_any", "actual.overloaded_cells_any", "churn.re_moves", "churn.moves_off_calm_hosts"} {
		if !seen[k] {
			t.Errorf("the DOM shows no %s", k)
		}
	}

	var index []rundir.PlotInfo
	ib, err := os.ReadFile(filepath.Join(dir, rundir.PlotsDir, rundir.PlotIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(ib, &index); err != nil {
		t.Fatal(err)
	}
	figures := regexp.MustCompile(`(?s)<figure class="chart" id="chart-([^"]+)" data-series="([^"]*)">(.*?)</figure>`).FindAllStringSubmatch(dom, -1)
	if len(figures) != len(index) || len(index) < 5 {
		t.Fatalf("%d charts in the DOM, %d in plots.json", len(figures), len(index))
	}
	for k, f := range figures {
		want := index[k]
		if f[1] != strings.TrimSuffix(want.File, ".svg") {
			t.Errorf("chart %d is %s, want %s", k, f[1], want.File)
		}
		svg := f[3]
		if !strings.Contains(svg, "<svg") || strings.Count(svg, "<path") < 5 {
			t.Errorf("chart %s: no SVG drawing (%d paths)", f[1], strings.Count(svg, "<path"))
		}
		for _, s := range want.Series {
			if !strings.Contains(html.UnescapeString(f[2]), s) || !strings.Contains(html.UnescapeString(svg), ">"+s+"<") {
				t.Errorf("chart %s: series %q not in its legend", f[1], s)
			}
		}
	}
	if !regexp.MustCompile(`<table class="sortable" id="moves-table">`).MatchString(dom) || !strings.Contains(dom, "over cpu capacity") && !strings.Contains(dom, "forecast over capacity") {
		t.Error("the moves table with its why is missing")
	}

	art := os.Getenv("HOTS_ARTEFACTS")
	if art == "" {
		art = t.TempDir()
	}
	if err := os.MkdirAll(art, 0o755); err != nil {
		t.Fatal(err)
	}
	shot, err := filepath.Abs(filepath.Join(art, "report.png"))
	if err != nil {
		t.Fatal(err)
	}
	browse("--screenshot="+shot, "--window-size=1400,2600", "--hide-scrollbars", "file://"+page)
	fi, err := os.Stat(shot)
	if err != nil || fi.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v (%d bytes)", shot, err, fi.Size())
	}
	t.Logf("screenshot of report.html: %s (%d bytes)", shot, fi.Size())
}
