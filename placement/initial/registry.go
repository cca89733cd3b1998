package initial

import (
	"fmt"

	"hots/placement/initial/distantpairwise"
	"hots/placement/initial/ffd"
	"hots/placement/initial/internal/pack"
	"hots/placement/initial/spread"
)

// Methods are the names New accepts, as in the initial_method parameter.
var Methods = []string{"distant_pairwise", "ffd", "spread"}

// Options are the settings every heuristic shares. Zero values mean the
// heuristic's default.
type Options struct {
	// Headroom is the fraction of each host capacity placement may fill,
	// in (0, 1] (placement.Params.Headroom).
	Headroom float64
	// SpreadAll: distant_pairwise uses every host from the start rather
	// than consolidating onto the fewest (see distantpairwise.Args).
	SpreadAll bool
}

// New returns the heuristic called method with its default arguments.
func New(method string) (Heuristic, error) {
	return NewWithOptions(method, Options{})
}

// NewWithOptions returns the heuristic called method, tuned by o.
func NewWithOptions(method string, o Options) (Heuristic, error) {
	var (
		place func(pack.Problem) ([]int, error)
		err   error
	)
	switch method {
	case "distant_pairwise":
		var pl *distantpairwise.Placer
		pl, err = distantpairwise.New(distantpairwise.Args{Headroom: o.Headroom, SpreadAll: o.SpreadAll})
		if pl != nil {
			place = pl.Place
		}
	case "ffd":
		var pl *ffd.Placer
		pl, err = ffd.New(ffd.Args{Headroom: o.Headroom})
		if pl != nil {
			place = pl.Place
		}
	case "spread":
		var pl *spread.Placer
		pl, err = spread.New(spread.Args{Headroom: o.Headroom})
		if pl != nil {
			place = pl.Place
		}
	default:
		return nil, fmt.Errorf("initial placement method %q: must be one of distant_pairwise, ffd, spread", method)
	}
	if err != nil {
		return nil, err
	}
	return adapter(place), nil
}

// adapter lets a heuristic folder, which cannot import this package, serve
// the Heuristic interface: the problem is converted field for field into
// the identical internal shape (slices of structs are shared, not copied).
type adapter func(pack.Problem) ([]int, error)

func (a adapter) Place(p Problem) ([]int, error) {
	q := pack.Problem{
		Hosts:      make([]pack.Host, len(p.Hosts)),
		Containers: make([]pack.Container, len(p.Containers)),
	}
	for i, h := range p.Hosts {
		q.Hosts[i] = pack.Host(h)
	}
	for i, c := range p.Containers {
		q.Containers[i] = pack.Container(c)
	}
	return a(q)
}
