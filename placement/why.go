package placement

import (
	"fmt"
	"strings"

	"hots/placement/capacity"
)

// The words of Move.Why come from the numbers the engine decided on, so
// that a reader of the moves log can check them against node_usage.csv.

// targetWhy is what a move does to its two hosts over the span.
func (ev *evaluation) targetWhy(m Move, x capacity.Series, to int32) string {
	e := ev.s.e
	var b strings.Builder
	fmt.Fprintf(&b, "; %s peaks at %.2f of capacity with it over the last %d ticks (%.2f before, limit %.2f)",
		m.NewHost, m.TargetPeakAfter, len(ev.v.ticks), m.TargetPeakBefore, e.p.Headroom)
	if m.SourcePeakBefore > 0 {
		fmt.Fprintf(&b, "; %s goes from %.2f to %.2f", m.OldHost, m.SourcePeakBefore, m.SourcePeakAfter)
	}
	return b.String()
}

// riskWhy says why a host is relieved: the metric it is most often over
// capacity on (ticks over, peak), else the forecast that put it at risk.
func (ev *evaluation) riskWhy(h int32) string {
	e := ev.s.e
	cp := e.hosts[h].Capacity
	name := e.hosts[h].Name
	best, bestOver, bestPeak := -1, 0, 0.0
	for m, l := range ev.loads[h] {
		over, peak := 0, 0.0
		for _, v := range l {
			if capacity.CellOverloaded(v, cp[m]) {
				over++
			}
			peak = max(peak, v/cp[m])
		}
		if over > bestOver || (over == bestOver && over > 0 && peak > bestPeak) {
			best, bestOver, bestPeak = m, over, peak
		}
	}
	if best >= 0 && bestOver >= e.p.ReliefTicks {
		return fmt.Sprintf("%s over %s capacity at %d of the last %d ticks (peak %.2f)", name, e.p.Metrics[best], bestOver, len(ev.v.ticks), bestPeak)
	}
	for m, full := range ev.loads[h] {
		mean, _ := meanSD(full[len(full)-ev.w:])
		_, sd := meanSD(full)
		if f := mean + e.p.ForecastZ*sd; f > cp[m] {
			return fmt.Sprintf("%s %s forecast over capacity: window mean %.2f + %.1f sd %.2f = %.2f of capacity",
				name, e.p.Metrics[m], mean/cp[m], e.p.ForecastZ, sd/cp[m], f/cp[m])
		}
	}
	return name + " at risk of overload"
}

// containerWhy names the container, its cluster and its share of the host.
func (ev *evaluation) containerWhy(i int, share float64, what string) string {
	return fmt.Sprintf("; %s (cluster %d, %.2f of the host's capacity per metric and tick over the window) is %s",
		ev.v.names[i], ev.s.labels[ev.v.ids[i]], share, what)
}
