// Package sample generates the bundled trace hots runs when it is given no
// data: containers with phase-shifted daily usage profiles, placed so that
// hosts mostly hold containers that peak together — the situation the
// method exists to fix — with capacities that such hosts exceed at their
// peaks. The shape follows the generator of data/synthetic (gen_params):
// cpu = max(0, level + amp·sin(2πt/period + 2π·group/groups + jitter) + noise).
package sample

import (
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// Params shape a trace. Zero fields take the defaults below.
type Params struct {
	Containers int
	Hosts      int
	Ticks      int
	Seed       uint64
	Period     int     // ticks per "day"
	Groups     int     // phase groups
	Shuffle    float64 // fraction of containers placed off their group's hosts
	Util       float64 // mean utilisation the capacities are sized for
	Noise      float64 // relative noise
	// Domains > 1 writes that many independent clusters into one trace,
	// each of Containers containers on Hosts hosts (seed Seed+i for the
	// i-th), with a domain column in both CSVs and distinct names per
	// domain: domain "d1" has hosts d1_n_1… and containers d1_c_1….
	Domains int
}

// DomainField is the column the domains are written in (set
// connector.parameters.domain_field to it).
const DomainField = "domain"

// Defaults of the bundled sample.
const (
	DefaultContainers = 40
	DefaultHosts      = 6
	DefaultTicks      = 96
	DefaultSeed       = 42
)

// Metrics are the generated metric columns.
var Metrics = []string{"cpu", "mem"}

func (p *Params) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&p.Containers, DefaultContainers)
	def(&p.Hosts, DefaultHosts)
	def(&p.Ticks, DefaultTicks)
	def(&p.Period, 24)
	def(&p.Groups, 4)
	if p.Seed == 0 {
		p.Seed = DefaultSeed
	}
	if p.Shuffle <= 0 {
		p.Shuffle = 0.3
	}
	if p.Util <= 0 {
		p.Util = 0.62
	}
	if p.Noise <= 0 {
		p.Noise = 0.08
	}
}

// Trace is a generated trace in memory.
type Trace struct {
	Params     Params
	Containers []string
	Hosts      []string
	Host       []int         // container → initial host index
	Usage      [][][]float64 // [tick][container][metric]
	Capacity   [][]float64   // [host][metric]
	// HostDomain and ContainerDomain are each host's and container's
	// domain with Params.Domains > 1, nil otherwise.
	HostDomain, ContainerDomain []string
}

// Generate builds the trace; the same Params give the same trace.
func Generate(p Params) (*Trace, error) {
	p.defaults()
	if p.Domains > 1 {
		return generateDomains(p)
	}
	if p.Hosts > p.Containers {
		return nil, fmt.Errorf("sample: %d hosts for %d containers: want at most one host per container", p.Hosts, p.Containers)
	}
	r := rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15))
	t := &Trace{Params: p, Host: make([]int, p.Containers)}
	for i := range p.Containers {
		t.Containers = append(t.Containers, fmt.Sprintf("c_%d", i+1))
	}
	for h := range p.Hosts {
		t.Hosts = append(t.Hosts, fmt.Sprintf("n_%d", h+1))
	}
	type prof struct {
		group       int
		level, amp  float64
		jitter      float64
		mem, memAmp float64
	}
	profs := make([]prof, p.Containers)
	for i := range profs {
		lv := 0.5 + 1.5*r.Float64()
		mem := 1 + 3*r.Float64()
		profs[i] = prof{
			group:  i * p.Groups / p.Containers, // contiguous blocks: one phase per block
			level:  lv,
			amp:    lv * (0.6 + 0.3*r.Float64()),
			jitter: (r.Float64() - 0.5) * 0.4,
			mem:    mem,
			memAmp: mem * 0.25 * r.Float64(),
		}
	}
	// Same-phase blocks on consecutive hosts, then a share of containers
	// swapped between hosts at random.
	for i := range t.Host {
		t.Host[i] = i * p.Hosts / p.Containers
	}
	swaps := int(math.Round(p.Shuffle * float64(p.Containers) / 2))
	for range swaps {
		a, b := r.IntN(p.Containers), r.IntN(p.Containers)
		t.Host[a], t.Host[b] = t.Host[b], t.Host[a]
	}
	sums := make([]float64, len(Metrics))
	for tick := range p.Ticks {
		row := make([][]float64, p.Containers)
		for i, pr := range profs {
			phase := 2*math.Pi*float64(tick)/float64(p.Period) + 2*math.Pi*float64(pr.group)/float64(p.Groups) + pr.jitter
			cpu := max(0, pr.level+pr.amp*math.Sin(phase)+p.Noise*pr.level*r.NormFloat64())
			mem := max(0, pr.mem+pr.memAmp*math.Sin(phase)+p.Noise*pr.mem*r.NormFloat64()/2)
			row[i] = []float64{round3(cpu), round3(mem)}
			sums[0] += row[i][0]
			sums[1] += row[i][1]
		}
		t.Usage = append(t.Usage, row)
	}
	// One capacity for every host, sized so the mean host runs at Util.
	cap := make([]float64, len(Metrics))
	for m := range cap {
		cap[m] = math.Round(10*sums[m]/float64(p.Ticks*p.Hosts)/p.Util) / 10
	}
	for range p.Hosts {
		t.Capacity = append(t.Capacity, append([]float64(nil), cap...))
	}
	return t, nil
}

