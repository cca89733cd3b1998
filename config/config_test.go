package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"hots/placement"
	"hots/placement/clustering"
	"hots/placement/policy"
	"hots/placement/policy/lownodeload"
)

func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		args []string
		get  func(*Config) any
		want any
	}{
		{"default when nothing sets it", "testdata/precedence.yaml", nil, nil,
			func(c *Config) any { return c.Problem.Parameters.Headroom }, 1.0},
		{"file beats default", "testdata/precedence.yaml", nil, nil,
			func(c *Config) any { return c.Problem.Parameters.Tol }, 0.3},
		{"env beats file", "testdata/precedence.yaml", []string{"HOTS_PROBLEM__PARAMETERS__TOL=0.4"}, nil,
			func(c *Config) any { return c.Problem.Parameters.Tol }, 0.4},
		{"flag beats env", "testdata/precedence.yaml", []string{"HOTS_PROBLEM__PARAMETERS__TOL=0.4"}, []string{"--tol", "0.5"},
			func(c *Config) any { return c.Problem.Parameters.Tol }, 0.5},
		{"--set beats env", "testdata/precedence.yaml", []string{"HOTS_PROBLEM__PARAMETERS__TOL=0.4"}, []string{"--set", "problem.parameters.tol=0.6"},
			func(c *Config) any { return c.Problem.Parameters.Tol }, 0.6},
		{"unset flag keeps the file value", "testdata/precedence.yaml", nil, []string{"--window", "8"},
			func(c *Config) any { return c.Problem.Parameters.TolMove }, 0.3},
		{"set flag beats file", "testdata/precedence.yaml", nil, []string{"--window", "8"},
			func(c *Config) any { return c.Connector.Parameters.WindowDuration }, 8},
		{"env int from string", "testdata/precedence.yaml", []string{"HOTS_CONNECTOR__PARAMETERS__SEP_TIME=11"}, nil,
			func(c *Config) any { return c.Connector.Parameters.SepTime }, int64(11)},
		{"env list is comma-split", "testdata/precedence.yaml", []string{"HOTS_CONNECTOR__PARAMETERS__METRICS=cpu, mem"}, nil,
			func(c *Config) any { return c.Connector.Parameters.Metrics }, []string{"cpu", "mem"}},
		{"flag list", "testdata/precedence.yaml", nil, []string{"--metrics", "cpu,mem,net"},
			func(c *Config) any { return c.Connector.Parameters.Metrics }, []string{"cpu", "mem", "net"}},
		{"env key a connector owns stays for it", "testdata/precedence.yaml", []string{"HOTS_CONNECTOR__PARAMETERS__BOOTSTRAP_SERVERS=b1:9092"}, nil,
			func(c *Config) any { return c.Connector.Parameters.Extra["bootstrap_servers"] }, "b1:9092"},
		{"env section a connector owns stays for it", "testdata/precedence.yaml", []string{"HOTS_KAFKA__GROUP=g7"}, nil,
			func(c *Config) any { return c.Sections["kafka"].(map[string]any)["group"] }, "g7"},
		{"env bool from 1", "testdata/precedence.yaml", []string{"HOTS_PROBLEM__PARAMETERS__INITIAL_PLACEMENT=1"}, nil,
			func(c *Config) any { return c.Problem.Parameters.InitialPlacement }, true},
		{"seed flag", "testdata/precedence.yaml", nil, []string{"--seed", "7"},
			func(c *Config) any { return c.EngineParams().Clustering.Seed }, int64(7)},
		{"upstream spelling of the method", "testdata/precedence.yaml", []string{"HOTS_CLUSTERING__METHOD=Custom_Spectral"}, nil,
			func(c *Config) any { return c.Clustering.Method }, "spectral"},
		{"embedded default file", "", nil, nil,
			func(c *Config) any { return c.Connector.Parameters.Metrics }, []string{"cpu", "mem"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := append([]string{"PATH=/bin", "HOTS_CONFIG=ignored.yaml"}, tt.env...)
			cfg, rep, err := Load(LoadOptions{File: tt.file, Environ: env, Flags: flags(t, tt.args...), Sections: []string{"kafka"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Unknown) != 0 {
				t.Errorf("unknown keys %+v", rep.Unknown)
			}
			if got := tt.get(cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestUpstreamSamples(t *testing.T) {
	zero := int64(0)
	_ = zero
	tests := []struct {
		file    string
		want    placement.Params
		kind    string
		ignored []string
	}{
		{"testdata/head_sample.json", placement.Params{
			Metrics: []string{"cpu"}, SepTime: 3, WindowDuration: 3, TickIncrement: 2,
			Tol: 0.1, TolMove: 0.5, Headroom: 1, InitialMethod: "distant_pairwise",
			Margin: placement.DefaultMargin, ForecastZ: placement.DefaultForecastZ, ReliefTicks: placement.DefaultReliefTicks,
			Policy:     policy.Args{Name: policy.HOTS, LowNodeLoad: lownodeload.Args{Low: lownodeload.DefaultLow, High: lownodeload.DefaultHigh, Debounce: lownodeload.DefaultDebounce}},
			Clustering: clustering.Args{Method: "kmeans", K: 3, Linkage: "ward"},
		}, "file", nil},
		{"testdata/head_kafka_sample.json", placement.Params{
			Metrics: []string{"cpu"}, SepTime: 10, WindowDuration: 3, TickIncrement: 3,
			Tol: 0.1, TolMove: 0.2, Headroom: 1, InitialMethod: "distant_pairwise",
			Margin: placement.DefaultMargin, ForecastZ: placement.DefaultForecastZ, ReliefTicks: placement.DefaultReliefTicks,
			Policy:     policy.Args{Name: policy.HOTS, LowNodeLoad: lownodeload.Args{Low: lownodeload.DefaultLow, High: lownodeload.DefaultHigh, Debounce: lownodeload.DefaultDebounce}},
			Clustering: clustering.Args{Method: "kmeans", K: 3, Linkage: "ward"},
		}, "kafka", []string{"data_folder", "host_field", "individual_field", "metrics", "tick_field"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cfg, rep, err := Load(LoadOptions{File: tt.file, Environ: []string{}, Strict: true, Sections: []string{"kafka"}})
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.EngineParams(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("params\n got %+v\nwant %+v", got, tt.want)
			}
			if cfg.Connector.Type != tt.kind || cfg.TimeLimit != 0 || cfg.Problem.Parameters.InitialPlacement {
				t.Errorf("type %q time_limit %v initial_placement %v", cfg.Connector.Type, cfg.TimeLimit, cfg.Problem.Parameters.InitialPlacement)
			}
			if f, _ := cfg.Logging.Format(); f != LogText || cfg.Logging.Filename != "./out/hots.log" {
				t.Errorf("logging %+v", cfg.Logging)
			}
			var ign []string
			for _, n := range rep.Ignored {
				ign = append(ign, n.Key)
			}
			if !reflect.DeepEqual(ign, tt.ignored) {
				t.Errorf("ignored %v, want %v", ign, tt.ignored)
			}
		})
	}
	cfg, _, err := Load(LoadOptions{File: "testdata/head_kafka_sample.json", Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	// The Kafka keys are the connector's (connectors/kafka decodes them):
	// config keeps them whole, as written.
	cp := cfg.Connector.Parameters
	kafka, _ := cfg.Sections["kafka"].(map[string]any)
	if cp.Extra["bootstrap.servers"] != "localhost:9092" || !reflect.DeepEqual(cp.Extra["topics"], []any{"hots_moves"}) ||
		cp.Extra["consumer_conf"].(map[string]any)["group.id"] != "hots_group" || !reflect.DeepEqual(kafka["topics"], []any{"hots_moves"}) ||
		cfg.Optimization.Parameters["pb_number"] != float64(1) {
		t.Errorf("kafka sample: %+v / %+v / %+v", cp, kafka, cfg.Optimization)
	}
}

func TestLegacyParams(t *testing.T) {
	cfg, rep, err := Load(LoadOptions{File: "testdata/legacy_params.json", Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Legacy {
		t.Fatal("legacy format not detected")
	}
	wantReveal := []string{"analysis", "csv", "data", "heuristic", "host_meta_path", "loop", "placement", "plot", "clustering.algo", "optimization.solver"}
	if !reflect.DeepEqual(rep.Reveal, wantReveal) {
		t.Errorf("reveal %v, want %v", rep.Reveal, wantReveal)
	}
	want := placement.Params{
		Metrics: []string{"cpu"}, SepTime: 4, WindowDuration: 4, TickIncrement: 3,
		Tol: 0.1, TolClust: 0.3, TolPlace: 0.4, TolMove: 0.5, Headroom: 1, InitialMethod: "distant_pairwise",
		Margin: placement.DefaultMargin, ForecastZ: placement.DefaultForecastZ, ReliefTicks: placement.DefaultReliefTicks,
		Policy:     policy.Args{Name: policy.HOTS, LowNodeLoad: lownodeload.Args{Low: lownodeload.DefaultLow, High: lownodeload.DefaultHigh, Debounce: lownodeload.DefaultDebounce}},
		Clustering: clustering.Args{Method: "spectral", K: 2, Linkage: "ward"},
	}
	if got := cfg.EngineParams(); !reflect.DeepEqual(got, want) {
		t.Errorf("params\n got %+v\nwant %+v", got, want)
	}
	if d := cfg.Connector.Parameters.Extra["data_folder"]; d != "testdata" {
		t.Errorf("data_folder %q, want the params file's folder", d)
	}
	notes := map[string]string{}
	for _, n := range rep.Mapped {
		notes[n.Key] = n.Note
	}
	for key, want := range map[string]string{
		"loop.tick":        "→ connector.parameters.tick_increment",
		"loop.mode":        "not converted: hots has one loop mode",
		"placement.enable": "not converted: analysis.placement_recompute decides",
		"csv":              "not converted: hots reads CSV",
	} {
		if !strings.HasPrefix(notes[key], want) {
			t.Errorf("note for %s = %q, want prefix %q", key, notes[key], want)
		}
	}
	if w := rep.Warnings(); len(w) == 0 || !strings.Contains(w[0], "legacy params.json") || !strings.Contains(w[0], "host_meta_path") {
		t.Errorf("first warning %q", w)
	}
}

func TestUnknownKeys(t *testing.T) {
	file := writeFile(t, "c.yaml", `
tol: 0.2
problem:
  parameters:
    toll: 0.3
loop:
  tick: 2
connector:
  type: file
optimization:
  parameters:
    anything: goes
`)
	env := []string{"HOTS_CLUSTERING__NBCLUSTERS=4"}
	_, rep, err := Load(LoadOptions{File: file, Environ: env})
	if err != nil {
		t.Fatal(err)
	}
	want := []UnknownKey{
		{Key: "clustering.nbclusters", Source: SourceEnv},
		{Key: "loop", Source: SourceFile},
		{Key: "problem.parameters.toll", Source: SourceFile},
		{Key: "tol", Source: SourceFile, Hint: "did you mean problem.parameters.tol?"},
	}
	if len(rep.Unknown) != len(want) {
		t.Fatalf("unknown %+v, want %+v", rep.Unknown, want)
	}
	for i, u := range rep.Unknown {
		if u.Key != want[i].Key || u.Source != want[i].Source || (want[i].Hint != "" && u.Hint != want[i].Hint) {
			t.Errorf("unknown[%d] = %+v, want %+v", i, u, want[i])
		}
	}
	_, _, err = Load(LoadOptions{File: file, Environ: env, Strict: true})
	if err == nil || !strings.Contains(err.Error(), "problem.parameters.toll") {
		t.Errorf("strict: err = %v", err)
	}
}

func TestValidationMessages(t *testing.T) {
	tests := []struct {
		set  string
		want string
	}{
		{"connector.type=", `connector.type = "": must name a registered connector`},
		{"problem.type=scheduling", `problem.type = "scheduling": one of placement`},
		{"connector.parameters.bad_input=ignore", `connector.parameters.bad_input = "ignore": one of reject, stop`},
		{"logging.level=LOUD", `logging.level = "LOUD": one of DEBUG, INFO, WARNING, WARN, ERROR, CRITICAL`},
		{"logging.fmt=xml", `logging.fmt = "xml": text, json, or a Python logging format string (read as text)`},
		{"time_limit=-1", `time_limit = -1: must be >= 0 seconds (0 or null = no limit)`},
		{"clustering.parameters.method=single", `clustering.parameters.method = "single": one of ward, average`},
		{"connector.parameters.window_duration=1", `connector.parameters.window_duration = 1: must be at least 2 ticks`},
		{"problem.parameters.tol_move=1.5", `problem.parameters.tol_move = 1.5: must be within [0, 1]`},
		{"problem.parameters.headroom=2", `problem.parameters.headroom = 2: must be within (0, 1]`},
		{"clustering.method=dbscan", `clustering.method = "dbscan": one of kmeans, stream_kmeans, hierarchical, spectral`},
		{"problem.parameters.initial_method=random", `problem.parameters.initial_method = "random": one of distant_pairwise, ffd, spread`},
		{"connector.parameters.metrics=cpu,cpu", `connector.parameters.metrics = [cpu cpu]: metric names must be unique`},
		{"connector.parameters.pinned_field=machine_id", `connector.parameters.pinned_field = "machine_id": must differ from the tick, container, host, domain and metric fields`},
		{"problem.parameters.tol=abc", `problem.parameters.tol = "abc": must be a number`},
		{"connector.parameters.window_duration=2.5", `connector.parameters.window_duration = "2.5": must be an integer`},
		{"problem.parameters.initial_placement=2", `problem.parameters.initial_placement = "2": true, false, 0 or 1`},
	}
	for _, tt := range tests {
		t.Run(tt.set, func(t *testing.T) {
			_, _, err := Load(LoadOptions{File: "testdata/precedence.yaml", Environ: []string{}, Flags: flags(t, "--set", tt.set)})
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v\nwant   %s", err, tt.want)
			}
		})
	}
	// A bad K is reported against the key the user wrote.
	_, _, err := Load(LoadOptions{File: "testdata/precedence.yaml", Environ: []string{}, Flags: flags(t, "--clusters", "-2")})
	if err == nil || !strings.Contains(err.Error(), "clustering.parameters.nb_clusters = -2") {
		t.Errorf("K: err = %v", err)
	}
}

func TestInitialPlacementValues(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want bool
	}{{"0", false}, {"1", true}, {"true", true}, {"false", false}} {
		file := writeFile(t, "c.json", `{"problem": {"parameters": {"initial_placement": `+tt.v+`}}}`)
		cfg, _, err := Load(LoadOptions{File: file, Environ: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Problem.Parameters.InitialPlacement != tt.want {
			t.Errorf("%s → %v", tt.v, cfg.Problem.Parameters.InitialPlacement)
		}
	}
}

func TestUnknownExtension(t *testing.T) {
	_, _, err := Load(LoadOptions{File: writeFile(t, "c.toml", "x = 1"), Environ: []string{}})
	if err == nil || !strings.Contains(err.Error(), `unknown extension ".toml"`) {
		t.Errorf("err = %v", err)
	}
}

// Every key of Config is documented and every documented key is a key.
func TestKeysMatchSchema(t *testing.T) {
	doc := map[string]bool{}
	for _, k := range Keys {
		if _, ok := schema[k.Key]; !ok {
			t.Errorf("documented key %s is not in Config", k.Key)
		}
		doc[k.Key] = true
	}
	for k := range schema {
		if !doc[k] {
			t.Errorf("Config key %s is not documented in Keys", k)
		}
	}
}

// The README's reference table is the generated one; refresh it with
// `go test ./config -run TestREADME -update`.
func TestREADMETable(t *testing.T) {
	const begin, end = "<!-- config-table:begin -->\n", "<!-- config-table:end -->"
	path := filepath.Join("..", "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q … %q markers", begin, end)
	}
	table := MarkdownTable()
	if got := s[i+len(begin) : j]; got != table {
		if *update {
			if err := os.WriteFile(path, []byte(s[:i+len(begin)]+table+s[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("README.md config table is stale; run go test ./config -run TestREADMETable -update")
	}
}
