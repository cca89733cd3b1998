package ffd

import "hots/placement/initial/internal/pack"

// Args tune ffd.
type Args struct {
	// Headroom is the fraction of each host capacity placement may fill,
	// in (0, 1]. Zero means DefaultHeadroom.
	Headroom float64 `json:"headroom" koanf:"headroom"`
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
	return pack.CheckHeadroom("ffd", a.Headroom)
}
