// Package config loads hots configuration with koanf: defaults, then a
// config file (JSON or YAML), then HOTS_… environment variables, then
// command-line flags. The file shape is upstream HOTS's (spec 1.4), so an
// upstream configuration works unchanged; hots-only keys are additions.
package config

import "encoding/json"

// Config is the whole configuration of one hots process.
type Config struct {
	// TimeLimit in seconds; 0 = until the data is exhausted (upstream
	// time_limit, null there).
	TimeLimit    float64      `koanf:"time_limit" json:"time_limit"`
	Clustering   Clustering   `koanf:"clustering" json:"clustering"`
	Optimization Optimization `koanf:"optimization" json:"optimization"`
	Problem      Problem      `koanf:"problem" json:"problem"`
	Connector    Connector    `koanf:"connector" json:"connector"`
	Logging      Logging      `koanf:"logging" json:"logging"`
	Reporting    Reporting    `koanf:"reporting" json:"reporting"`
	Service      Service      `koanf:"service" json:"service"`
	Controls     Controls     `koanf:"controls" json:"controls"`
	// Sections are top-level blocks config does not read (a connector's
	// own, such as kafka); connectors.Decode reports those nobody owns.
	Sections map[string]any `koanf:",remain" json:"-"`
	// Dir is the directory of the configuration file: relative paths in it
	// resolve against it (empty: the embedded default, or no file).
	Dir string `koanf:"-" json:"-"`
}

// MarshalJSON writes the connector-owned sections beside the common ones.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	b, err := json.Marshal(plain(c))
	if err != nil || len(c.Sections) == 0 {
		return b, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range c.Sections {
		m[k] = v
	}
	return json.Marshal(m)
}

// Clustering is upstream's clustering block.
type Clustering struct {
	Method     string               `koanf:"method" json:"method"`
	NbClusters int                  `koanf:"nb_clusters" json:"nb_clusters"`
	Parameters ClusteringParameters `koanf:"parameters" json:"parameters"`
}

// ClusteringParameters is upstream's clustering.parameters plus hots keys.
type ClusteringParameters struct {
	NbClusters  int    `koanf:"nb_clusters" json:"nb_clusters"`
	BatchSize   int    `koanf:"batch_size" json:"batch_size"`     // accepted for upstream compatibility, unused
	RandomState *int64 `koanf:"random_state" json:"random_state"` // seed; null = default seed 0 (hots is always deterministic)
	Method      string `koanf:"method" json:"method"`             // hierarchical linkage: ward | average
	Restarts    int    `koanf:"restarts" json:"restarts"`
	MaxIter     int    `koanf:"max_iter" json:"max_iter"`
}

// Optimization is accepted for upstream compatibility: hots computes the
// marginal costs in closed form and needs no solver.
type Optimization struct {
	Backend    string         `koanf:"backend" json:"backend"`
	Parameters map[string]any `koanf:"parameters" json:"parameters"`
}

// Problem is upstream's problem block.
type Problem struct {
	Type       string            `koanf:"type" json:"type"`
	Parameters ProblemParameters `koanf:"parameters" json:"parameters"`
}

// ProblemParameters carries the method's tunables.
type ProblemParameters struct {
	InitialPlacement bool    `koanf:"initial_placement" json:"initial_placement"`
	InitialMethod    string  `koanf:"initial_method" json:"initial_method"`
	InitialTolMove   float64 `koanf:"initial_tol_move" json:"initial_tol_move"`
	Tol              float64 `koanf:"tol" json:"tol"`
	TolClust         float64 `koanf:"tol_clust" json:"tol_clust"`
	TolPlace         float64 `koanf:"tol_place" json:"tol_place"`
	TolMove          float64 `koanf:"tol_move" json:"tol_move"`
	CooldownTicks    int     `koanf:"cooldown_ticks" json:"cooldown_ticks"`
	Headroom         float64 `koanf:"headroom" json:"headroom"`
	HistoryTicks     int     `koanf:"history_ticks" json:"history_ticks"`
	Upstream         bool    `koanf:"upstream" json:"upstream"`
	Margin           float64 `koanf:"margin" json:"margin"`
	ForecastZ        float64 `koanf:"forecast_z" json:"forecast_z"`
	ReliefTicks      int     `koanf:"relief_ticks" json:"relief_ticks"`
	ConflictMoves    bool    `koanf:"conflict_moves" json:"conflict_moves"`
	// Policy is who decides the loops' moves: hots, or a baseline.
	Policy      string      `koanf:"policy" json:"policy"`
	LowNodeLoad LowNodeLoad `koanf:"lownodeload" json:"lownodeload"`
}

// LowNodeLoad are the lownodeload baseline's parameters.
type LowNodeLoad struct {
	Low      float64 `koanf:"low" json:"low"`
	High     float64 `koanf:"high" json:"high"`
	Debounce int     `koanf:"debounce" json:"debounce"`
}