// generateDomains is Params.Domains clusters side by side.
func generateDomains(p Params) (*Trace, error) {
	all := &Trace{Params: p, Usage: make([][][]float64, p.Ticks)}
	for d := range p.Domains {
		q := p
		q.Domains, q.Seed = 0, p.Seed+uint64(d)
		t, err := Generate(q)
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("d%d", d+1)
		for _, c := range t.Containers {
			all.Containers = append(all.Containers, name+"_"+c)
			all.ContainerDomain = append(all.ContainerDomain, name)
		}
		for _, h := range t.Host {
			all.Host = append(all.Host, len(all.Hosts)+h)
		}
		for i, h := range t.Hosts {
			all.Hosts = append(all.Hosts, name+"_"+h)
			all.HostDomain = append(all.HostDomain, name)
			all.Capacity = append(all.Capacity, t.Capacity[i])
		}
		for tick := range all.Usage {
			all.Usage[tick] = append(all.Usage[tick], t.Usage[tick]...)
		}
	}
	return all, nil
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// Write stores the trace as container_usage.csv and node_meta.csv (upstream
// column names) in dir.
func (t *Trace) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	dom := len(t.HostDomain) > 0
	usage := [][]string{append([]string{"timestamp", "container_id", "machine_id"}, Metrics...)}
	meta := [][]string{append([]string{"machine_id"}, Metrics...)}
	if dom {
		usage[0] = append([]string{"timestamp", DomainField}, usage[0][1:]...)
		meta[0] = append([]string{"machine_id", DomainField}, Metrics...)
	}
	for tick, row := range t.Usage {
		for i, v := range row {
			r := []string{strconv.Itoa(tick), t.Containers[i], t.Hosts[t.Host[i]], f(v[0]), f(v[1])}
			if dom {
				r = append([]string{r[0], t.ContainerDomain[i]}, r[1:]...)
			}
			usage = append(usage, r)
		}
	}
	for h, c := range t.Capacity {
		r := []string{t.Hosts[h], f(c[0]), f(c[1])}
		if dom {
			r = []string{t.Hosts[h], t.HostDomain[h], f(c[0]), f(c[1])}
		}
		meta = append(meta, r)
	}
	for name, rows := range map[string][][]string{"container_usage.csv": usage, "node_meta.csv": meta} {
		if err := writeCSV(filepath.Join(dir, name), rows); err != nil {
			return err
		}
	}
	return nil
}

func writeCSV(path string, rows [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	if err := w.WriteAll(rows); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
