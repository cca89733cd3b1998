package connectortest

import (
	"bufio"
	"encoding/csv"
	"os"
	"testing"

	"hots/codecs"
	"hots/placement"
)

// MovesFile reads a JSON-lines moves file (a file-backed sink), in order.
func MovesFile(t testing.TB, path string) []placement.Move {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []placement.Move
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m, err := codecs.DecodeMove(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// RejectsFile reads a rejects CSV (source, line, field, reason, raw),
// without its header.
func RejectsFile(t testing.TB, path string) [][]string {
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
	if len(rows) == 0 {
		t.Fatalf("%s: no header", path)
	}
	return rows[1:]
}
