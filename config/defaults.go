package config

import (
	"fmt"
	"sort"
	"strings"

	"hots/placement"
	"hots/placement/policy"
	"hots/placement/policy/lownodeload"
)

// KeyDoc documents one configuration key. The defaults map and the README
// reference table are both generated from Keys, so they cannot drift.
type KeyDoc struct {
	Key     string
	Default any // nil = no default (null / empty)
	Doc     string
}

// Keys lists every documented key in the order the README shows them.
// Free-form maps (optimization.parameters, connector.parameters.consumer_conf,
// kafka.schema) are documented as a whole.
var Keys = []KeyDoc{
	{"time_limit", 0, "wall-clock budget of a run in seconds; 0 or null = until the data is exhausted (checked between ticks)"},

	{"clustering.method", "kmeans", "kmeans, stream_kmeans (same as kmeans), hierarchical, spectral (custom_spectral is read as spectral); case-insensitive"},
	{"clustering.nb_clusters", placement.DefaultK, "K, the number of clusters, unless clustering.parameters.nb_clusters is set"},
	{"clustering.parameters.nb_clusters", 0, "K; overrides clustering.nb_clusters when > 0 (upstream's k-means reads this one)"},
	{"clustering.parameters.batch_size", 100, "accepted for upstream compatibility; unused (hots k-means is not mini-batch)"},
	{"clustering.parameters.random_state", nil, "seed of every random choice; null = 0 (hots is always deterministic)"},
	{"clustering.parameters.method", "ward", "hierarchical linkage: ward or average"},
	{"clustering.parameters.restarts", 0, "k-means restarts, best inertia wins; 0 = the method's default"},
	{"clustering.parameters.max_iter", 0, "k-means iteration bound; 0 = the method's default"},

	{"optimization.backend", "pyomo", "accepted for upstream compatibility; unused: hots computes the marginal costs in closed form, no LP solver"},
	{"optimization.parameters", nil, "object (solver, verbose, pb_number, …); accepted and unused"},

	{"problem.type", "placement", "must be placement (the only upstream problem)"},
	{"problem.parameters.initial_placement", true, "run the initial placement heuristic at sep_time; bool or 0/1"},
	{"problem.parameters.initial_method", placement.DefaultInitialMethod, "initial heuristic: distant_pairwise, ffd or spread"},
	{"problem.parameters.initial_tol_move", 0.0, "fraction of containers the initial placement may move, best energy gain first; 0 = tol_move"},
	{"problem.parameters.tol", placement.DefaultTol, "conflict threshold on marginal-cost changes, both graphs"},
	{"problem.parameters.tol_clust", 0.0, "clustering-graph threshold (thesis ε_C); 0 = tol"},
	{"problem.parameters.tol_place", 0.0, "placement-graph threshold (thesis ε_A); 0 = tol"},
	{"problem.parameters.tol_move", placement.DefaultTolMove, "fraction of containers that may be selected per loop and graph, within [0, 1]"},
	{"problem.parameters.cooldown_ticks", 0, "ticks before a moved container may move again; 0 = one window"},
	{"problem.parameters.headroom", placement.DefaultHeadroom, "fraction of capacity a move target may reach over the window, within (0, 1]"},
	{"problem.parameters.history_ticks", 0, "closed ticks a target's capacity is checked over; at least window_duration"},
	{"problem.parameters.margin", placement.DefaultMargin, "safety margin of a move target: its peak plus margin × RMS of the combined load's tick-to-tick changes must fit; 0 = default"},
	{"problem.parameters.forecast_z", placement.DefaultForecastZ, "a host is relieved when its window mean + forecast_z standard deviations of its history load exceeds capacity; 0 = default"},
	{"problem.parameters.relief_ticks", placement.DefaultReliefTicks, "a host is relieved when the current placement would have overloaded it at this many ticks of the history"},
	{"problem.parameters.conflict_moves", false, "let the placement conflict graph move containers (upstream's re-placement); off by default: on pl_20110322 it removes 11 more cells for 1,372 more moves, on syn_n200/syn_n400 none (README, method)"},
	{"problem.parameters.policy", policy.HOTS, "who decides the loops' moves: hots (the method), lownodeload (threshold rebalancer baseline) or none (no moves); same schedule, budget and cool-down"},
	{"problem.parameters.lownodeload.low", lownodeload.DefaultLow, "lownodeload: a host whose window-mean utilisation is below this on every metric may receive"},
	{"problem.parameters.lownodeload.high", lownodeload.DefaultHigh, "lownodeload: a host above this on some metric is abnormal; targets must stay below it"},
	{"problem.parameters.lownodeload.debounce", lownodeload.DefaultDebounce, "lownodeload: consecutive abnormal loops before a host is relieved"},
	{"problem.parameters.upstream", false, "use upstream HEAD's marginal-cost formulas (first metric, raw values) for comparison runs"},

	{"connector.type", "file", "the registered connector to run: file (CSV replay), kafka (live), http (posted usage); see the connector tables below"},
	{"connector.parameters.tick_field", "timestamp", "tick column"},
	{"connector.parameters.individual_field", "container_id", "container column"},
	{"connector.parameters.host_field", "machine_id", "host column"},
	{"connector.parameters.domain_field", "", "optional column naming the domain"},
	{"connector.parameters.pinned_field", "pinned", "optional column (CSV) or field (JSON) marking a container that must not move: true/false, 1/0, yes/no, empty = false; a container's newest sample decides (a later false unpins it); absent = nothing pinned by the input"},
	{"connector.parameters.domain", placement.DefaultDomain, "domain of samples that name none"},
	{"connector.parameters.metrics", []string{"cpu"}, "metric columns; every one counts against capacity (env/flags: comma-separated)"},
	{"connector.parameters.sep_time", placement.DefaultSepTime, "last tick (absolute, inclusive) of the analysis period"},
	{"connector.parameters.tick_increment", placement.DefaultTickIncrement, "ticks between two loops"},
	{"connector.parameters.window_duration", placement.DefaultWindowDuration, "closed ticks each loop evaluates (at least 2)"},
	{"connector.parameters.bad_input", "reject", "reject (set the record aside, count it, go on) or stop (fail the run)"},
	{"connector.parameters.connector_url", "", "accepted for upstream compatibility; unused"},

	{"logging.level", "INFO", "DEBUG, INFO, WARNING (WARN), ERROR or CRITICAL; case-insensitive"},
	{"logging.filename", "", "log file; empty or null = stderr"},
	{"logging.fmt", "text", "text or json; an upstream Python format string (with %(…)s) means text"},

	{"reporting.results_folder", "", "run directory; empty = runs/<trace>-<timestamp> (--out overrides)"},
	{"reporting.metrics_file", "", "per-loop metrics CSV; empty = <run dir>/metrics.csv"},
	{"reporting.plots_folder", "", "SVG plots; empty = <run dir>/plots"},

	{"service.http_addr", "", "live mode: address of health, readiness and /metrics; empty = off"},
	{"service.stall_after", "60s", "live mode: /readyz fails when the input has lag and no tick closed for this long, or no partition end could be fetched for this long; /healthz at three times it"},
	{"service.pprof", false, "live mode: also serve Go's profiler under /debug/pprof/ on http_addr (CPU and heap profiles of a running service)"},

	{"controls.pin", []string{}, "containers that never move: names, globs (`web-*`) or regular expressions between slashes (`/^db-[0-9]+$/`); env/flags: comma-separated"},
	{"controls.exclude_hosts", []string{}, "hosts that are never a move target (cordoned, maintenance), same patterns; live mode also excludes a host whose nodes record says `schedulable: false`"},
	{"controls.drain_hosts", []string{}, "hosts to empty: every loop moves what may move off them, within the budgets and limits; never a target"},
	{"controls.dry_run", false, "decide and publish/write the moves marked `dry_run: true`, never apply them (a replay's figures then equal the no-move baseline)"},
	{"controls.tick_seconds", 0.0, "how long a tick lasts in seconds: turns the per-hour and per-day limits into ticks (hour = ceil(3600 / tick_seconds) ticks); required by those limits"},
	{"controls.limits.max_moves_per_loop", 0, "moves per evaluation in total (on top of tol_move); 0 = no limit"},
	{"controls.limits.max_moves_per_source_host", 0, "moves off one host per evaluation; 0 = no limit"},
	{"controls.limits.max_moves_per_target_host", 0, "moves onto one host per evaluation (a full target is skipped for the next best); 0 = no limit"},
	{"controls.limits.max_moves_per_domain_per_hour", 0, "moves per domain over the last hour of ticks (rolling, needs tick_seconds); 0 = no limit"},
	{"controls.limits.min_age_ticks", 0, "ticks a container must have been seen before it may move; 0 = no minimum"},
	{"controls.limits.max_moves_per_container_per_day", 0, "moves of one container over the last day of ticks (rolling, needs tick_seconds); 0 = no limit"},
}

// Defaults returns the default value of every key, flat (dotted keys). The
// map is fresh on every call so callers may modify it.
func Defaults() map[string]any {
	m := make(map[string]any, len(Keys))
	for _, k := range Keys {
		if k.Default == nil {
			continue
		}
		if s, ok := k.Default.([]string); ok {
			m[k.Key] = append([]string{}, s...)
			continue
		}
		m[k.Key] = k.Default
	}
	return m
}

// MarkdownTable renders Keys as the README's configuration reference.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| key | default | meaning |\n|---|---|---|\n")
	for _, k := range Keys {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", k.Key, formatDefault(k.Default), strings.ReplaceAll(k.Doc, "|", "\\|"))
	}
	return b.String()
}

func formatDefault(v any) string {
	switch d := v.(type) {
	case nil:
		return "null"
	case string:
		if d == "" {
			return `""`
		}
		return "`" + d + "`"
	case []string:
		if len(d) == 0 {
			return "`[]`"
		}
		q := make([]string, len(d))
		for i, s := range d {
			q[i] = fmt.Sprintf("%q", s)
		}
		return "`[" + strings.Join(q, ", ") + "]`"
	default:
		return fmt.Sprintf("`%v`", d)
	}
}

// sortedKeys is used where report output must be stable.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
