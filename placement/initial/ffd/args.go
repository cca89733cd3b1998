package ffd

import "fmt"

// Args tune ffd.
type Args struct {
	// Headroom is the fraction of each host capacity placement may fill,
	// in (0, 1]. Zero means DefaultHeadroom.
	Headroom float64 `json:"headroom" koanf:"headroom"`
}

// DefaultHeadroom lets hosts fill up to their full capacity, like
// placement.DefaultHeadroom.
const DefaultHeadroom = 1.0

// SetDefaults fills zero fields.
func SetDefaults(a *Args) {
	if a.Headroom == 0 {
		a.Headroom = DefaultHeadroom
	}
}

// Validate checks a after SetDefaults.
func (a Args) Validate() error {
	if !(a.Headroom > 0 && a.Headroom <= 1) {
		return fmt.Errorf("ffd: headroom = %v: must be within (0, 1]", a.Headroom)
	}
	return nil
}
