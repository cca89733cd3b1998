package handlers

import (
	"reflect"
	"strings"
	"testing"

	"hots/codecs"
	"hots/placement"
)

// capacities returns what an engine knows of each host: its capacity, or
// nil when it has none (a host seen in samples only: never a target).
func capacities(t *testing.T, p *Placer, domain string) map[string][]float64 {
	t.Helper()
	e := p.Domains()[domain]
	if e == nil {
		t.Fatalf("no engine for domain %s", domain)
	}
	out := map[string][]float64{}
	for _, h := range e.Hosts() {
		if h.Capacity[0] > 0 {
			out[h.Name] = h.Capacity
		} else {
			out[h.Name] = nil
		}
	}
	return out
}

func TestPlacerHostDomains(t *testing.T) {
	var conflicts []HostConflict
	p := &Placer{Params: placement.Params{Metrics: []string{"cpu"}, SepTime: 100},
		Hosts: []placement.Host{{Name: "a_1", Capacity: []float64{4}}, {Name: "b_1", Capacity: []float64{5}},
			{Name: "x_1", Capacity: []float64{6}}, {Name: "y_1", Capacity: []float64{7}}},
		Declared: map[string]codecs.HostDomain{
			"a_1": {Domain: "a", Where: codecs.Position{Source: "node_meta.csv", Line: 2}},
			"b_1": {Domain: "b", Where: codecs.Position{Source: "node_meta.csv", Line: 3}},
		},
		OnConflict: func(c HostConflict) { conflicts = append(conflicts, c) },
	}
	tick := func(domain string, tk int64, hosts ...string) {
		t.Helper()
		b := placement.TickBatch{Domain: domain, Tick: tk}
		for i, h := range hosts {
			b.Samples = append(b.Samples, placement.Sample{Domain: domain, Tick: tk, Container: domain + "_c" + string(rune('0'+i)), Host: h, Values: []float64{1}})
		}
		if _, err := p.CloseTick(b); err != nil {
			t.Fatal(err)
		}
	}
	// Declared hosts only; x_1, undeclared, joins a (the first sample naming it).
	tick("a", 0, "a_1", "x_1")
	tick("b", 0, "b_1")
	if got, want := capacities(t, p, "a"), map[string][]float64{"a_1": {4}, "x_1": {6}}; !reflect.DeepEqual(got, want) {
		t.Errorf("domain a knows %v, want %v", got, want)
	}
	if got, want := capacities(t, p, "b"), map[string][]float64{"b_1": {5}}; !reflect.DeepEqual(got, want) {
		t.Errorf("domain b knows %v, want %v", got, want)
	}
	if len(conflicts) != 0 {
		t.Fatalf("conflicts %v, want none yet", conflicts)
	}

	// b names x_1 (a's by its first sample) and a_1 (declared in a): two
	// conflicts, each once, and b never gets their capacity.
	tick("b", 1, "b_1", "x_1", "a_1")
	tick("b", 2, "b_1", "x_1", "a_1")
	if len(conflicts) != 2 {
		t.Fatalf("conflicts %v, want 2 (x_1 and a_1, once each)", conflicts)
	}
	for i, want := range []string{
		`host "x_1" belongs to domain "a" (first named by a sample at tick 0 (container a_c1)) but domain "b" names it at tick 1 (container b_c1)`,
		`host "a_1" belongs to domain "a" (declared at node_meta.csv:2) but domain "b" names it at tick 1 (container b_c2)`,
	} {
		if got := conflicts[i].String(); !strings.HasPrefix(got, want) {
			t.Errorf("conflict %d = %q, want prefix %q", i, got, want)
		}
	}
	if got, want := capacities(t, p, "b"), map[string][]float64{"b_1": {5}, "x_1": nil, "a_1": nil}; !reflect.DeepEqual(got, want) {
		t.Errorf("domain b knows %v, want %v", got, want)
	}
	if p.Conflicts() != 2 {
		t.Errorf("Conflicts() = %d, want 2", p.Conflicts())
	}

	// A nodes record with a domain goes to that domain's engine only; one
	// without changes the capacity in the host's own domain; one naming
	// another domain is a conflict, and the capacity stays in the first.
	at := func(off int64) codecs.Position { return codecs.Position{Source: "nodes", Partition: 0, Offset: off} }
	if err := p.SetHost(placement.Host{Name: "z_1", Capacity: []float64{9}}, codecs.HostDomain{Domain: "b", Where: at(7)}); err != nil {
		t.Fatal(err)
	}
	if err := p.SetHost(placement.Host{Name: "a_1", Capacity: []float64{8}}, codecs.HostDomain{Where: at(8)}); err != nil {
		t.Fatal(err)
	}
	if err := p.SetHost(placement.Host{Name: "a_1", Capacity: []float64{3}}, codecs.HostDomain{Domain: "b", Where: at(9)}); err != nil {
		t.Fatal(err)
	}
	if got, want := capacities(t, p, "a"), map[string][]float64{"a_1": {3}, "x_1": {6}}; !reflect.DeepEqual(got, want) {
		t.Errorf("after the nodes records domain a knows %v, want %v", got, want)
	}
	if got, want := capacities(t, p, "b"), map[string][]float64{"b_1": {5}, "x_1": nil, "a_1": nil, "z_1": {9}}; !reflect.DeepEqual(got, want) {
		t.Errorf("after the nodes records domain b knows %v, want %v", got, want)
	}
	if len(conflicts) != 2 {
		t.Errorf("a_1 declared in b by nodes@9: already reported for (a_1, b), want no second report: %v", conflicts)
	}

	// The default domain (samples naming none) keeps the undeclared hosts
	// nobody claimed: y_1, not x_1.
	tick(placement.DefaultDomain, 0, "y_1")
	if got, want := capacities(t, p, placement.DefaultDomain), map[string][]float64{"y_1": {7}}; !reflect.DeepEqual(got, want) {
		t.Errorf("default domain knows %v, want %v", got, want)
	}
	// A new domain names z_1 (declared in b by the nodes topic): the
	// conflict names the topic offset.
	tick("c", 0, "z_1")
	if len(conflicts) != 3 || !strings.Contains(conflicts[2].String(), `host "z_1" belongs to domain "b" (declared at nodes[0]@7) but domain "c"`) {
		t.Errorf("conflicts %v, want z_1 declared at nodes[0]@7", conflicts)
	}
}

