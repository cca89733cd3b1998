// Package kpi measures a run: fed one closed tick at a time with every
// host's load, it accumulates the figures a run reports (overloads, excess,
// utilisation spread and peak, hosts used, and the thesis' amplitude and
// load-balance criteria). It has no I/O and no clock, so the same figures
// come out of a replay, a live run and a test.
//
// Memory is O(hosts × metrics), whatever the number of ticks: overloads and
// spread are folded in as each tick arrives, and the per-host time figures
// (variance, amplitude) are running sums (Welford).
//
// Conventions:
//   - a host absent from a tick's load map had zero load at that tick,
//     including the ticks before it first appeared;
//   - a host whose capacity for a metric is unknown (not in the map, missing
//     from its slice, or ≤ 0) counts in the load figures (HostsUsed,
//     LoadVariance, MaxAmplitude) but not in those that need a capacity
//     (overloads, excess, spread, peak utilisation) for that metric;
//   - a cell (host, tick) is overloaded on a metric when load > capacity,
//     with capacity.CellOverloaded's rounding allowance, so KPIs and the
//     placement fit test agree on what "full" means;
//   - ticks are counted as fed, not as a range: a tick number not after the
//     last one fed is ignored, which makes re-delivery of a closed tick
//     harmless.
package kpi

import (
	"math"
	"slices"

	"hots/placement/capacity"
)

// usedLoad is the load above which a host counts as used: it absorbs float
// residue of loads computed by subtraction.
const usedLoad = 1e-9

// Totals are the figures of a run so far. Per-metric slices follow the
// metrics given to New.
type Totals struct {
	Metrics []string `json:"metrics"`
	// Ticks is the number of ticks fed.
	Ticks int `json:"ticks"`
	// OverloadedCells counts (host, tick) cells whose load exceeds capacity,
	// per metric; OverloadedCellsAny counts cells overloaded on at least one.
	OverloadedCells    []int `json:"overloaded_cells"`
	OverloadedCellsAny int   `json:"overloaded_cells_any"`
	// Excess sums load − capacity over the overloaded cells, per metric.
	Excess []float64 `json:"excess"`
	// MeanSpread and MaxSpread are the mean and max over ticks of the
	// population standard deviation, across hosts with known capacity, of
	// utilisation (load / capacity), per metric. Ticks without any such
	// host are left out of the mean.
	MeanSpread []float64 `json:"mean_spread"`
	MaxSpread  []float64 `json:"max_spread"`
	// PeakUtil is the highest utilisation seen, per metric.
	PeakUtil []float64 `json:"peak_util"`
	// HostsUsed counts hosts with non-zero load on some metric at some
	// tick; MeanHostsUsed is the mean over ticks of the hosts loaded at
	// that tick (thesis c1 counts hosts whose mean load is non-zero).
	HostsUsed     int     `json:"hosts_used"`
	MeanHostsUsed float64 `json:"mean_hosts_used"`
	// LoadVariance is, per metric, the mean over every known host of the
	// population variance of that host's load over all ticks. It is the
	// thesis' c3 (load balance over time), except that c3 uses the sample
	// variance (divisor n−1); the population variance matches the rest of
	// hots (capacity.Variance, spec 3.3) and is defined for one tick.
	LoadVariance []float64 `json:"load_variance"`
	// MaxAmplitude is, per metric, the max over hosts of (max − min) of the
	// host's load over all ticks: the thesis' c2.
	MaxAmplitude []float64 `json:"max_amplitude"`
}

// Accumulator folds ticks into Totals. It is not safe for concurrent use.
type Accumulator struct {
	metrics []string
	hosts   []*hostStats
	index   map[string]int

	ticks    int
	lastTick int64

	overloaded    []int
	overloadedAny int
	excess        []float64
	spreadSum     []float64
	spreadTicks   []int
	spreadMax     []float64
	peakUtil      []float64
	usedTickSum   int
}

// hostStats is one host's capacity and running load statistics per metric
// over the ticks seen so far (zeros before it appeared).
type hostStats struct {
	cap      []float64 // 0 = unknown
	used     bool
	n        int
	mean, m2 []float64
	min, max []float64
}

// New returns an empty accumulator for the given metrics and host
// capacities (host → one capacity per metric).
func New(metrics []string, capacity map[string][]float64) *Accumulator {
	m := len(metrics)
	a := &Accumulator{
		metrics:     slices.Clone(metrics),
		index:       map[string]int{},
		overloaded:  make([]int, m),
		excess:      make([]float64, m),
		spreadSum:   make([]float64, m),
		spreadTicks: make([]int, m),
		spreadMax:   make([]float64, m),
		peakUtil:    make([]float64, m),
	}
	names := make([]string, 0, len(capacity))
	for h := range capacity {
		names = append(names, h)
	}
	slices.Sort(names)
	for _, h := range names {
		a.SetCapacity(h, capacity[h])
	}
	return a
}

