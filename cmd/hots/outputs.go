package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"hots/config"
	"hots/pipeline/rundir"
)

// checkOutputs refuses a run whose outputs would destroy its inputs or mix
// with an earlier run's files, before anything is written: a moves file
// pointed at the usage CSV would be truncated at start, and a run
// directory that is the data folder would overwrite the trace's own
// node_usage.csv.
func checkOutputs(cfg config.Config, configFile string, overwrite bool) error {
	cp := cfg.Connector.Parameters
	type named struct{ key, path string }
	var inputs []named
	if configFile != "" {
		inputs = append(inputs, named{"--config", configFile})
	}
	if cfg.Connector.Type == "file" && cp.DataFolder != "" {
		inputs = append(inputs,
			named{"connector.parameters.file_name", filepath.Join(cp.DataFolder, orDefault(cp.FileName, "container_usage.csv"))},
			named{"connector.parameters.node_meta_file", filepath.Join(cp.DataFolder, orDefault(cp.NodeMetaFile, "node_meta.csv"))})
	}
	outputs := []named{{"logging.filename", cfg.Logging.Filename}}
	dir := cfg.Reporting.ResultsFolder
	if cfg.Connector.Type == "file" {
		outputs = append(outputs,
			named{"connector.parameters.outfile", orDefault(cp.Outfile, join(dir, "moves.jsonl"))},
			named{"connector.parameters.rejects_file", orDefault(cp.RejectsFile, join(dir, "rejects.csv"))},
			named{"reporting.metrics_file", orDefault(cfg.Reporting.MetricsFile, join(dir, rundir.MetricsFile))},
			named{"reporting.results_folder", join(dir, "config.json")},
			named{"reporting.results_folder", join(dir, rundir.NodeUsageFile)},
			named{"reporting.results_folder", join(dir, rundir.NodeUsageBaseline)},
			named{"reporting.results_folder", join(dir, rundir.SummaryFile)})
	}
	for _, o := range outputs {
		for _, in := range inputs {
			if o.path != "" && samePath(o.path, in.path) {
				return fmt.Errorf("%s: %s is an input of this run (%s); refusing to overwrite it", o.key, o.path, in.key)
			}
		}
	}
	if dir == "" || cfg.Connector.Type != "file" {
		return nil // a fresh runs/<trace>-<time>, or no run directory
	}
	if cp.DataFolder != "" && samePath(dir, cp.DataFolder) {
		return fmt.Errorf("reporting.results_folder (--out) %s is the data folder: the run's files (node_usage.csv, …) would overwrite and mix with the trace's; pick another directory", dir)
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
	rejects          int64
	rejectsFile, dir string
}

func (e *errNothingUsable) Error() string {
	return fmt.Sprintf("no usable input: no sample was read and %d records were rejected (the reasons are in %s); outputs in %s",
		e.rejects, e.rejectsFile, e.dir)
}
