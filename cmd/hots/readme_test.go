package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hots/connectors"
)

var updateREADME = flag.Bool("update", false, "rewrite README.md's generated connector tables")

// The README's connector tables are the registered connectors' own; refresh
// them with `go test ./cmd/hots -run TestREADMEConnectorTables -update`.
func TestREADMEConnectorTables(t *testing.T) {
	const begin, end = "<!-- connector-tables:begin -->\n", "<!-- connector-tables:end -->"
	path := filepath.Join("..", "..", "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q … %q markers", begin, end)
	}
	tables := connectors.MarkdownTable()
	if got := s[i+len(begin) : j]; got != tables {
		if *updateREADME {
			if err := os.WriteFile(path, []byte(s[:i+len(begin)]+tables+s[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("README.md connector tables are stale; run go test ./cmd/hots -run TestREADMEConnectorTables -update")
	}
}
