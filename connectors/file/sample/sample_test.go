package sample

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func overloads(tr *Trace, m int) int {
	n := 0
	for _, row := range tr.Usage {
		load := make([]float64, len(tr.Hosts))
		for i, v := range row {
			load[tr.Host[i]] += v[m]
		}
		for h, l := range load {
			if l > tr.Capacity[h][m] {
				n++
			}
		}
	}
	return n
}

func TestGenerate(t *testing.T) {
	a, err := Generate(Params{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(Params{})
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same params, different traces")
	}
	c, _ := Generate(Params{Seed: 7})
	if reflect.DeepEqual(a.Usage, c.Usage) {
		t.Fatal("different seeds, same usage")
	}
	if len(a.Usage) != DefaultTicks || len(a.Usage[0]) != DefaultContainers || len(a.Capacity) != DefaultHosts {
		t.Fatalf("shape %d ticks × %d containers, %d hosts", len(a.Usage), len(a.Usage[0]), len(a.Capacity))
	}
	// The trace must give the method something to fix: same-phase hosts
	// overload at their peaks, but not all the time.
	if n := overloads(a, 0); n == 0 || n > DefaultTicks*DefaultHosts/3 {
		t.Errorf("cpu overloaded cells %d", n)
	}
	if _, err := Generate(Params{Containers: 2, Hosts: 3}); err == nil {
		t.Error("more hosts than containers accepted")
	}
}

func TestWrite(t *testing.T) {
	tr, _ := Generate(Params{Containers: 4, Hosts: 2, Ticks: 3})
	dir := t.TempDir()
	if err := tr.Write(dir); err != nil {
		t.Fatal(err)
	}
	u, _ := os.ReadFile(filepath.Join(dir, "container_usage.csv"))
	lines := strings.Split(strings.TrimSpace(string(u)), "\n")
	if len(lines) != 1+3*4 || lines[0] != "timestamp,container_id,machine_id,cpu,mem" || !strings.HasPrefix(lines[1], "0,c_1,n_") {
		t.Errorf("container_usage.csv: %q", lines[:2])
	}
	m, _ := os.ReadFile(filepath.Join(dir, "node_meta.csv"))
	if ml := strings.Split(strings.TrimSpace(string(m)), "\n"); len(ml) != 3 || ml[0] != "machine_id,cpu,mem" {
		t.Errorf("node_meta.csv: %q", ml)
	}
}
