package placement

import (
	"fmt"
	"strings"
)

// FieldError names the offending parameter, its value and what is allowed,
// so that configuration errors can be reported against the user's key.
type FieldError struct {
	Field   string
	Value   any
	Allowed string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s = %v: %s", e.Field, e.Value, e.Allowed)
}

// Validate checks p after SetDefaults.
func (p Params) Validate() error {
	seen := map[string]bool{}
	for _, m := range p.Metrics {
		if strings.TrimSpace(m) == "" {
			return &FieldError{"metrics", p.Metrics, "metric names must be non-empty"}
		}
		if seen[m] {
			return &FieldError{"metrics", p.Metrics, "metric names must be unique"}
		}
		seen[m] = true
	}
	switch {
	case p.WindowDuration < 2:
		return &FieldError{"window_duration", p.WindowDuration, "must be at least 2 ticks"}
	case p.TickIncrement < 1:
		return &FieldError{"tick_increment", p.TickIncrement, "must be at least 1 tick"}
	case p.Tol < 0:
		return &FieldError{"tol", p.Tol, "must be >= 0"}
	case p.TolClust < 0:
		return &FieldError{"tol_clust", p.TolClust, "must be >= 0"}
	case p.TolPlace < 0:
		return &FieldError{"tol_place", p.TolPlace, "must be >= 0"}
	case p.TolMove < 0 || p.TolMove > 1:
		return &FieldError{"tol_move", p.TolMove, "must be within [0, 1]"}
	case p.InitialTolMove < 0 || p.InitialTolMove > 1:
		return &FieldError{"initial_tol_move", p.InitialTolMove, "must be within [0, 1] (0 = tol_move)"}
	case p.CooldownTicks < 0:
		return &FieldError{"cooldown_ticks", p.CooldownTicks, "must be >= 0 (0 = one window)"}
	case p.Headroom <= 0 || p.Headroom > 1:
		return &FieldError{"headroom", p.Headroom, "must be within (0, 1]"}
	case p.Margin < 0:
		return &FieldError{"margin", p.Margin, "must be >= 0"}
	case p.ForecastZ < 0:
		return &FieldError{"forecast_z", p.ForecastZ, "must be >= 0"}
	case p.ReliefTicks < 1:
		return &FieldError{"relief_ticks", p.ReliefTicks, "must be at least 1 tick"}
	case p.HistoryTicks < 0:
		return &FieldError{"history_ticks", p.HistoryTicks, "must be >= 0"}
	case p.Clustering.K < 1:
		return &FieldError{"clustering.nb_clusters", p.Clustering.K, "must be >= 1"}
	}
	switch p.InitialMethod {
	case "distant_pairwise", "ffd", "spread":
	default:
		return &FieldError{"initial_method", p.InitialMethod, "one of distant_pairwise, ffd, spread"}
	}
	if err := p.Controls.validate(); err != nil {
		return err
	}
	if err := p.Policy.Validate(); err != nil {
		return &FieldError{"policy", p.Policy.Name, err.Error()}
	}
	switch p.Clustering.Method {
	case "kmeans", "stream_kmeans", "hierarchical", "spectral":
	default:
		return &FieldError{"clustering.method", p.Clustering.Method, "one of kmeans, stream_kmeans, hierarchical, spectral"}
	}
	return nil
}
