package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"hots/pipeline/rundir"
)

// hostileTrace is the trace of issue 10: hots generate --containers 12
// --hosts 3 --ticks 60 --seed 1 (720 samples).
func hostileTrace(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "t")
	args := []string{"generate", "--out", dir, "--containers", "12", "--hosts", "3", "--ticks", "60", "--seed", "1"}
	if err := dispatch(context.Background(), args, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	return dir
}

// sed is `sed -i` over one file of the trace, for the edits.
func sed(t *testing.T, path, script string) {
	t.Helper()
	if out, err := exec.Command("sed", "-i", script, path).CombinedOutput(); err != nil {
		t.Fatalf("sed %s: %v %s", script, err, out)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Issue 10, at the command line: each hostile input either runs correctly
// or fails naming file, line and field; a failed run never exits 0 and no
// output overwrites an input.
func TestHostileRuns(t *testing.T) {
	if _, err := exec.LookPath("sed"); err != nil {
		t.Skip("needs sed")
	}
	tests := []struct {
		name  string
		edit  func(t *testing.T, data, out string) []string // extra args
		err   string                                        // substring of the error; "" = success
		code  int                                           // exit code main gives it
		check func(t *testing.T, data, out string, before string)
	}{
		{name: "broken quote in node_meta (was a panic)",
			edit: func(t *testing.T, data, _ string) []string {
				sed(t, filepath.Join(data, "node_meta.csv"), `3s/^n_2/n_"2/`)
				return nil
			},
			err: `node_meta.csv:3: not a CSV record: parse error on line 3, column 3: bare " in non-quoted-field`, code: 1},
		{name: "unterminated quote in the usage file costs one line (was 715 rows lost, exit 0)",
			edit: func(t *testing.T, data, _ string) []string {
				sed(t, filepath.Join(data, "container_usage.csv"), `7s/^/"/`)
				return nil
			},
			check: func(t *testing.T, data, out, _ string) {
				s, err := rundir.ReadSummary(out)
				if err != nil {
					t.Fatal(err)
				}
				if s.Samples != 719 || s.Rejects != 1 {
					t.Errorf("samples %d rejects %d, want 719 and 1", s.Samples, s.Rejects)
				}
				line7 := strings.Split(readFile(t, filepath.Join(data, "container_usage.csv")), "\n")[6]
				if rej := readFile(t, filepath.Join(out, "rejects.csv")); !strings.Contains(rej, `,7,,"not a CSV record: parse error on line 7, column 1: quote not closed`) ||
					!strings.HasSuffix(rej, `,"""`+line7[1:]+`"`+"\n") {
					t.Errorf("rejects.csv:\n%s\nwant line 7 with raw %s", rej, line7)
				}
			}},
		{name: "every row rejected (was exit 0)",
			edit: func(t *testing.T, data, _ string) []string {
				sed(t, filepath.Join(data, "container_usage.csv"), `2,$s/$/,/`)
				return nil
			},
			err: "no usable input: no sample was read and 720 records were rejected", code: 1,
			check: func(t *testing.T, _, out, _ string) {
				if n := countLines(t, filepath.Join(out, "rejects.csv")); n != 721 {
					t.Errorf("rejects.csv has %d lines, want header + 720", n)
				}
			}},
		{name: "tick_increment that can only overflow (was accepted)",
			edit: func(*testing.T, string, string) []string { return []string{"--tick-increment", "9223372036854775807"} },
			err:  "connector.parameters.tick_increment = 9223372036854775807: must be at most 2^62", code: 1},
		{name: "window whose history overflows (was an engine panic retried as late ticks, exit 0)",
			edit: func(*testing.T, string, string) []string {
				return []string{"--window", "4611686018427387904", "--set", "problem.parameters.history_ticks=0"}
			},
			err: "connector.parameters.window_duration = 4611686018427387904: must be at most 2^60", code: 1},
		{name: "every bad key at once (was the first only)",
			edit: func(*testing.T, string, string) []string {
				return []string{"--set", "problem.parameters.tol=abc", "--set", "connector.parameters.sep_time=x"}
			},
			err: "connector.parameters.sep_time = \"x\": must be an integer\nproblem.parameters.tol = \"abc\": must be a number", code: 1},
		{name: "--out is the data folder (was node_usage.csv overwritten)",
			edit: func(t *testing.T, data, _ string) []string {
				if err := os.WriteFile(filepath.Join(data, "node_usage.csv"), []byte("upstream's\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return []string{"--out", data}
			},
			err: "is the data folder", code: 1,
			check: func(t *testing.T, data, _, _ string) {
				if got := readFile(t, filepath.Join(data, "node_usage.csv")); got != "upstream's\n" {
					t.Errorf("node_usage.csv of the trace is now %.60q", got)
				}
			}},
		{name: "moves file is the usage CSV (was truncated)",
			edit: func(_ *testing.T, data, _ string) []string {
				return []string{"--set", "connector.parameters.outfile=" + filepath.Join(data, "container_usage.csv")}
			},
			err: "connector.parameters.outfile: ", code: 1,
			check: func(t *testing.T, data, _, before string) {
				if readFile(t, filepath.Join(data, "container_usage.csv")) != before {
					t.Error("container_usage.csv changed")
				}
			}},
		{name: "rejects file is node_meta through a relative path",
			edit: func(t *testing.T, data, _ string) []string {
				wd, _ := os.Getwd()
				rel, err := filepath.Rel(wd, filepath.Join(data, "node_meta.csv"))
				if err != nil {
					t.Fatal(err)
				}
				rel = strings.Replace(rel, string(filepath.Separator)+"t"+string(filepath.Separator), "/t/../t/", 1)
				return []string{"--set", "connector.parameters.rejects_file=" + rel}
			},
			err: "is an input of this run (connector.parameters.node_meta_file)", code: 1},
		{name: "non-empty run directory (was mixed with stale files)",
			edit: func(t *testing.T, _, out string) []string {
				os.MkdirAll(out, 0o755)
				os.WriteFile(filepath.Join(out, "stale.txt"), nil, 0o644)
				return nil
			},
			err: "is not empty (1 entries, e.g. stale.txt): its files would mix with this run's; pick a new directory, or pass --overwrite to reuse it", code: 1},
		{name: "non-empty run directory with --overwrite",
			edit: func(t *testing.T, _, out string) []string {
				os.MkdirAll(out, 0o755)
				os.WriteFile(filepath.Join(out, "stale.txt"), nil, 0o644)
				return []string{"--overwrite"}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := hostileTrace(t)
			out := filepath.Join(t.TempDir(), "out")
			extra := tt.edit(t, data, out)
			before := readFile(t, filepath.Join(data, "container_usage.csv"))
			args := append([]string{"run", "--data", data, "--out", out, "--log-level", "ERROR"}, extra...)
			var stdout bytes.Buffer
			err := dispatch(context.Background(), args, &stdout, io.Discard)
			if tt.err == "" && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("err = %v\nwant it to contain %s", err, tt.err)
			}
			if code := exitStatus(err, nil, io.Discard); code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			if tt.check != nil {
				tt.check(t, data, out, before)
			}
		})
	}
}

// Interrupted runs exit as shells report a signal, failed ones 1, usage
// errors 2.
func TestExitStatus(t *testing.T) {
	tests := []struct {
		err  error
		sig  os.Signal
		want int
	}{
		{nil, nil, 0},
		{fmt.Errorf("%w: unknown command", errUsage), nil, 2},
		{errors.New("replay: boom"), nil, 1},
		{&errNothingUsable{rejects: 3}, nil, 1},
		{&interruptedError{dir: "d"}, syscall.SIGINT, 130},
		{&interruptedError{dir: "d"}, syscall.SIGTERM, 143},
		{fmt.Errorf("wrapped: %w", &interruptedError{dir: "d"}), os.Interrupt, 130},
	}
	for _, tt := range tests {
		if got := exitStatus(tt.err, tt.sig, io.Discard); got != tt.want {
			t.Errorf("exitStatus(%v, %v) = %d, want %d", tt.err, tt.sig, got, tt.want)
		}
	}
}
