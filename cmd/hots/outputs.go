package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"hots/config"
	"hots/connectors"
	"hots/pipeline/rundir"
)

// checkOutputs refuses a run whose outputs would destroy its inputs or mix
// with an earlier run's files, before anything is written: a moves file
// pointed at the usage CSV would be truncated at start, and a run
// directory that is the data folder would overwrite the trace's own
// node_usage.csv. The connector names its own files (connectors.Filer).
func checkOutputs(cfg config.Config, dec *connectors.Decoded, configFile string, overwrite bool) error {
	dir := cfg.Reporting.ResultsFolder
	inputs := []connectors.NamedPath{}
	if configFile != "" {
		inputs = append(inputs, connectors.NamedPath{Key: "--config", Path: configFile})
	}
	outputs := []connectors.NamedPath{{Key: "logging.filename", Path: cfg.Logging.Filename}}
	if f, ok := dec.Args.(connectors.Filer); ok {
		in, out := f.Files(cfg.Dir, dir)
		inputs, outputs = append(inputs, in...), append(outputs, out...)
	}
	runDir := dec.Registration.RunDir
	if runDir {
		outputs = append(outputs,
			connectors.NamedPath{Key: "reporting.metrics_file", Path: orDefault(cfg.Reporting.MetricsFile, join(dir, rundir.MetricsFile))},
			connectors.NamedPath{Key: "reporting.results_folder", Path: join(dir, "config.json")},
			connectors.NamedPath{Key: "reporting.results_folder", Path: join(dir, rundir.NodeUsageFile)},
			connectors.NamedPath{Key: "reporting.results_folder", Path: join(dir, rundir.NodeUsageBaseline)},
			connectors.NamedPath{Key: "reporting.results_folder", Path: join(dir, rundir.SummaryFile)})
	}
	for _, o := range outputs {
		for _, in := range inputs {
			if o.Path != "" && samePath(o.Path, in.Path) {
				return fmt.Errorf("%s: %s is an input of this run (%s); refusing to overwrite it", o.Key, o.Path, in.Key)
			}
		}
	}
	if dir == "" || !runDir {
		return nil // a fresh runs/<trace>-<time>, or no run directory
	}
	for _, in := range inputs {
		if in.Key != "--config" && samePath(dir, filepath.Dir(in.Path)) {
			return fmt.Errorf("reporting.results_folder (--out) %s is the data folder (%s): the run's files (node_usage.csv, …) would overwrite and mix with the trace's; pick another directory", dir, in.Key)
		}
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0):
		return nil
	case err != nil:
		return fmt.Errorf("reporting.results_folder (--out): %w", err)
	case !overwrite:
		return fmt.Errorf("reporting.results_folder (--out) %s is not empty (%d entries, e.g. %s): its files would mix with this run's; pick a new directory, or pass --overwrite to reuse it",
			dir, len(entries), entries[0].Name())
	}
	return nil
}

func join(dir, name string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, name)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// samePath reports whether a and b name the same file: the same cleaned
// absolute path, or (when both exist) the same file through a link.
func samePath(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	if err1 == nil && err2 == nil && aa == bb {
		return true
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// interruptedError is a run stopped by SIGINT or SIGTERM: its outputs are
// written (they cover the ticks closed so far), and main exits 128+signal
// as shells do, so scripts tell it from a finished run.
type interruptedError struct{ dir string }

func (e *interruptedError) Error() string {
	return fmt.Sprintf("interrupted; outputs cover the ticks closed so far (in %s)", e.dir)
}

// exitCode is the shell's code for a process ended by sig.
func exitCode(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 130
}

// errNothingUsable is a run that read no usable sample: its figures would
// describe an empty trace, so it fails instead of reporting success.
type errNothingUsable struct {
	rejects int64
	dir     string
}

func (e *errNothingUsable) Error() string {
	return fmt.Sprintf("no usable input: no sample was read and %d records were rejected (the reasons are in the rejects file); outputs in %s",
		e.rejects, e.dir)
}