// Connector is upstream's connector block. Type names a registered
// connector (package connectors); the keys below are the ones every
// connector shares. Everything else under connector.parameters, and any
// top-level block a connector owns (kafka: …), belongs to the connector,
// which decodes and validates it (connectors.Decode).
type Connector struct {
	Type       string              `koanf:"type" json:"type"`
	Parameters ConnectorParameters `koanf:"parameters" json:"parameters"`
}

// ConnectorParameters are upstream's connector.parameters keys that mean
// the same for every connector: field names and time handling.
type ConnectorParameters struct {
	TickField       string   `koanf:"tick_field" json:"tick_field"`             // timestamp
	IndividualField string   `koanf:"individual_field" json:"individual_field"` // container_id
	HostField       string   `koanf:"host_field" json:"host_field"`             // machine_id
	DomainField     string   `koanf:"domain_field" json:"domain_field"`         // optional column naming the domain
	PinnedField     string   `koanf:"pinned_field" json:"pinned_field"`         // optional column marking pinned containers
	Domain          string   `koanf:"domain" json:"domain"`                     // domain when no column names one
	Metrics         []string `koanf:"metrics" json:"metrics"`
	SepTime         int64    `koanf:"sep_time" json:"sep_time"`
	TickIncrement   int      `koanf:"tick_increment" json:"tick_increment"`
	WindowDuration  int      `koanf:"window_duration" json:"window_duration"`
	BadInput        string   `koanf:"bad_input" json:"bad_input"` // reject (count and go on) | stop
	ConnectorURL    string   `koanf:"connector_url" json:"connector_url"`
	// Extra holds the connector's own keys, undecoded.
	Extra map[string]any `koanf:",remain" json:"-"`
}

// MarshalJSON writes the connector's own keys beside the common ones, so
// that `hots config` and the run directory's config.json show them.
func (p ConnectorParameters) MarshalJSON() ([]byte, error) {
	type common ConnectorParameters
	b, err := json.Marshal(common(p))
	if err != nil || len(p.Extra) == 0 {
		return b, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range p.Extra {
		m[k] = v
	}
	return json.Marshal(m)
}

// Logging is upstream's logging block; fmt is "text" or "json" for slog
// (upstream's Python format strings are accepted and mean "text").
type Logging struct {
	Level    string `koanf:"level" json:"level"`
	Filename string `koanf:"filename" json:"filename"`
	Fmt      string `koanf:"fmt" json:"fmt"`
}

// Reporting: where run outputs go.
type Reporting struct {
	ResultsFolder string `koanf:"results_folder" json:"results_folder"` // the run directory
	MetricsFile   string `koanf:"metrics_file" json:"metrics_file"`     // default <run dir>/metrics.csv
	PlotsFolder   string `koanf:"plots_folder" json:"plots_folder"`     // default <run dir>
}

// Controls are the operator's say over the moves, common to every
// connector and both modes (placement.Controls).
type Controls struct {
	Pin          []string `koanf:"pin" json:"pin"`
	ExcludeHosts []string `koanf:"exclude_hosts" json:"exclude_hosts"`
	DrainHosts   []string `koanf:"drain_hosts" json:"drain_hosts"`
	DryRun       bool     `koanf:"dry_run" json:"dry_run"`
	TickSeconds  float64  `koanf:"tick_seconds" json:"tick_seconds"`
	Limits       Limits   `koanf:"limits" json:"limits"`
}

// Limits bound how much may move (0 = no limit).
type Limits struct {
	MaxMovesPerLoop            int `koanf:"max_moves_per_loop" json:"max_moves_per_loop"`
	MaxMovesPerSourceHost      int `koanf:"max_moves_per_source_host" json:"max_moves_per_source_host"`
	MaxMovesPerTargetHost      int `koanf:"max_moves_per_target_host" json:"max_moves_per_target_host"`
	MaxMovesPerDomainPerHour   int `koanf:"max_moves_per_domain_per_hour" json:"max_moves_per_domain_per_hour"`
	MinAgeTicks                int `koanf:"min_age_ticks" json:"min_age_ticks"`
	MaxMovesPerContainerPerDay int `koanf:"max_moves_per_container_per_day" json:"max_moves_per_container_per_day"`
}

// Service: the long-running process's HTTP endpoints.
type Service struct {
	HTTPAddr string `koanf:"http_addr" json:"http_addr"` // health, readiness, /metrics; empty = off
	// StallAfter: how long a service whose input has lag may close no
	// tick before /readyz fails (/healthz at three times it).
	StallAfter string `koanf:"stall_after" json:"stall_after"`
	Pprof      bool   `koanf:"pprof" json:"pprof"` // Go's profiler under /debug/pprof/ on http_addr
}
