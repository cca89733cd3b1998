package rundir

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"

	"hots/placement"
	"hots/placement/kpi"
)

// Summary is summary.json: the run's totals next to the no-move baseline
// over the same ticks.
type Summary struct {
	Trace           string   `json:"trace"`
	ConfigDigest    string   `json:"config_digest"`
	Metrics         []string `json:"metrics"`
	Containers      int      `json:"containers"`
	Hosts           int      `json:"hosts"`
	Ticks           int      `json:"ticks"`
	Samples         int64    `json:"samples"`
	Rejects         int64    `json:"rejects"`
	Loops           int      `json:"loops"`
	Moves           int      `json:"moves"`
	ContainersMoved int      `json:"containers_moved"`
	LoopSecondsMean float64  `json:"loop_seconds_mean"`
	LoopSecondsMax  float64  `json:"loop_seconds_max"`
	WallSeconds     float64  `json:"wall_seconds"`
	// Stopped is "time_limit" or "signal" when the run ended before its
	// input did; the outputs then cover the ticks closed so far.
	Stopped  string     `json:"stopped,omitempty"`
	Actual   kpi.Totals `json:"actual"`
	Baseline kpi.Totals `json:"baseline"`
	// Churn is what the moves cost: re-moves, moves back, moves off hosts
	// that were not overloaded, moves onto hosts that overloaded soon after.
	Churn kpi.Churn `json:"churn"`
	// HeldBack counts, per operator limit (placement.Limits), the moves
	// the engine had decided that the limit refused.
	HeldBack map[string]int `json:"held_back,omitempty"`
	// DryRun: the moves were published marked dry_run and never applied,
	// so Actual equals Baseline; Forecast says what they would have done.
	DryRun bool `json:"dry_run,omitempty"`
	// Forecast is the engine's own projection, summed over the loops: the
	// overloaded (host, tick) cells of each loop's window with the
	// placement before and after its moves.
	Forecast Forecast        `json:"forecast"`
	Domains  []DomainSummary `json:"domains,omitempty"` // only when there are several
	// HostConflicts counts hosts named in a domain they do not belong to
	// (once per host and domain; each is a warning in the log).
	HostConflicts int64 `json:"host_conflicts,omitempty"`
}

// Forecast is the engine's projection of its moves over the windows.
type Forecast struct {
	WindowOverloadsBefore int `json:"window_overloads_before"`
	WindowOverloadsAfter  int `json:"window_overloads_after"`
}

// DomainSummary is one domain's totals in a multi-domain run; loops,
// moves and containers moved add up to the run's, and so do the counts in
// Actual and Baseline (overloaded cells, excess).
type DomainSummary struct {
	Domain          string     `json:"domain"`
	Loops           int        `json:"loops"`
	Moves           int        `json:"moves"`
	ContainersMoved int        `json:"containers_moved"`
	Actual          kpi.Totals `json:"actual"`
	Baseline        kpi.Totals `json:"baseline"`
	Churn           kpi.Churn  `json:"churn"`
}

// ReadSummary reads <dir>/summary.json.
func ReadSummary(dir string) (*Summary, error) {
	b, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err != nil {
		return nil, err
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, errorf(dir, "%s: %v", SummaryFile, err)
	}
	return &s, nil
}

