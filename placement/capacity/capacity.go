// Package capacity holds the per-host load arithmetic every placement
// decision shares: a host's load is a series per metric over the ticks being
// evaluated, and a container fits only if the sum stays within capacity on
// every metric and every tick. Keeping this in one leaf package means the
// engine, the initial heuristics and the KPIs cannot disagree on what
// "fits" means.
package capacity

import "math"

// Series is a load or demand laid out as [metric][tick].
type Series [][]float64

// NewSeries returns a zero series of the given shape.
func NewSeries(metrics, ticks int) Series {
	buf := make([]float64, metrics*ticks)
	s := make(Series, metrics)
	for m := range s {
		s[m] = buf[m*ticks : (m+1)*ticks : (m+1)*ticks]
	}
	return s
}

// Clone returns a deep copy.
func (s Series) Clone() Series {
	if len(s) == 0 {
		return Series{}
	}
	c := NewSeries(len(s), len(s[0]))
	for m := range s {
		copy(c[m], s[m])
	}
	return c
}

// Add adds d into s in place.
func (s Series) Add(d Series) {
	for m := range s {
		sm, dm := s[m], d[m]
		for t := range sm {
			sm[t] += dm[t]
		}
	}
}

// Sub subtracts d from s in place.
func (s Series) Sub(d Series) {
	for m := range s {
		sm, dm := s[m], d[m]
		for t := range sm {
			sm[t] -= dm[t]
		}
	}
}

// Fits reports whether load+demand stays within cap on every metric and
// tick. Equal to capacity is allowed (a host at exactly 100 % is full, not
// overloaded), matching how overloads are counted (load > capacity).
// A capacity <= 0 or NaN for a metric means "unknown" and never fits, so a
// host without declared capacity can never receive containers.
func Fits(load, demand Series, cap []float64) bool { return FitsScaled(load, demand, cap, 1) }

// FitsScaled is Fits against cap*headroom (headroom in (0,1]).
func FitsScaled(load, demand Series, cap []float64, headroom float64) bool {
	for m := range demand {
		c := cap[m] * headroom
		if !(c > 0) {
			return false
		}
		lm, dm := load[m], demand[m]
		for t := range dm {
			if lm[t]+dm[t] > c+eps(c) {
				return false
			}
		}
	}
	return true
}

// eps absorbs float summation noise so that a load summed in another order
// is not reported as an overload by a rounding error.
func eps(c float64) float64 { return 1e-9 * math.Max(1, math.Abs(c)) }

// Overloaded reports whether any metric exceeds its capacity at any tick.
func Overloaded(load Series, cap []float64) bool {
	for m := range load {
		c := cap[m]
		for _, v := range load[m] {
			if v > c+eps(c) {
				return true
			}
		}
	}
	return false
}

// Excess returns, per metric and tick, how far load exceeds capacity (0 when
// within capacity).
func Excess(load Series, cap []float64) Series {
	e := NewSeries(len(load), ticksOf(load))
	for m := range load {
		c := cap[m]
		for t, v := range load[m] {
			if v > c+eps(c) {
				e[m][t] = v - c
			}
		}
	}
	return e
}

// Flatness scores how uneven a series is: the sum over metrics of the
// population variance of the series divided by that metric's capacity.
// Dividing by capacity is what lets a CPU series in cores and a memory series
// in GiB be compared and summed. Lower is flatter.
func Flatness(s Series, cap []float64) float64 {
	var total float64
	for m := range s {
		c := cap[m]
		if !(c > 0) {
			c = 1
		}
		total += variance(s[m]) / (c * c)
	}
	return total
}

// FlatnessWith is Flatness(load+demand) without allocating.
func FlatnessWith(load, demand Series, cap []float64) float64 {
	return flatnessShifted(load, demand, cap, 1)
}

// FlatnessWithout is Flatness(load-demand) without allocating.
func FlatnessWithout(load, demand Series, cap []float64) float64 {
	return flatnessShifted(load, demand, cap, -1)
}

func flatnessShifted(load, demand Series, cap []float64, sign float64) float64 {
	var total float64
	for m := range load {
		c := cap[m]
		if !(c > 0) {
			c = 1
		}
		lm, dm := load[m], demand[m]
		n := float64(len(lm))
		if n == 0 {
			continue
		}
		var sum, sq float64
		for t := range lm {
			v := lm[t] + sign*dm[t]
			sum += v
			sq += v * v
		}
		mean := sum / n
		total += math.Max(0, sq/n-mean*mean) / (c * c)
	}
	return total
}

// PeakUtil returns the highest load/capacity ratio of load+demand over all
// metrics and ticks.
func PeakUtil(load, demand Series, cap []float64) float64 {
	peak := 0.0
	for m := range load {
		c := cap[m]
		if !(c > 0) {
			return math.Inf(1)
		}
		lm := load[m]
		for t := range lm {
			v := lm[t]
			if demand != nil {
				v += demand[m][t]
			}
			if u := v / c; u > peak {
				peak = u
			}
		}
	}
	return peak
}

// Peak returns the per-metric maximum of s.
func Peak(s Series) []float64 {
	p := make([]float64, len(s))
	for m := range s {
		for _, v := range s[m] {
			if v > p[m] {
				p[m] = v
			}
		}
	}
	return p
}

func ticksOf(s Series) int {
	if len(s) == 0 {
		return 0
	}
	return len(s[0])
}

func variance(x []float64) float64 {
	n := float64(len(x))
	if n == 0 {
		return 0
	}
	var sum, sq float64
	for _, v := range x {
		sum += v
		sq += v * v
	}
	mean := sum / n
	return math.Max(0, sq/n-mean*mean)
}

// Variance is the population variance (divisor n), as upstream uses.
func Variance(x []float64) float64 { return variance(x) }

// AssessMargin evaluates load+demand in one pass: whether it fits, and if
// so its Flatness and peak utilisation. It is what choosing among hundreds
// of candidate hosts per container costs, so it reads each value once and
// stops at the first tick over cap*headroom. Fitting includes a safety
// margin learnt from the combined series itself: per metric, the peak plus
// k times the root mean square of its tick-to-tick changes must stay
// within cap*headroom. A bursty host
// therefore keeps room for the next burst its own history says is likely,
// and a steady one may be filled nearly to capacity (the idea of
// Beloglazov & Buyya's MAD/LR overload thresholds, without their sort).
func AssessMargin(load, demand Series, cap []float64, headroom, k float64) (fits bool, flat, peak float64) {
	for m := range demand {
		c := cap[m]
		if !(c > 0) {
			return false, 0, 0
		}
		limit := c*headroom + eps(c)
		lm, dm := load[m], demand[m]
		var sum, sq, dsq, pk, prev float64
		for t := range dm {
			v := lm[t] + dm[t]
			if v > limit {
				return false, 0, 0
			}
			sum += v
			sq += v * v
			if t > 0 {
				d := v - prev
				dsq += d * d
			}
			prev = v
			pk = max(pk, v)
		}
		n := float64(len(dm))
		if n > 1 && pk+k*math.Sqrt(dsq/(n-1)) > limit {
			return false, 0, 0
		}
		peak = max(peak, pk/c)
		if n > 0 {
			mean := sum / n
			flat += math.Max(0, sq/n-mean*mean) / (c * c)
		}
	}
	return true, flat, peak
}
