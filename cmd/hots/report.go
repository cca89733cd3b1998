package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"hots/pipeline/rundir"
)

func cmdReport(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	a, err := trimArgs(fs, 1, "RUN_DIR")
	if err != nil {
		return err
	}
	dir := a[0]
	s, err := rundir.ReadSummary(dir)
	if err != nil {
		return err
	}
	if err := s.WriteTable(stdout); err != nil {
		return err
	}
	rows, kinds, err := countMetrics(filepath.Join(dir, rundir.MetricsFile))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "metrics.csv: %d evaluations (%d initial, %d loops)\n", rows, kinds["initial"], kinds["loop"])
	return nil
}

// countMetrics counts metrics.csv rows by kind: a cross-check of the
// summary's loop count against the per-loop file.
func countMetrics(path string) (int, map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", path, err)
	}
	kinds := map[string]int{}
	for _, r := range recs[min(1, len(recs)):] {
		if len(r) > 2 {
			kinds[r[2]]++
		}
	}
	return len(recs) - min(1, len(recs)), kinds, nil
}
