package config

import "github.com/spf13/pflag"

// FlagSet is the generic override flag: --set key=value, repeatable, for any
// key without a flag of its own.
const FlagSet = "set"

// flagKeys maps the short flags of the main keys to configuration keys.
var flagKeys = map[string]string{
	"out":               "reporting.results_folder",
	"seed":              "clustering.parameters.random_state",
	"metrics":           "connector.parameters.metrics",
	"sep-time":          "connector.parameters.sep_time",
	"window":            "connector.parameters.window_duration",
	"tick-increment":    "connector.parameters.tick_increment",
	"clusters":          "clustering.parameters.nb_clusters",
	"method":            "clustering.method",
	"tol":               "problem.parameters.tol",
	"tol-move":          "problem.parameters.tol_move",
	"initial-placement": "problem.parameters.initial_placement",
	"upstream":          "problem.parameters.upstream",
	"time-limit":        "time_limit",
	"connector":         "connector.type",
	"log-level":         "logging.level",
	"log-file":          "logging.filename",
	"log-format":        "logging.fmt",
	"dry-run":           "controls.dry_run",
	"pin":               "controls.pin",
	"exclude-hosts":     "controls.exclude_hosts",
	"drain-hosts":       "controls.drain_hosts",
}

// RegisterFlags defines the configuration flags on fs. Their defaults are
// placeholders: Load only reads flags the user set, so a file value is
// never overridden by a flag's default.
func RegisterFlags(fs *pflag.FlagSet) {
	fs.String("out", "", "run directory (reporting.results_folder)")
	fs.Int64("seed", 0, "seed of every random choice (clustering.parameters.random_state)")
	fs.StringSlice("metrics", nil, "metric columns, comma-separated (connector.parameters.metrics)")
	fs.Int64("sep-time", 0, "last tick of the analysis period (connector.parameters.sep_time)")
	fs.Int("window", 0, "window length in ticks (connector.parameters.window_duration)")
	fs.Int("tick-increment", 0, "ticks between loops (connector.parameters.tick_increment)")
	fs.Int("clusters", 0, "number of clusters K (clustering.parameters.nb_clusters)")
	fs.String("method", "", "clustering method (clustering.method)")
	fs.Float64("tol", 0, "conflict threshold (problem.parameters.tol)")
	fs.Float64("tol-move", 0, "fraction of containers movable per loop (problem.parameters.tol_move)")
	fs.Bool("initial-placement", false, "run the initial placement at sep_time (problem.parameters.initial_placement)")
	fs.Bool("upstream", false, "upstream HEAD marginal-cost formulas (problem.parameters.upstream)")
	fs.Float64("time-limit", 0, "wall-clock budget in seconds, 0 = none (time_limit)")
	fs.String("connector", "", "the connector to run (connector.type): see `hots connectors`")
	fs.String("log-level", "", "DEBUG, INFO, WARNING, ERROR (logging.level)")
	fs.String("log-file", "", "log file, empty = stderr (logging.filename)")
	fs.String("log-format", "", "text or json (logging.fmt)")
	fs.Bool("dry-run", false, "decide and publish the moves marked dry_run, never apply them (controls.dry_run)")
	fs.StringSlice("pin", nil, "containers that never move: names, globs, /regexps/ (controls.pin)")
	fs.StringSlice("exclude-hosts", nil, "hosts never a move target (controls.exclude_hosts)")
	fs.StringSlice("drain-hosts", nil, "hosts to empty (controls.drain_hosts)")
	fs.StringArray(FlagSet, nil, "set any key: --set problem.parameters.tol=0.2 (repeatable)")
}