// A restored engine keeps the hosts it had (claimed by its samples before
// the checkpoint), and capacities learnt since win.
func TestPlacerAdoptRestoredEngine(t *testing.T) {
	params := placement.Params{Metrics: []string{"cpu"}, SepTime: 100}
	old, err := placement.New("a", params, []placement.Host{{Name: "x_1", Capacity: []float64{6}}})
	if err != nil {
		t.Fatal(err)
	}
	var conflicts []HostConflict
	p := &Placer{Params: params, Hosts: []placement.Host{{Name: "x_1", Capacity: []float64{2}}, {Name: "b_1", Capacity: []float64{5}}},
		Declared:   map[string]codecs.HostDomain{"b_1": {Domain: "b"}},
		OnConflict: func(c HostConflict) { conflicts = append(conflicts, c) }}
	if err := p.Adopt("a", old); err != nil {
		t.Fatal(err)
	}
	p.SetEngine("a", old)
	if got, want := capacities(t, p, "a"), map[string][]float64{"x_1": {2}}; !reflect.DeepEqual(got, want) {
		t.Errorf("restored a knows %v, want %v", got, want)
	}
	// Another domain restored with a capacity for x_1: a conflict, and
	// the capacity is taken away from it.
	other, _ := placement.New("c", params, []placement.Host{{Name: "x_1", Capacity: []float64{6}}})
	if err := p.Adopt("c", other); err != nil {
		t.Fatal(err)
	}
	p.SetEngine("c", other)
	if got, want := capacities(t, p, "c"), map[string][]float64{"x_1": nil}; !reflect.DeepEqual(got, want) {
		t.Errorf("restored c knows %v, want %v", got, want)
	}
	if len(conflicts) != 1 || conflicts[0].Host != "x_1" || conflicts[0].Domain != "a" || conflicts[0].Other != "c" {
		t.Errorf("conflicts %v, want x_1 of a named by c", conflicts)
	}
}
