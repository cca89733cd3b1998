// Package pack is what the initial placement heuristics share: the problem
// shape they receive (a mirror of initial.Problem, because a heuristic folder
// may not import its parent registry), its validation, the per-host load
// book-keeping with the capacity test, and the cluster profiles and pair
// matrix of spec section 3.3.
package pack

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"hots/placement/capacity"
)

// Host mirrors initial.Host field for field, so the registry converts with
// a plain struct conversion.
type Host struct {
	Name     string
	Capacity []float64
}

// Container mirrors initial.Container.
type Container struct {
	ID     string
	Label  int
	Demand capacity.Series
	Host   int
}

// Problem mirrors initial.Problem.
type Problem struct {
	Hosts      []Host
	Containers []Container
}

// Shape returns the number of metrics and ticks of p after checking that
// every host and container agrees on them, that current hosts are valid
// indices and that demands are finite. Heuristics index freely after this,
// so a malformed problem is an error rather than a panic.
func (p Problem) Shape() (metrics, ticks int, err error) {
	metrics = -1
	if len(p.Hosts) > 0 {
		metrics = len(p.Hosts[0].Capacity)
	} else if len(p.Containers) > 0 {
		metrics = len(p.Containers[0].Demand)
	}
	for _, h := range p.Hosts {
		if len(h.Capacity) != metrics {
			return 0, 0, fmt.Errorf("host %q has %d capacities, want %d (one per metric)", h.Name, len(h.Capacity), metrics)
		}
	}
	ticks = -1
	for _, c := range p.Containers {
		if len(c.Demand) != metrics {
			return 0, 0, fmt.Errorf("container %q has demand for %d metrics, want %d", c.ID, len(c.Demand), metrics)
		}
		for m, row := range c.Demand {
			if ticks < 0 {
				ticks = len(row)
			}
			if len(row) != ticks {
				return 0, 0, fmt.Errorf("container %q metric %d has %d ticks, want %d", c.ID, m, len(row), ticks)
			}
			for t, v := range row {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return 0, 0, fmt.Errorf("container %q metric %d tick %d: demand %v is not finite", c.ID, m, t, v)
				}
			}
		}
		if c.Host < -1 || c.Host >= len(p.Hosts) {
			return 0, 0, fmt.Errorf("container %q runs on host index %d, want -1..%d", c.ID, c.Host, len(p.Hosts)-1)
		}
	}
	return max(metrics, 0), max(ticks, 0), nil
}

// ByID returns the container indices ordered by ID. Problems arrive sorted,
// but every tie-break in the heuristics goes through this order so that the
// result does not depend on how the caller happened to list equal containers.
// Duplicate IDs keep their input order.
func (p Problem) ByID() []int {
	idx := make([]int, len(p.Containers))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(p.Containers[a].ID, p.Containers[b].ID) })
	return idx
}

// RefCapacity is the capacity each metric is scaled by when demands or
// profiles of different metrics are compared or summed: the mean capacity of
// the hosts that declare one (1 when none does). Upstream divides by the first
// node's capacity; the mean is the same on homogeneous clusters and does not
// let one odd host decide the scale on heterogeneous ones.
func (p Problem) RefCapacity(metrics int) []float64 {
	ref := make([]float64, metrics)
	for m := range ref {
		var sum float64
		var n int
		for _, h := range p.Hosts {
			if c := h.Capacity[m]; c > 0 && !math.IsInf(c, 0) {
				sum += c
				n++
			}
		}
		ref[m] = 1
		if n > 0 {
			ref[m] = sum / float64(n)
		}
	}
	return ref
}

// ScaledPeak is a container's highest demand relative to the reference
// capacity, over every metric and tick.
func ScaledPeak(d capacity.Series, ref []float64) float64 {
	peak := 0.0
	for m, row := range d {
		for _, v := range row {
			peak = max(peak, v/ref[m])
		}
	}
	return peak
}

// ScaledTotal is a container's summed demand relative to the reference
// capacity, over every metric and tick.
func ScaledTotal(d capacity.Series, ref []float64) float64 {
	var total float64
	for m, row := range d {
		for _, v := range row {
			total += v / ref[m]
		}
	}
	return total
}

// ByPeakDesc orders container indices by scaled peak descending, then scaled
// total descending, then ID, the order every first-fit-decreasing pass uses.
func (p Problem) ByPeakDesc(idx []int, ref []float64) []int {
	type key struct {
		i           int
		peak, total float64
	}
	keys := make([]key, len(idx))
	for k, i := range idx {
		d := p.Containers[i].Demand
		keys[k] = key{i, ScaledPeak(d, ref), ScaledTotal(d, ref)}
	}
	slices.SortStableFunc(keys, func(a, b key) int {
		if c := cmp.Compare(b.peak, a.peak); c != 0 {
			return c
		}
		if c := cmp.Compare(b.total, a.total); c != 0 {
			return c
		}
		return cmp.Compare(p.Containers[a.i].ID, p.Containers[b.i].ID)
	})
	out := make([]int, len(keys))
	for k, kk := range keys {
		out[k] = kk.i
	}
	return out
}

// MinHosts is upstream's nb_min_nodes made capacity-aware: the fewest hosts,
// taken in node order, whose capacities (× headroom) add up to the peak of
// the summed demand on every metric. It is a lower bound used to start
// round-robin passes consolidated; passes still open further hosts when
// nothing fits. At least 1 when there are hosts, at most len(Hosts).
func (p Problem) MinHosts(metrics, ticks int, headroom float64) int {
	if len(p.Hosts) == 0 {
		return 0
	}
	total := capacity.NewSeries(metrics, ticks)
	for _, c := range p.Containers {
		total.Add(c.Demand)
	}
	need := capacity.Peak(total)
	have := make([]float64, metrics)
	for k, h := range p.Hosts {
		enough := true
		for m := range have {
			if c := h.Capacity[m]; c > 0 {
				have[m] += c * headroom
			}
			if have[m] < need[m] {
				enough = false
			}
		}
		if enough {
			return k + 1
		}
	}
	return len(p.Hosts)
}
