package placement

import (
	"hots/placement/clustering"
	"hots/placement/policy"
)

// Params tune the method for one domain. They mirror upstream's
// configuration keys where upstream has one (noted per field).
type Params struct {
	// Metrics are the resource names, in the order of Sample.Values and
	// Host.Capacity. Every metric counts against capacity.
	Metrics []string `json:"metrics"`
	// SepTime is the last tick (inclusive, absolute) of the analysis period
	// (upstream connector.parameters.sep_time).
	SepTime int64 `json:"sep_time"`
	// WindowDuration is the number of closed ticks each loop evaluates.
	WindowDuration int `json:"window_duration"`
	// TickIncrement is the number of ticks between two loops.
	TickIncrement int `json:"tick_increment"`
	// Tol is the conflict threshold on marginal-cost changes (upstream
	// problem.parameters.tol). TolClust and TolPlace override it per graph
	// (upstream thesis ε_C, ε_A); zero means "use Tol".
	Tol      float64 `json:"tol"`
	TolClust float64 `json:"tol_clust"`
	TolPlace float64 `json:"tol_place"`
	// TolMove is the fraction of containers that may be selected per loop
	// and per graph (upstream problem.parameters.tol_move). Rounded up.
	TolMove float64 `json:"tol_move"`
	// CooldownTicks: a container moved at tick t is not moved again before
	// t+CooldownTicks. Zero means one window.
	CooldownTicks int `json:"cooldown_ticks"`
	// Headroom is the fraction of capacity a target host may reach over the
	// evaluated window (1 = up to full capacity).
	Headroom float64 `json:"headroom"`
	// HistoryTicks is how many closed ticks capacity is checked over when
	// choosing a target (and over which loads are projected). At least
	// WindowDuration; zero means 4 windows. A history longer than the
	// window catches peaks the window has not seen yet (a daily cycle longer
	// than the window): on syn_n200 window-only feasibility leaves 13
	// overloaded cells after the first loop, 4 windows leave 1.
	HistoryTicks int `json:"history_ticks"`
	// Margin scales the safety margin a move target keeps: its peak over
	// the span plus Margin times the root mean square of the combined
	// series' tick-to-tick changes must stay within Headroom×capacity.
	// Zero means DefaultMargin.
	Margin float64 `json:"margin"`
	// ForecastZ: a host is relieved when its window mean plus ForecastZ
	// standard deviations of its load over the span exceeds capacity. Zero
	// means DefaultForecastZ.
	ForecastZ float64 `json:"forecast_z"`
	// ReliefTicks: a host is relieved when the current placement would
	// have overloaded it at this many ticks of the span. Zero means
	// DefaultReliefTicks.
	ReliefTicks int `json:"relief_ticks"`
	// ConflictMoves lets the placement conflict graph move containers
	// whose move lowers the two hosts' energy (upstream's re-placement).
	// Off by default: measured with hots compare, it buys little per move
	// on top of relief (pl_20110322: 64 cells with 1,455 moves against 75
	// with 83; syn_n200 and syn_n400: the same cells with 50 and 105 moves
	// against 40 and 74).
	ConflictMoves bool `json:"conflict_moves"`
	// Clustering method and its arguments.
	Clustering clustering.Args `json:"clustering"`
	// InitialPlacement runs InitialMethod at the end of the analysis
	// period (upstream problem.parameters.initial_placement).
	InitialPlacement bool   `json:"initial_placement"`
	InitialMethod    string `json:"initial_method"`
	// InitialTolMove is the fraction of containers the initial placement
	// may move (rounded up); zero means TolMove.
	InitialTolMove float64 `json:"initial_tol_move"`
	// Policy chooses who decides the loops' moves: the HOTS method (the
	// default) or one of the baselines it is measured against, on the same
	// schedule, budget and cool-down.
	Policy policy.Args `json:"policy"`
	// Upstream switches the marginal costs to upstream HEAD's formulas for
	// comparison runs: first metric only, raw values (no scaling), and the
	// clustering distance that counts the label column (spec 3.3).
	Upstream bool `json:"upstream"`
	// Controls are the operator's pins, exclusions, drains, limits and
	// dry-run (controls.go).
	Controls Controls `json:"controls"`
}

// Defaults as documented in the README config reference.
const (
	DefaultWindowDuration = 10
	DefaultTickIncrement  = 5
	DefaultSepTime        = 33
	DefaultTol            = 0.1
	DefaultTolMove        = 0.1
	DefaultHeadroom       = 1.0
	DefaultK              = 3
	DefaultInitialMethod  = "distant_pairwise"
	DefaultHistoryWindows = 4
	DefaultMargin         = 1.0
	DefaultForecastZ      = 2.0
	DefaultReliefTicks    = 3
)

// SetDefaults fills zero fields.
func SetDefaults(p *Params) {
	if len(p.Metrics) == 0 {
		p.Metrics = []string{"cpu"}
	}
	if p.WindowDuration == 0 {
		p.WindowDuration = DefaultWindowDuration
	}
	if p.TickIncrement == 0 {
		p.TickIncrement = DefaultTickIncrement
	}
	if p.Tol == 0 {
		p.Tol = DefaultTol
	}
	if p.TolMove == 0 {
		p.TolMove = DefaultTolMove
	}
	if p.Headroom == 0 {
		p.Headroom = DefaultHeadroom
	}
	if p.Margin == 0 {
		p.Margin = DefaultMargin
	}
	if p.ForecastZ == 0 {
		p.ForecastZ = DefaultForecastZ
	}
	if p.ReliefTicks == 0 {
		p.ReliefTicks = DefaultReliefTicks
	}
	if p.InitialMethod == "" {
		p.InitialMethod = DefaultInitialMethod
	}
	if p.Clustering.Method == "" {
		p.Clustering.Method = "kmeans"
	}
	if p.Clustering.K == 0 {
		p.Clustering.K = DefaultK
	}
	policy.SetDefaults(&p.Policy)
}

func (p Params) tolClust() float64 {
	if p.TolClust > 0 {
		return p.TolClust
	}
	return p.Tol
}

func (p Params) tolPlace() float64 {
	if p.TolPlace > 0 {
		return p.TolPlace
	}
	return p.Tol
}

func (p Params) cooldown() int64 {
	if p.CooldownTicks > 0 {
		return int64(p.CooldownTicks)
	}
	return int64(p.WindowDuration)
}

func (p Params) history() int {
	switch {
	case p.HistoryTicks == 0:
		return DefaultHistoryWindows * p.WindowDuration
	case p.HistoryTicks > p.WindowDuration:
		return p.HistoryTicks
	}
	return p.WindowDuration
}

func (p Params) initialTolMove() float64 {
	if p.InitialTolMove > 0 {
		return p.InitialTolMove
	}
	return p.TolMove
}
