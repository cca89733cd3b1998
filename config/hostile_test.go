package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 10: configuration errors are all reported at once, with the place
// they are at; valid but suspicious settings are warned about.
func TestHostileConfigs(t *testing.T) {
	tests := []struct {
		name string
		file string // name and body, "name:body"; "" = precedence.yaml
		sets []string
		want string // the whole error; "" = loads
		warn string // a warning the report must carry
	}{
		{name: "all bad keys at once", sets: []string{"problem.parameters.tol=abc", "connector.parameters.sep_time=x", "logging.level=LOUD"},
			want: "connector.parameters.sep_time = \"x\": must be an integer\n" +
				"logging.level = \"LOUD\": one of DEBUG, INFO, WARNING, WARN, ERROR, CRITICAL\n" +
				"problem.parameters.tol = \"abc\": must be a number"},
		{name: "every engine key at once", sets: []string{"connector.parameters.window_duration=1", "problem.parameters.tol_move=1.5", "problem.parameters.headroom=2"},
			want: "connector.parameters.window_duration = 1: must be at least 2 ticks\n" +
				"problem.parameters.headroom = 2: must be within (0, 1]\n" +
				"problem.parameters.tol_move = 1.5: must be within [0, 1]"},
		{name: "json syntax error names line and column", file: "c.json:{\n  \"time_limit\": 1,\n  \"problem\": {,}\n}\n",
			want: "config file DIR/c.json: line 3, column 15: invalid character ','"},
		{name: "json cut short", file: "c.json:{\n  \"time_limit\": 1,\n",
			want: "config file DIR/c.json: line 3, column 1: unexpected end of JSON input"},
		{name: "json not an object", file: "c.json:[1, 2]",
			want: "config file DIR/c.json: line 1, column 1: the configuration must be a JSON object"},
		{name: "json trailing data", file: "c.json:{\"time_limit\": 1}\n{}",
			want: "config file DIR/c.json: line 2, column 2: data after the end of the top-level object"},
		{name: "json duplicate key", file: "c.json:{\"problem\": {\"parameters\": {\"tol\": 0.1,\n  \"tol\": 0.5}}}",
			want: "config file DIR/c.json: line 2, column 3: duplicate key \"problem.parameters.tol\" (first at line 1, column 29): the last would silently win"},
		{name: "json duplicate in a list", file: "c.json:{\"optimization\": {\"parameters\": {\"x\": [{\"a\": 1, \"a\": 2}]}}}",
			want: "config file DIR/c.json: line 1, column 49: duplicate key \"optimization.parameters.x[0].a\" (first at line 1, column 41): the last would silently win"},
		{name: "yaml duplicate key", file: "c.yaml:time_limit: 1\ntime_limit: 2\n",
			want: "config file DIR/c.yaml: yaml: unmarshal errors:\n  line 2: mapping key \"time_limit\" already defined at line 1"},
		{name: "empty yaml", file: "c.yaml:", want: "config file DIR/c.yaml is empty; write {} to mean every default"},
		{name: "yaml of comments only", file: "c.yaml:# nothing\n", want: "config file DIR/c.yaml is empty; write {} to mean every default"},
		{name: "empty json", file: "c.json:", want: "config file DIR/c.json is empty; write {} to mean every default"},
		{name: "blank json", file: "c.json: \n\t\n", want: "config file DIR/c.json is empty; write {} to mean every default"},
		{name: "json {} is every default", file: "c.json:{}"},
		{name: "yaml {} is every default", file: "c.yaml:{}"},
		{name: "tick_increment past int64", sets: []string{"connector.parameters.tick_increment=9223372036854775807"},
			want: "connector.parameters.tick_increment = 9223372036854775807: must be at most 2^62 = 4611686018427387904 ticks (it is added to ticks, the sum would overflow)"},
		{name: "cooldown past int64", sets: []string{"problem.parameters.cooldown_ticks=9223372036854775807"},
			want: "problem.parameters.cooldown_ticks = 9223372036854775807: must be at most 2^62 = 4611686018427387904 ticks (it is added to ticks, the sum would overflow)"},
		{name: "window whose history overflows", sets: []string{"connector.parameters.window_duration=4611686018427387904", "problem.parameters.history_ticks=0"},
			want: "connector.parameters.window_duration = 4611686018427387904: must be at most 2^60 = 1152921504606846976 ticks (the engine's tick counts, 4 windows by default, would overflow)"},
		{name: "time limit past a duration", sets: []string{"time_limit=1e300"},
			want: "time_limit = 1e+300: must be at most 9223372036 seconds (a longer limit overflows a duration; 0 or null = no limit)"},
		{name: "NaN tolerances", file: "c.yaml:problem:\n  parameters:\n    tol: .nan\n    headroom: .nan\n",
			want: "problem.parameters.headroom = NaN: must be a finite number\nproblem.parameters.tol = NaN: must be a finite number"},
		{name: "tick_increment larger than the window", sets: []string{"connector.parameters.tick_increment=20", "connector.parameters.window_duration=10"},
			warn: "connector.parameters.tick_increment: 20 is larger than connector.parameters.window_duration = 10: the 10 ticks before each loop's window are never evaluated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file, dir := "testdata/precedence.yaml", t.TempDir()
			if tt.file != "" {
				name, body, _ := strings.Cut(tt.file, ":")
				file = filepath.Join(dir, name)
				if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var args []string
			for _, s := range tt.sets {
				args = append(args, "--set", s)
			}
			_, rep, err := Load(LoadOptions{File: file, Environ: []string{}, Flags: flags(t, args...)})
			want := strings.ReplaceAll(tt.want, "DIR", dir)
			switch {
			case want == "" && err != nil:
				t.Fatalf("err = %v", err)
			case want != "" && (err == nil || err.Error() != want):
				t.Fatalf("err = %v\nwant   %s", err, want)
			}
			if tt.warn != "" && !strings.Contains(strings.Join(rep.Warnings(), "\n"), tt.warn) {
				t.Errorf("warnings %q lack %q", rep.Warnings(), tt.warn)
			}
		})
	}
}

