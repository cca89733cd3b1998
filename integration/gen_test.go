package integration

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// genTrace writes a multi-domain trace with a domain column: per domain,
// containers with four daily phases, placed so that same-phase containers
// share a host (they peak together: conflicts and overloads to relieve).
// node_meta declares each host's domain (a move never leaves its domain),
// and each domain has a spare empty host: a domain's own hosts are its
// only targets, and those of the containers are all full at their peaks.
func genTrace(t testing.TB, domains, perDomain, hostsPerDomain, ticks int) trace {
	t.Helper()
	dir := t.TempDir()
	var usage, meta strings.Builder
	usage.WriteString("timestamp,domain,container_id,machine_id,cpu,mem\n")
	meta.WriteString("machine_id,domain,cpu,mem\n")
	for d := 0; d < domains; d++ {
		for h := 0; h <= hostsPerDomain; h++ { // and one spare, empty
			fmt.Fprintf(&meta, "d%d-h%d,d%d,%d,%d\n", d, h, d, perDomain/hostsPerDomain*6/2+2, perDomain/hostsPerDomain*8)
		}
	}
	for tk := 0; tk < ticks; tk++ {
		for d := 0; d < domains; d++ {
			for c := 0; c < perDomain; c++ {
				phase := float64(c%4) / 4
				host := (c % 4) % hostsPerDomain
				x := 2 * math.Pi * (float64(tk)/12 + phase + float64(d)/10)
				cpu := 2 + 1.8*math.Sin(x) + 0.1*float64(c%3)
				mem := 4 + 2*math.Cos(x)
				fmt.Fprintf(&usage, "%d,d%d,d%d-c%d,d%d-h%d,%.3f,%.3f\n", tk, d, d, c, d, host, cpu, mem)
			}
		}
	}
	for name, s := range map[string]string{"container_usage.csv": usage.String(), "node_meta.csv": meta.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return trace{dir: dir, yaml: `
clustering: {method: kmeans, nb_clusters: 4, parameters: {random_state: 0}}
problem: {type: placement, parameters: {tol: 0.1, tol_move: 0.2}}
connector:
  parameters: {domain_field: domain, metrics: [cpu, mem], sep_time: 11, tick_increment: 3, window_duration: 6}
`}
}
