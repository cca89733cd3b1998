package kpi

// Delta is a run's Totals minus a baseline's, field by field (per-metric
// slices follow the run's metrics). Every run is compared with the same
// trace replayed without moves, and for overloads, excess, spread and
// variance a negative delta means the moves helped.
type Delta struct {
	OverloadedCells    []int     `json:"overloaded_cells"`
	OverloadedCellsAny int       `json:"overloaded_cells_any"`
	Excess             []float64 `json:"excess"`
	MeanSpread         []float64 `json:"mean_spread"`
	MaxSpread          []float64 `json:"max_spread"`
	PeakUtil           []float64 `json:"peak_util"`
	HostsUsed          int       `json:"hosts_used"`
	MeanHostsUsed      float64   `json:"mean_hosts_used"`
	LoadVariance       []float64 `json:"load_variance"`
	MaxAmplitude       []float64 `json:"max_amplitude"`
}

// Compare returns t − base. A metric the baseline lacks counts as zero there.
func (t Totals) Compare(base Totals) Delta {
	return Delta{
		OverloadedCells:    diff(t.OverloadedCells, base.OverloadedCells),
		OverloadedCellsAny: t.OverloadedCellsAny - base.OverloadedCellsAny,
		Excess:             diff(t.Excess, base.Excess),
		MeanSpread:         diff(t.MeanSpread, base.MeanSpread),
		MaxSpread:          diff(t.MaxSpread, base.MaxSpread),
		PeakUtil:           diff(t.PeakUtil, base.PeakUtil),
		HostsUsed:          t.HostsUsed - base.HostsUsed,
		MeanHostsUsed:      t.MeanHostsUsed - base.MeanHostsUsed,
		LoadVariance:       diff(t.LoadVariance, base.LoadVariance),
		MaxAmplitude:       diff(t.MaxAmplitude, base.MaxAmplitude),
	}
}

func diff[T int | float64](run, base []T) []T {
	out := make([]T, len(run))
	for i, v := range run {
		out[i] = v
		if i < len(base) {
			out[i] -= base[i]
		}
	}
	return out
}