// Strict mode reports the unknown keys together with the invalid values.
func TestStrictReportsEverything(t *testing.T) {
	file := writeFile(t, "c.yaml", "tol: 0.2\nproblem:\n  type: scheduling\n")
	_, _, err := Load(LoadOptions{File: file, Environ: []string{}, Strict: true})
	want := "problem.type = \"scheduling\": one of placement\nunknown configuration keys (strict): tol"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant   %s", err, want)
	}
}

// FuzzLoad: no configuration file makes Load panic, and whatever it
// accepts passes validation (so nothing invalid reaches a run).
func FuzzLoad(f *testing.F) {
	for _, b := range []string{"{}", `{"time_limit": 1, "time_limit": 2}`, "{\n \"problem\": {,}\n}", `{"connector": {"parameters": {"tick_increment": 9223372036854775807}}}`,
		`{"problem": {"parameters": {"initial_placement": 2, "tol": "x"}}}`, `[1]`, `{"a": [{"b": 1}, {"b": 1}]}`, "\"\\u0000\"", `{"time_limit": 1e400}`} {
		f.Add(b, false)
	}
	for _, b := range []string{"time_limit: 1\n", "problem:\n  parameters:\n    tol: .nan\n", "a: &x [*x]\n", "- 1\n", "connector: {type: kafka, parameters: {window_duration: -3}}\n", ""} {
		f.Add(b, true)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body string, yaml bool) {
		name := filepath.Join(dir, "c.json")
		if yaml {
			name = filepath.Join(dir, "c.yaml")
		}
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := Load(LoadOptions{File: name, Environ: []string{}})
		if err != nil {
			if !strings.Contains(err.Error(), " = ") && !strings.Contains(err.Error(), name) && !strings.Contains(err.Error(), "unknown") {
				t.Fatalf("error names neither the key nor the file: %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted an invalid configuration: %v", err)
		}
	})
}