// WriteTable prints the final summary: run facts, then each KPI as
// "no moves → with moves".
func (s *Summary) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("trace", s.Trace)
	row("containers", strconv.Itoa(s.Containers))
	row("hosts", strconv.Itoa(s.Hosts))
	row("ticks", strconv.Itoa(s.Ticks))
	row("samples", fmt.Sprintf("%d (%d rejected)", s.Samples, s.Rejects))
	row("loops", strconv.Itoa(s.Loops))
	row("moves", fmt.Sprintf("%d (%d containers)", s.Moves, s.ContainersMoved))
	if s.DryRun {
		row("dry run", fmt.Sprintf("moves published marked dry_run, none applied: the figures are the baseline's; the engine forecast its moves would have cut the overloaded cells of their windows from %d to %d",
			s.Forecast.WindowOverloadsBefore, s.Forecast.WindowOverloadsAfter))
	} else {
		row("forecast", fmt.Sprintf("overloaded cells of the loops' windows %d → %d (the engine's projection of its moves)", s.Forecast.WindowOverloadsBefore, s.Forecast.WindowOverloadsAfter))
	}
	for _, l := range placement.Limits {
		if n := s.HeldBack[l]; n > 0 {
			row("held back", fmt.Sprintf("%d moves held back by %s", n, l))
		}
	}
	c := s.Churn
	row("re-moves", fmt.Sprintf("%d (%d back to the host left)", c.ReMoves, c.MovesBack))
	row("moves off calm hosts", fmt.Sprintf("%d (no overload in the %d ticks before)", c.MovesOffCalm, c.Window))
	row("moves into overload", fmt.Sprintf("%d (target overloaded within %d ticks)", c.MovesIntoOverload, c.Horizon))
	fmt.Fprintf(tw, "\tno moves\twith moves\n")
	kv := func(name string, b, a string) { fmt.Fprintf(tw, "%s\t%s\t→ %s\n", name, b, a) }
	for m, name := range s.Metrics {
		kv("overloaded cells "+name, itoa(s.Baseline.OverloadedCells, m), itoa(s.Actual.OverloadedCells, m))
	}
	if len(s.Metrics) > 1 {
		kv("overloaded cells (any)", strconv.Itoa(s.Baseline.OverloadedCellsAny), strconv.Itoa(s.Actual.OverloadedCellsAny))
	}
	for m, name := range s.Metrics {
		kv("excess "+name, ftoa(s.Baseline.Excess, m), ftoa(s.Actual.Excess, m))
	}
	for m, name := range s.Metrics {
		kv("spread "+name+" (mean/max)", ftoa(s.Baseline.MeanSpread, m)+" / "+ftoa(s.Baseline.MaxSpread, m),
			ftoa(s.Actual.MeanSpread, m)+" / "+ftoa(s.Actual.MaxSpread, m))
	}
	for m, name := range s.Metrics {
		kv("peak utilisation "+name, ftoa(s.Baseline.PeakUtil, m), ftoa(s.Actual.PeakUtil, m))
	}
	for m, name := range s.Metrics {
		kv("load variance "+name, ftoa(s.Baseline.LoadVariance, m), ftoa(s.Actual.LoadVariance, m))
	}
	kv("hosts used", strconv.Itoa(s.Baseline.HostsUsed), strconv.Itoa(s.Actual.HostsUsed))
	t := fmt.Sprintf("wall %.2fs, loop mean %.1fms max %.1fms", s.WallSeconds, 1000*s.LoopSecondsMean, 1000*s.LoopSecondsMax)
	if s.Stopped != "" {
		t += ", stopped early: " + s.Stopped
	}
	row("time", t)
	if s.ConfigDigest != "" {
		row("config", s.ConfigDigest)
	}
	if err := tw.Flush(); err != nil || len(s.Domains) < 2 {
		return err
	}
	// Its own columns: the domains' rows must not widen the table above.
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "domain\tloops\tmoves (containers)\toverloaded cells (any): no moves\twith moves\n")
	for _, d := range s.Domains {
		fmt.Fprintf(tw, "%s\t%d\t%d (%d)\t%d\t→ %d\n", d.Domain, d.Loops, d.Moves, d.ContainersMoved,
			d.Baseline.OverloadedCellsAny, d.Actual.OverloadedCellsAny)
	}
	return tw.Flush()
}

func itoa(v []int, i int) string {
	if i >= len(v) {
		return "-"
	}
	return strconv.Itoa(v[i])
}

func ftoa(v []float64, i int) string {
	if i >= len(v) {
		return "-"
	}
	return strconv.FormatFloat(v[i], 'f', 3, 64)
}
