package integration

import (
	"testing"
	"time"

	"hots/connectors/file/sample"
	"hots/placement"
)

// domainsTrace is `hots generate --domains 3`: three clusters with distinct
// host names, a domain column in both CSVs.
func domainsTrace(t testing.TB) (trace, map[string]string) {
	t.Helper()
	tr, err := sample.Generate(sample.Params{Domains: 3, Containers: 24, Hosts: 4, Ticks: 48})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := tr.Write(dir); err != nil {
		t.Fatal(err)
	}
	domainOf := map[string]string{}
	for i, h := range tr.Hosts {
		domainOf[h] = tr.HostDomain[i]
	}
	return trace{dir: dir, yaml: `
clustering: {method: kmeans, nb_clusters: 4, parameters: {random_state: 0}}
problem: {type: placement, parameters: {tol: 0.1, tol_move: 0.2, initial_placement: true, history_ticks: 24}}
connector:
  parameters: {domain_field: domain, metrics: [cpu, mem], sep_time: 23, tick_increment: 6, window_duration: 12}
`}, domainOf
}

// crossDomain lists the moves whose target is a host of another domain
// (by node_meta's domain column).
func crossDomain(moves map[string]placement.Move, domainOf map[string]string) []placement.Move {
	var out []placement.Move
	for _, m := range moves {
		if domainOf[m.NewHost] != m.Domain {
			out = append(out, m)
		}
	}
	return out
}

// Several domains (the Kafka message key, so on different partitions):
// the service's move ids equal the file replay's, and no move, in either
// mode, sends a container to another domain's host.
func TestKafkaDomains(t *testing.T) {
	tr, domainOf := domainsTrace(t)
	b := startBroker(t, 0, "")
	defer b.Close()
	addr := b.Addrs()[0]
	cfg := writeConfig(t, t.TempDir(), tr, addr, "", "")
	want := fileReplay(t, cfg, tr)
	if x := crossDomain(want, domainOf); len(x) > 0 {
		t.Fatalf("file replay: %d of %d moves leave their domain, e.g. %+v", len(x), len(want), x[0])
	}
	perDomain := map[string]int{}
	for _, m := range want {
		perDomain[m.Domain]++
	}
	if len(perDomain) != 3 {
		t.Fatalf("file replay moves per domain %v: want moves in each of the 3 domains", perDomain)
	}
	svc := startService(t, cfg, "svc", true)
	produce(t, cfg, tr, addr, 0)
	ticks := traceTicks(t, tr)
	waitTicksClosed(t, svc, countTicks(ticks), 60*time.Second)
	waitAllClosed(t, addr, ticks, 30*time.Second)
	n := waitSameMoves(t, addr, want, 30*time.Second)
	got, _ := readMoves(t, addr, "hots.moves")
	if x := crossDomain(got, domainOf); len(x) > 0 {
		t.Errorf("service: %d of %d moves leave their domain, e.g. %+v", len(x), len(got), x[0])
	}
	if p := svc.metric("hots_poison_total"); p != 0 {
		t.Errorf("poison_total = %v, want 0", p)
	}
	t.Logf("%d moves (%d records, per domain %v) equal the file replay, none leaves its domain", len(want), n, perDomain)
}
