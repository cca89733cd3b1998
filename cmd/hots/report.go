package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"hots/pipeline/rundir"
	"hots/placement"
)

func cmdReport(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report", stderr)
	open := fs.Bool("open", false, "open report.html in the desktop's browser ($BROWSER, else xdg-open / open)")
	movesFile := fs.String("moves", "", "moves log of the run (default RUN_DIR/moves.jsonl)")
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
	// The page again, from the run directory's files (a run written by an
	// older hots gets one too).
	moves, err := runMoves(dir, *movesFile)
	if err != nil {
		return err
	}
	if err := rundir.WriteReport(dir, "", s, moves); err != nil {
		fmt.Fprintf(stderr, "hots: report: %v\n", err)
	}
	page := filepath.Join(dir, rundir.ReportFile)
	fmt.Fprintf(stdout, "report: %s\n", page)
	if *open {
		return openBrowser(page)
	}
	return nil
}

// runMoves reads a run's moves log: the given file, else RUN_DIR/moves.jsonl
// (none when the run wrote its moves elsewhere).
func runMoves(dir, file string) ([]placement.Move, error) {
	if file != "" {
		return rundir.ReadMoves(file)
	}
	m, err := rundir.ReadMoves(filepath.Join(dir, "moves.jsonl"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return m, err
}

func openBrowser(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	var cmd *exec.Cmd
	switch b := os.Getenv("BROWSER"); {
	case b != "":
		cmd = exec.Command(b, abs)
	case runtime.GOOS == "darwin":
		cmd = exec.Command("open", abs)
	case runtime.GOOS == "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", abs)
	default:
		cmd = exec.Command("xdg-open", abs)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("opening %s: %w (open it by hand)", abs, err)
	}
	return cmd.Process.Release()
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
