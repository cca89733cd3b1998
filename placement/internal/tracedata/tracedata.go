// Package tracedata finds the shared traces and reads their CSV rows for
// tests. It does not import the engine, so the engine's internal tests can
// use it too.
package tracedata

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Dir returns the shared data folder ($HOTS_DATA or ../shared/data beside
// the repo root), or skips the test with a clear message.
func Dir(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv("HOTS_DATA"); d != "" {
		return d
	}
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Skip("shared data not found: set HOTS_DATA to the traces folder")
		}
		dir = parent
	}
	d := filepath.Join(dir, "..", "shared", "data")
	if _, err := os.Stat(d); err != nil {
		tb.Skipf("shared data not found at %s (set HOTS_DATA): %v", d, err)
	}
	return d
}

// Row is one usage row.
type Row struct {
	Tick      int64
	Container string
	Host      string
	Values    []float64
}

// ReadUsage reads a usage CSV by column names.
func ReadUsage(path, tick, container, host string, metrics []string) ([]Row, error) {
	var rows []Row
	err := Read(path, append([]string{tick, container, host}, metrics...), func(col map[string]int, rec []string) error {
		t, err := strconv.ParseInt(rec[col[tick]], 10, 64)
		if err != nil {
			return err
		}
		r := Row{Tick: t, Container: rec[col[container]], Host: rec[col[host]]}
		for _, m := range metrics {
			v, err := strconv.ParseFloat(rec[col[m]], 64)
			if err != nil {
				return err
			}
			r.Values = append(r.Values, v)
		}
		rows = append(rows, r)
		return nil
	})
	return rows, err
}

// Read calls row for every record of a CSV with a header holding need.
func Read(path string, need []string, row func(col map[string]int, rec []string) error) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	r := csv.NewReader(fh)
	head, err := r.Read()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	for _, n := range need {
		if _, ok := col[n]; !ok {
			return fmt.Errorf("%s: no column %q", path, n)
		}
	}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if err := row(col, rec); err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
	}
}
