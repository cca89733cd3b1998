package config

import (
	"errors"
	"fmt"
	"strings"

	"hots/placement"
	"hots/placement/clustering"
	"hots/placement/policy"
	"hots/placement/policy/lownodeload"
)

// Error is an invalid value, named by its configuration key.
type Error struct {
	Key     string
	Value   any
	Allowed string
}

func (e *Error) Error() string {
	v := e.Value
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%s = %q: %s", e.Key, s, e.Allowed)
	}
	if v == nil {
		return fmt.Sprintf("%s = null: %s", e.Key, e.Allowed)
	}
	return fmt.Sprintf("%s = %v: %s", e.Key, v, e.Allowed)
}

// LogLevels are the accepted logging.level values (upstream's Python names).
var LogLevels = []string{"DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL"}

// Validate checks every key; the error joins one *Error per bad key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key string, v any, allowed string) {
		errs = append(errs, &Error{key, v, allowed})
	}
	oneOf := func(key, v string, allowed ...string) {
		for _, a := range allowed {
			if v == a {
				return
			}
		}
		bad(key, v, "one of "+strings.Join(allowed, ", "))
	}

	if c.TimeLimit < 0 {
		bad("time_limit", c.TimeLimit, "must be >= 0 seconds (0 or null = no limit)")
	}
	if c.Connector.Type == "" {
		bad("connector.type", "", "must name a registered connector")
	}
	oneOf("problem.type", c.Problem.Type, "placement")
	oneOf("connector.parameters.bad_input", c.Connector.Parameters.BadInput, "reject", "stop")
	if l := strings.ToUpper(c.Logging.Level); l != "" {
		oneOf("logging.level", l, LogLevels...)
	}
	if _, err := c.Logging.Format(); err != nil {
		bad("logging.fmt", c.Logging.Fmt, "text, json, or a Python logging format string (read as text)")
	}
	if l := c.Clustering.Parameters.Method; l != "" {
		oneOf("clustering.parameters.method", l, "ward", "average")
	}
	for key, v := range map[string]int{
		"clustering.parameters.nb_clusters": c.Clustering.Parameters.NbClusters,
		"clustering.parameters.restarts":    c.Clustering.Parameters.Restarts,
		"clustering.parameters.max_iter":    c.Clustering.Parameters.MaxIter,
	} {
		if v < 0 {
			bad(key, v, "must be >= 0 (0 = default)")
		}
	}
	p := c.EngineParams()
	placement.SetDefaults(&p)
	if err := p.Validate(); err != nil {
		var fe *placement.FieldError
		if errors.As(err, &fe) {
			bad(c.keyOf(fe.Field), fe.Value, fe.Allowed)
		} else {
			errs = append(errs, err)
		}
	}
	sortErrors(errs)
	return errors.Join(errs...)
}

// paramKeys maps placement.Params field names (as FieldError names them) to
// configuration keys.
var paramKeys = map[string]string{
	"metrics":           "connector.parameters.metrics",
	"sep_time":          "connector.parameters.sep_time",
	"window_duration":   "connector.parameters.window_duration",
	"tick_increment":    "connector.parameters.tick_increment",
	"tol":               "problem.parameters.tol",
	"tol_clust":         "problem.parameters.tol_clust",
	"tol_place":         "problem.parameters.tol_place",
	"tol_move":          "problem.parameters.tol_move",
	"cooldown_ticks":    "problem.parameters.cooldown_ticks",
	"headroom":          "problem.parameters.headroom",
	"history_ticks":     "problem.parameters.history_ticks",
	"initial_method":    "problem.parameters.initial_method",
	"initial_placement": "problem.parameters.initial_placement",
	"initial_tol_move":  "problem.parameters.initial_tol_move",
	"clustering.method": "clustering.method",
	"upstream":          "problem.parameters.upstream",
	"margin":            "problem.parameters.margin",
	"forecast_z":        "problem.parameters.forecast_z",
	"relief_ticks":      "problem.parameters.relief_ticks",
	"policy":            "problem.parameters.policy",
}

func (c Config) keyOf(field string) string {
	if field == "clustering.nb_clusters" || field == "clustering.k" {
		if c.Clustering.Parameters.NbClusters != 0 {
			return "clustering.parameters.nb_clusters"
		}
		return "clustering.nb_clusters"
	}
	if k, ok := paramKeys[field]; ok {
		return k
	}
	return field
}

func sortErrors(errs []error) {
	for i := 1; i < len(errs); i++ {
		for j := i; j > 0 && errs[j].Error() < errs[j-1].Error(); j-- {
			errs[j], errs[j-1] = errs[j-1], errs[j]
		}
	}
}

// EngineParams maps the configuration onto the engine's parameters. Zero
// values are left for placement.SetDefaults to fill.
func (c Config) EngineParams() placement.Params {
	cp, pp, cl := c.Connector.Parameters, c.Problem.Parameters, c.Clustering
	k := cl.NbClusters
	if cl.Parameters.NbClusters > 0 {
		k = cl.Parameters.NbClusters
	}
	var seed int64
	if cl.Parameters.RandomState != nil {
		seed = *cl.Parameters.RandomState
	}
	return placement.Params{
		Metrics:          append([]string(nil), cp.Metrics...),
		SepTime:          cp.SepTime,
		WindowDuration:   cp.WindowDuration,
		TickIncrement:    cp.TickIncrement,
		Tol:              pp.Tol,
		TolClust:         pp.TolClust,
		TolPlace:         pp.TolPlace,
		TolMove:          pp.TolMove,
		CooldownTicks:    pp.CooldownTicks,
		Headroom:         pp.Headroom,
		HistoryTicks:     pp.HistoryTicks,
		InitialPlacement: pp.InitialPlacement,
		InitialMethod:    pp.InitialMethod,
		InitialTolMove:   pp.InitialTolMove,
		Upstream:         pp.Upstream,
		Margin:           pp.Margin,
		ForecastZ:        pp.ForecastZ,
		ReliefTicks:      pp.ReliefTicks,
		ConflictMoves:    pp.ConflictMoves,
		Policy: policy.Args{Name: pp.Policy, LowNodeLoad: lownodeload.Args{
			Low: pp.LowNodeLoad.Low, High: pp.LowNodeLoad.High, Debounce: pp.LowNodeLoad.Debounce}},
		Clustering: clustering.Args{
			Method:   clusteringMethod(cl.Method),
			K:        k,
			Seed:     seed,
			Restarts: cl.Parameters.Restarts,
			MaxIter:  cl.Parameters.MaxIter,
			Linkage:  cl.Parameters.Method,
		},
	}
}

// clusteringMethod reads upstream's names case-insensitively; upstream's
// custom_spectral returned round-robin labels (spec 10 item 8), so the
// working spectral method stands in for it.
func clusteringMethod(m string) string {
	m = strings.ToLower(strings.TrimSpace(m))
	if m == "custom_spectral" || m == "spectral_perso" {
		return "spectral"
	}
	return m
}

// LogFormat is how slog writes lines.
type LogFormat string

const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

// Format reads logging.fmt: text, json, or an upstream Python format string
// such as "%(asctime)s %(levelname)s %(message)s", which means text.
func (l Logging) Format() (LogFormat, error) {
	f := strings.ToLower(strings.TrimSpace(l.Fmt))
	switch {
	case f == "" || f == "text":
		return LogText, nil
	case f == "json":
		return LogJSON, nil
	case strings.Contains(l.Fmt, "%("):
		return LogText, nil
	}
	return "", fmt.Errorf("logging.fmt %q", l.Fmt)
}
