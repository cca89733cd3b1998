package rundir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"hots/codecs"
	"hots/config"
	"hots/connectors"
	"hots/connectors/file"
	"hots/connectors/file/sample"
	"hots/pipeline"
	"hots/placement"
)

// TestFileReplayDomains replays a generated 3-domain trace (a domain column
// in both CSVs, distinct host names per domain) with domain_field: domain:
// no move leaves its domain, the per-domain figures add up to the totals,
// and each domain's moves are those of the domain replayed alone
// (placement.Replay with only its own hosts). Without the domain column in
// node_meta (hosts get their domain from the samples naming them) the
// moves are the same.
func TestFileReplayDomains(t *testing.T) {
	tr, err := sample.Generate(sample.Params{Domains: 3, Containers: 30, Hosts: 5, Ticks: 72})
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	if err := tr.Write(data); err != nil {
		t.Fatal(err)
	}
	domainOf := map[string]string{}
	for i, h := range tr.Hosts {
		domainOf[h] = tr.HostDomain[i]
	}
	cfg := loadConfig(t, data)
	s, moves := replayDomains(t, cfg)

	if len(moves) < 20 {
		t.Fatalf("%d moves: the trace should give each domain several", len(moves))
	}
	perDomain := map[string][]placement.Move{}
	for _, m := range moves {
		if d := domainOf[m.NewHost]; d != m.Domain {
			t.Errorf("move %s of domain %s sends %s to %s, a host of domain %q", m.ID, m.Domain, m.Container, m.NewHost, d)
		}
		if d := domainOf[m.OldHost]; d != m.Domain {
			t.Errorf("move %s of domain %s takes %s off %s, a host of domain %q", m.ID, m.Domain, m.Container, m.OldHost, d)
		}
		perDomain[m.Domain] = append(perDomain[m.Domain], m)
	}

	// Figures: per domain, and adding up to the totals.
	if len(s.Domains) != 3 {
		t.Fatalf("summary has %d domains, want 3", len(s.Domains))
	}
	var loops, nMoves, moved, cellsA, cellsB int
	for _, d := range s.Domains {
		if d.Moves != len(perDomain[d.Domain]) {
			t.Errorf("domain %s: summary says %d moves, the moves file %d", d.Domain, d.Moves, len(perDomain[d.Domain]))
		}
		if d.Moves == 0 || d.Loops == 0 {
			t.Errorf("domain %s: %d loops, %d moves: want some of each", d.Domain, d.Loops, d.Moves)
		}
		loops, nMoves, moved = loops+d.Loops, nMoves+d.Moves, moved+d.ContainersMoved
		cellsA, cellsB = cellsA+d.Actual.OverloadedCellsAny, cellsB+d.Baseline.OverloadedCellsAny
	}
	if loops != s.Loops || nMoves != s.Moves || moved != s.ContainersMoved {
		t.Errorf("per domain loops/moves/containers moved add up to %d/%d/%d, totals are %d/%d/%d", loops, nMoves, moved, s.Loops, s.Moves, s.ContainersMoved)
	}
	if cellsA != s.Actual.OverloadedCellsAny || cellsB != s.Baseline.OverloadedCellsAny {
		t.Errorf("per domain overloaded cells add up to %d (baseline %d), totals %d (%d)", cellsA, cellsB, s.Actual.OverloadedCellsAny, s.Baseline.OverloadedCellsAny)
	}
	if s.Moves != len(moves) {
		t.Errorf("summary moves %d, moves file %d", s.Moves, len(moves))
	}

	// Each domain alone, with its own hosts only.
	p := pipeline.EngineParams(cfg)
	p.Metrics = pipeline.UsageFields(cfg).Metrics
	for d := range 3 {
		name := fmt.Sprintf("d%d", d+1)
		var hosts []placement.Host
		for i, h := range tr.Hosts {
			if tr.HostDomain[i] == name {
				hosts = append(hosts, placement.Host{Name: h, Capacity: tr.Capacity[i]})
			}
		}
		var ticks []placement.TickBatch
		for tick, row := range tr.Usage {
			b := placement.TickBatch{Domain: name, Tick: int64(tick)}
			for i, v := range row {
				if tr.ContainerDomain[i] == name {
					b.Samples = append(b.Samples, placement.Sample{Domain: name, Tick: int64(tick), Container: tr.Containers[i],
						Host: tr.Hosts[tr.Host[i]], Values: slices.Clone(v)})
				}
			}
			ticks = append(ticks, b)
		}
		want, err := placement.Replay(name, p, hosts, ticks)
		if err != nil {
			t.Fatal(err)
		}
		if got := moveIDs(perDomain[name]); !slices.Equal(got, moveIDs(want.Moves)) {
			t.Errorf("domain %s: the replay's moves %v, the domain alone %v", name, got, moveIDs(want.Moves))
		}
	}

	// node_meta without its domain column: the samples give the domains.
	meta := [][]string{append([]string{"machine_id"}, sample.Metrics...)}
	for i, h := range tr.Hosts {
		meta = append(meta, []string{h, strconv.FormatFloat(tr.Capacity[i][0], 'f', -1, 64), strconv.FormatFloat(tr.Capacity[i][1], 'f', -1, 64)})
	}
	writeRows(t, filepath.Join(data, "node_meta.csv"), meta)
	_, undeclared := replayDomains(t, loadConfig(t, data))
	if !slices.Equal(moveIDs(undeclared), moveIDs(moves)) {
		t.Errorf("hosts without a declared domain: %d moves, differ from the declared run's %d", len(undeclared), len(moves))
	}
}

