package distantpairwise

import "hots/placement/initial/internal/pack"

// Args tune distant_pairwise.
type Args struct {
	// Headroom is the fraction of each host capacity placement may fill,
	// in (0, 1]. Zero means DefaultHeadroom.
	Headroom float64 `json:"headroom" koanf:"headroom"`
	// SpreadAll places over every host from the start instead of the
	// thesis's consolidation (start at the fewest hosts the analysis peak
	// needs and open more only when nothing fits). Packing hosts to the
	// analysis period's peaks leaves no room for what comes after it; the
	// engine spreads.
	SpreadAll bool `json:"spread_all" koanf:"spread_all"`
}

// DefaultHeadroom lets hosts fill up to their full capacity.
const DefaultHeadroom = pack.DefaultHeadroom

// SetDefaults fills zero fields.
func SetDefaults(a *Args) {
	if a.Headroom == 0 {
		a.Headroom = DefaultHeadroom
	}
}

// Validate checks a after SetDefaults.
func (a Args) Validate() error {
	return pack.CheckHeadroom("distant_pairwise", a.Headroom)
}