// SetCapacity declares or changes a host's capacity. It applies to the
// ticks fed after the call.
func (a *Accumulator) SetCapacity(host string, cap []float64) {
	hs := a.host(host)
	for m := range hs.cap {
		hs.cap[m] = 0
		if m < len(cap) && cap[m] > 0 && !math.IsInf(cap[m], 0) {
			hs.cap[m] = cap[m]
		}
	}
}

// host returns the statistics of a host, registering it with zero load
// over every tick fed so far if it is new.
func (a *Accumulator) host(name string) *hostStats {
	if i, ok := a.index[name]; ok {
		return a.hosts[i]
	}
	m := len(a.metrics)
	hs := &hostStats{
		cap:  make([]float64, m),
		n:    a.ticks,
		mean: make([]float64, m),
		m2:   make([]float64, m),
		min:  make([]float64, m),
		max:  make([]float64, m),
	}
	a.index[name] = len(a.hosts)
	a.hosts = append(a.hosts, hs)
	return hs
}

// AddTick folds one closed tick: load maps host → load per metric; hosts
// absent had zero load. A tick not after the last one fed is ignored.
func (a *Accumulator) AddTick(tick int64, load map[string][]float64) {
	if a.ticks > 0 && tick <= a.lastTick {
		return
	}
	a.lastTick = tick
	newHosts := make([]string, 0)
	for h := range load {
		if _, ok := a.index[h]; !ok {
			newHosts = append(newHosts, h)
		}
	}
	slices.Sort(newHosts)
	for _, h := range newHosts {
		a.host(h)
	}
	// Per-host values in index order, so sums do not depend on map order.
	vals := make([][]float64, len(a.hosts))
	for h, i := range a.index {
		vals[i] = load[h]
	}
	at := func(i, m int) float64 {
		if m < len(vals[i]) {
			return vals[i][m]
		}
		return 0
	}

	used := 0
	for i, hs := range a.hosts {
		over, loaded := false, false
		for m := range a.metrics {
			v := at(i, m)
			hs.add(m, v)
			if v > usedLoad {
				loaded = true
			}
			c := hs.cap[m]
			if c == 0 {
				continue
			}
			a.peakUtil[m] = max(a.peakUtil[m], v/c)
			if capacity.CellOverloaded(v, c) {
				over = true
				a.overloaded[m]++
				a.excess[m] += v - c
			}
		}
		hs.n++
		if over {
			a.overloadedAny++
		}
		if loaded {
			hs.used = true
			used++
		}
	}
	a.usedTickSum += used
	for m := range a.metrics {
		var sum float64
		n := 0
		for i, hs := range a.hosts {
			if c := hs.cap[m]; c > 0 {
				sum += at(i, m) / c
				n++
			}
		}
		if n == 0 {
			continue
		}
		mean := sum / float64(n)
		var sq float64
		for i, hs := range a.hosts {
			if c := hs.cap[m]; c > 0 {
				d := at(i, m)/c - mean
				sq += d * d
			}
		}
		sd := math.Sqrt(sq / float64(n))
		a.spreadSum[m] += sd
		a.spreadTicks[m]++
		a.spreadMax[m] = max(a.spreadMax[m], sd)
	}
	a.ticks++
}

// add folds value v of metric m as tick number hs.n+1 (Welford); the caller
// increments hs.n once all metrics are added.
func (hs *hostStats) add(m int, v float64) {
	n := float64(hs.n + 1)
	d := v - hs.mean[m]
	hs.mean[m] += d / n
	hs.m2[m] += d * (v - hs.mean[m])
	if hs.n == 0 {
		hs.min[m], hs.max[m] = v, v
		return
	}
	hs.min[m] = min(hs.min[m], v)
	hs.max[m] = max(hs.max[m], v)
}

// Totals returns the figures so far. It does not change the accumulator.
func (a *Accumulator) Totals() Totals {
	m := len(a.metrics)
	t := Totals{
		Metrics:            slices.Clone(a.metrics),
		Ticks:              a.ticks,
		OverloadedCells:    slices.Clone(a.overloaded),
		OverloadedCellsAny: a.overloadedAny,
		Excess:             slices.Clone(a.excess),
		MeanSpread:         make([]float64, m),
		MaxSpread:          slices.Clone(a.spreadMax),
		PeakUtil:           slices.Clone(a.peakUtil),
		LoadVariance:       make([]float64, m),
		MaxAmplitude:       make([]float64, m),
	}
	for k := range m {
		if a.spreadTicks[k] > 0 {
			t.MeanSpread[k] = a.spreadSum[k] / float64(a.spreadTicks[k])
		}
	}
	if a.ticks > 0 {
		t.MeanHostsUsed = float64(a.usedTickSum) / float64(a.ticks)
	}
	for _, hs := range a.hosts {
		if hs.used {
			t.HostsUsed++
		}
		if hs.n == 0 {
			continue
		}
		for k := range m {
			t.LoadVariance[k] += hs.m2[k] / float64(hs.n)
			t.MaxAmplitude[k] = max(t.MaxAmplitude[k], hs.max[k]-hs.min[k])
		}
	}
	if len(a.hosts) > 0 {
		for k := range m {
			t.LoadVariance[k] /= float64(len(a.hosts))
		}
	}
	return t
}