func moveIDs(ms []placement.Move) []string {
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	return ids
}

func loadConfig(t *testing.T, data string) config.Config {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "hots.yaml")
	yaml := "connector:\n  type: file\n  parameters:\n    domain_field: domain\n    metrics: [cpu, mem]\n    data_folder: " + data + "\n    outfile: " + filepath.Join(dir, "moves.jsonl") + "\n"
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(config.LoadOptions{File: path, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	return *cfg
}

// replayDomains runs the file connector into a run directory, as hots run
// does, and returns the summary and the moves file.
func replayDomains(t *testing.T, cfg config.Config) (*Summary, []placement.Move) {
	t.Helper()
	out, _ := cfg.Connector.Parameters.Extra["outfile"].(string)
	w, err := New(Options{Dir: filepath.Join(filepath.Dir(out), "run"), Metrics: sample.Metrics})
	if err != nil {
		t.Fatal(err)
	}
	env := pipeline.Env(cfg, nil)
	env.RunDir = filepath.Dir(out)
	env.Reject = func(e *codecs.RowError) { w.Rejected(pipeline.ToReject(e)) }
	c, _, err := connectors.Open(file.Name, pipeline.RawConnector(cfg), env)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := pipeline.Run(context.Background(), cfg, c, pipeline.Options{Observer: w, OnInitial: func(in connectors.Initial) {
		caps := map[string][]float64{}
		for _, h := range in.Hosts {
			caps[h.Name] = h.Capacity
		}
		w.SetCapacity(caps)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.HostConflicts != 0 {
		t.Errorf("%d host conflicts, want none", res.HostConflicts)
	}
	s, err := w.Close(RunInfo{Samples: res.Samples, Containers: res.Containers})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var moves []placement.Move
	for _, l := range splitLines(b) {
		m, err := codecs.DecodeMove(l)
		if err != nil {
			t.Fatal(err)
		}
		moves = append(moves, m)
	}
	return s, moves
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := slices.Index(b, '\n')
		if i < 0 {
			i = len(b)
		}
		if i > 0 {
			out = append(out, b[:i])
		}
		b = b[min(i+1, len(b)):]
	}
	return out
}

func writeRows(t *testing.T, path string, rows [][]string) {
	t.Helper()
	var s []byte
	for _, r := range rows {
		for i, f := range r {
			if i > 0 {
				s = append(s, ',')
			}
			s = append(s, f...)
		}
		s = append(s, '\n')
	}
	if err := os.WriteFile(path, s, 0o644); err != nil {
		t.Fatal(err)
	}
}
