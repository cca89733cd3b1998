package prometheus_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hots/config"
	"hots/connectors"
	"hots/pipeline"
)

// TestREADMEConfigs: the README's two configurations load and decode
// without unknown keys.
func TestREADMEConfigs(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	sec := string(b)
	sec = sec[strings.Index(sec, "## Prometheus connector"):]
	blocks := strings.Split(sec, "```yaml\n")[1:]
	if len(blocks) != 2 {
		t.Fatalf("%d yaml blocks in the README's Prometheus section, want 2", len(blocks))
	}
	for i, blk := range blocks {
		y := blk[:strings.Index(blk, "```")]
		p := filepath.Join(t.TempDir(), "hots.yaml")
		if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := config.Load(config.LoadOptions{File: p, Environ: []string{}})
		if err != nil {
			t.Fatalf("block %d: %v", i+1, err)
		}
		d, err := connectors.Decode(cfg.Connector.Type, pipeline.RawConnector(*cfg))
		if err != nil || len(d.Unknown) > 0 {
			t.Fatalf("block %d: %v, unknown %v", i+1, err, d.Unknown)
		}
	}
}
