package config

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"hots/codecs"
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

const (
	maxTimeLimit = float64(math.MaxInt64 / int64(time.Second))
	maxWindow    = 1 << 60
)

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

	if d, err := time.ParseDuration(c.Service.StallAfter); c.Service.StallAfter != "" && (err != nil || d <= 0) {
		bad("service.stall_after", c.Service.StallAfter, "a positive duration such as 60s")
	}
	if c.TimeLimit < 0 {
		bad("time_limit", c.TimeLimit, "must be >= 0 seconds (0 or null = no limit)")
	} else if !(c.TimeLimit <= maxTimeLimit) { // NaN too
		bad("time_limit", c.TimeLimit, "must be at most 9223372036 seconds (a longer limit overflows a duration; 0 or null = no limit)")
	}
	// NaN passes every range check below (each comparison is false) and
	// then disables what the value controls; infinities are never meant.
	pp := c.Problem.Parameters
	for key, v := range map[string]float64{
		"problem.parameters.tol": pp.Tol, "problem.parameters.tol_clust": pp.TolClust, "problem.parameters.tol_place": pp.TolPlace,
		"problem.parameters.tol_move": pp.TolMove, "problem.parameters.headroom": pp.Headroom,
	} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad(key, v, "must be a finite number")
		}
	}
	// Tick counts and spans the engine adds to ticks or multiplies: past
	// these bounds the sums wrap around (a next loop in the past, an empty
	// history) instead of meaning "very long".
	cp := c.Connector.Parameters
	for key, v := range map[string]int64{
		"connector.parameters.tick_increment": int64(cp.TickIncrement), "problem.parameters.cooldown_ticks": int64(pp.CooldownTicks),
	} {
		if v > codecs.MaxTickSpan {
			bad(key, v, "must be at most 2^62 = 4611686018427387904 ticks (it is added to ticks, the sum would overflow)")
		}
	}
	for key, v := range map[string]int64{
		"connector.parameters.window_duration": int64(cp.WindowDuration), "problem.parameters.history_ticks": int64(pp.HistoryTicks),
	} {
		if v > maxWindow {
			bad(key, v, "must be at most 2^60 = 1152921504606846976 ticks (the engine's tick counts, 4 windows by default, would overflow)")
		}
	}
	if c.Connector.Type == "" {
		bad("connector.type", "", "must name a registered connector")
	}
	oneOf("problem.type", c.Problem.Type, "placement")
	oneOf("connector.parameters.bad_input", c.Connector.Parameters.BadInput, "reject", "stop")
	if pf := cp.PinnedField; pf != "" {
		// The pinned column would be read as both: a metric as a boolean.
		for _, other := range append([]string{cp.TickField, cp.IndividualField, cp.HostField, cp.DomainField}, cp.Metrics...) {
			if pf == other {
				bad("connector.parameters.pinned_field", pf, "must differ from the tick, container, host, domain and metric fields")
				break
			}
		}
	}
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
	for _, err := range engineErrors(p) {
		var fe *placement.FieldError
		switch {
		case isFailed(errs, err):
		case errors.As(err, &fe):
			bad(c.keyOf(fe.Field), fe.Value, fe.Allowed)
		default:
			errs = append(errs, err)
		}
	}
	sortErrors(errs)
	return errors.Join(errs...)
}

// engineErrors is every problem placement.Params.Validate finds: it stops
// at the first, so each field it names is set to its default and the
// check runs again.
func engineErrors(p placement.Params) []error {
	var def placement.Params
	placement.SetDefaults(&def)
	var out []error
	for range 32 {
		err := p.Validate()
		if err == nil {
			return out
		}
		out = append(out, err)
		var fe *placement.FieldError
		if !errors.As(err, &fe) {
			return out
		}
		switch fe.Field {
		case "metrics":
			p.Metrics = def.Metrics
		case "window_duration":
			p.WindowDuration = def.WindowDuration
		case "tick_increment":
			p.TickIncrement = def.TickIncrement
		case "tol":
			p.Tol = def.Tol
		case "tol_clust":
			p.TolClust = def.TolClust
		case "tol_place":
			p.TolPlace = def.TolPlace
		case "tol_move":
			p.TolMove = def.TolMove
		case "cooldown_ticks":
			p.CooldownTicks = def.CooldownTicks
		case "headroom":
			p.Headroom = def.Headroom
		case "history_ticks":
			p.HistoryTicks = def.HistoryTicks
		case "initial_method":
			p.InitialMethod = def.InitialMethod
		case "clustering.method":
			p.Clustering.Method = def.Clustering.Method
		case "clustering.nb_clusters", "clustering.k":
			p.Clustering.K = def.Clustering.K
		default:
			return out
		}
	}
	return out
}

// isFailed reports whether the engine's complaint is about a key already
// refused above (the engine stops at its first problem, which may be one
// of them).
func isFailed(errs []error, err error) bool {
	var fe *placement.FieldError
	if !errors.As(err, &fe) {
		return false
	}
	for _, e := range errs {
		if ce, ok := e.(*Error); ok && strings.HasSuffix(ce.Key, "."+fe.Field) {
			return true
		}
	}
	return false
}

// advice are warnings about valid settings that are probably mistakes.
func (c Config) advice() []Note {
	p := c.EngineParams()
	placement.SetDefaults(&p)
	var out []Note
	if p.TickIncrement > p.WindowDuration {
		out = append(out, Note{"connector.parameters.tick_increment", fmt.Sprintf(
			"%d is larger than connector.parameters.window_duration = %d: the %d ticks before each loop's window are never evaluated",
			p.TickIncrement, p.WindowDuration, p.TickIncrement-p.WindowDuration)})
	}
	return out
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
		Controls: placement.Controls{
			Pin: append([]string(nil), c.Controls.Pin...), ExcludeHosts: append([]string(nil), c.Controls.ExcludeHosts...),
			DrainHosts: append([]string(nil), c.Controls.DrainHosts...), DryRun: c.Controls.DryRun, TickSeconds: c.Controls.TickSeconds,
			MaxMovesPerLoop: c.Controls.Limits.MaxMovesPerLoop, MaxMovesPerSourceHost: c.Controls.Limits.MaxMovesPerSourceHost,
			MaxMovesPerTargetHost: c.Controls.Limits.MaxMovesPerTargetHost, MaxMovesPerDomainPerHour: c.Controls.Limits.MaxMovesPerDomainPerHour,
			MinAgeTicks: c.Controls.Limits.MinAgeTicks, MaxMovesPerContainerPerDay: c.Controls.Limits.MaxMovesPerContainerPerDay,
		},
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
