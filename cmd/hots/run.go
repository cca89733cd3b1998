package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"hots/cmd/hots/internal/sample"
	"hots/codecs"
	"hots/config"
	"hots/pipeline"
	"hots/pipeline/rundir"
)

// runKafka runs live mode; the Kafka side sets it from its own file. While
// it is nil, `hots run` refuses connector.type kafka with a clear message.
var runKafka func(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error

// replayCounts is what a replay reports back, beside what the observer saw.
type replayCounts struct {
	Samples    int64
	Rejects    int64
	Containers int
	TimeLimit  bool // the replay stopped at time_limit
}

// replayFunc replays cfg's data folder through the pipeline.
type replayFunc func(ctx context.Context, cfg config.Config, obs pipeline.Observer) (replayCounts, error)

// loadFlags are the flags every config-reading command shares.
func loadFlags(fs *pflag.FlagSet) (file *string, strict *bool) {
	file = fs.StringP("config", "c", "", "config file, JSON or YAML (default $"+config.EnvConfigFile+", else the bundled sample config)")
	strict = fs.Bool("strict", false, "unknown configuration keys are errors (also $HOTS_STRICT=1)")
	config.RegisterFlags(fs)
	return file, strict
}

func loadConfig(fs *pflag.FlagSet, file string, strict bool) (*config.Config, config.Report, error) {
	if file == "" {
		file = os.Getenv(config.EnvConfigFile)
	}
	if s, err := strconv.ParseBool(os.Getenv("HOTS_STRICT")); err == nil && s {
		strict = true
	}
	return config.Load(config.LoadOptions{File: file, Flags: fs, Strict: strict})
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	file, strict := loadFlags(fs)
	overwrite := fs.Bool("overwrite", false, "reuse a non-empty run directory (--out): hots's files in it are replaced, others are left")
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, err := trimArgs(fs, 0, "no arguments (see --help)"); err != nil {
		return err
	}
	cfg, rep, err := loadConfig(fs, *file, *strict)
	for _, w := range rep.Warnings() {
		if err != nil { // the logger is not set up yet: say it plainly
			fmt.Fprintln(stderr, "hots: config:", w)
		}
	}
	if err != nil {
		return err
	}
	// Before the log file or anything else is created.
	if err := checkOutputs(*cfg, cmp.Or(*file, os.Getenv(config.EnvConfigFile)), *overwrite); err != nil {
		return err
	}
	log, closeLog, err := newLogger(cfg.Logging, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	rep.Log(log)
	return run(ctx, *cfg, log, stdout, stderr, replayPipeline)
}

// run is the main job, separate from flag parsing so tests call it with a
// configuration.
func run(ctx context.Context, cfg config.Config, log *slog.Logger, stdout, stderr io.Writer, replay replayFunc) error {
	if cfg.Connector.Type == "kafka" {
		if runKafka == nil {
			return errors.New("connector.type = \"kafka\": live mode is not yet available in `hots run`; replay a trace with connector.type file")
		}
		return runKafka(ctx, cfg, log, stdout)
	}
	start := time.Now()
	cp := &cfg.Connector.Parameters
	trace := "sample"
	if cp.DataFolder != "" {
		trace = filepath.Base(filepath.Clean(cp.DataFolder))
	}
	dir, err := runDir(cfg.Reporting.ResultsFolder, trace, start)
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, "hots: run directory", dir)
	if cp.DataFolder == "" {
		// The bundled default: a generated trace, kept with the run.
		cp.DataFolder = filepath.Join(dir, "input")
		tr, err := sample.Generate(sample.Params{})
		if err != nil {
			return err
		}
		if err := tr.Write(cp.DataFolder); err != nil {
			return err
		}
		log.Info("no data_folder: generated the bundled sample", "dir", cp.DataFolder,
			"containers", len(tr.Containers), "hosts", len(tr.Hosts), "ticks", len(tr.Usage))
	}
	if cp.Outfile == "" {
		cp.Outfile = filepath.Join(dir, "moves.jsonl")
	}
	if cp.RejectsFile == "" {
		cp.RejectsFile = filepath.Join(dir, "rejects.csv")
	}
	if b, err := json.MarshalIndent(cfg, "", "  "); err == nil {
		// The effective configuration, so a run directory says how it was made.
		if err := os.WriteFile(filepath.Join(dir, "config.json"), append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	capacity, err := readCapacity(cfg)
	if err != nil {
		return err
	}
	rd, err := rundir.New(rundir.Options{
		Dir: dir, Metrics: cp.Metrics, MetricsFile: cfg.Reporting.MetricsFile, PlotsDir: cfg.Reporting.PlotsFolder,
		Trace: trace, ConfigDigest: cfg.Digest(),
	})
	if err != nil {
		return err
	}
	rd.SetCapacity(capacity)
	obs := fanout{rd}
	if bar := newProgress(stderr); bar != nil {
		obs = append(obs, bar)
		defer bar.finish()
	}

	// The replay honours time_limit itself, between ticks.
	counts, rerr := replay(ctx, cfg, obs)
	stopped := ""
	switch {
	case ctx.Err() != nil:
		stopped = "signal"
	case counts.TimeLimit:
		stopped = "time_limit"
	}
	if rerr != nil && stopped == "" {
		// Outputs are still written: they say how far the run got.
		_, _ = rd.Close(rundir.RunInfo{Samples: counts.Samples, Rejects: counts.Rejects, Containers: counts.Containers, WallSeconds: time.Since(start).Seconds(), Stopped: "error"})
		return fmt.Errorf("replay: %w (partial outputs in %s)", rerr, dir)
	}
	if stopped != "" {
		log.Warn("run stopped early; outputs cover the ticks closed so far", "reason", stopped)
	}
	s, err := rd.Close(rundir.RunInfo{Samples: counts.Samples, Rejects: counts.Rejects, Containers: counts.Containers,
		WallSeconds: time.Since(start).Seconds(), Stopped: stopped})
	if s != nil {
		if werr := s.WriteTable(stdout); werr != nil && err == nil {
			err = werr
		}
		fmt.Fprintf(stdout, "run directory: %s\n", dir)
	}
	return cmp.Or(err, runOutcome(stopped, counts, cp.RejectsFile, dir))
}

// runOutcome fails a run that completed without reading anything usable,
// and marks an interrupted one (main exits 130 or 143 on it).
func runOutcome(stopped string, counts replayCounts, rejectsFile, dir string) error {
	switch {
	case stopped == "signal":
		return &interruptedError{dir: dir}
	case stopped == "" && counts.Samples == 0:
		return &errNothingUsable{rejects: counts.Rejects, rejectsFile: rejectsFile, dir: dir}
	}
	return nil
}

// runDir creates the run directory: the configured one, else
// runs/<trace>-<time>, with a suffix if a run started in the same second.
func runDir(configured, trace string, t time.Time) (string, error) {
	if configured != "" {
		return configured, os.MkdirAll(configured, 0o755)
	}
	if err := os.MkdirAll("runs", 0o755); err != nil {
		return "", err
	}
	base := filepath.Join("runs", trace+"-"+t.Format("20060102-150405"))
	dir := base
	for i := 2; ; i++ {
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", err
		}
		dir = fmt.Sprintf("%s-%d", base, i)
	}
}

// readCapacity reads node_meta for the run directory's KPIs and plots.
func readCapacity(cfg config.Config) (map[string][]float64, error) {
	cp := cfg.Connector.Parameters
	name := cp.NodeMetaFile
	if name == "" {
		name = "node_meta.csv"
	}
	path := filepath.Join(cp.DataFolder, name)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	nm, err := codecs.ReadNodeMeta(f, path, cp.HostField, cp.Metrics)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]float64, len(nm.Hosts))
	for _, h := range nm.Hosts {
		out[h.Name] = h.Capacity
	}
	return out, nil
}

func newLogger(l config.Logging, stderr io.Writer) (*slog.Logger, func(), error) {
	var level slog.Level
	switch strings.ToUpper(l.Level) {
	case "DEBUG":
		level = slog.LevelDebug
	case "WARNING", "WARN":
		level = slog.LevelWarn
	case "ERROR":
		level = slog.LevelError
	case "CRITICAL":
		level = slog.LevelError + 4
	}
	w, closeFn := stderr, func() {}
	if l.Filename != "" {
		if err := os.MkdirAll(filepath.Dir(l.Filename), 0o755); err != nil {
			return nil, nil, err
		}
		// Truncated at start, as upstream does with its log file.
		f, err := os.Create(l.Filename)
		if err != nil {
			return nil, nil, fmt.Errorf("logging.filename: %w", err)
		}
		w, closeFn = f, func() { f.Close() }
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if f, _ := l.Format(); f == config.LogJSON {
		h = slog.NewJSONHandler(w, opts)
	}
	log := slog.New(h)
	slog.SetDefault(log)
	return log, closeFn, nil
}

func cmdConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("config", stderr)
	file, strict := loadFlags(fs)
	markdown := fs.Bool("markdown", false, "print the configuration reference table instead")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *markdown {
		_, err := io.WriteString(stdout, config.MarkdownTable())
		return err
	}
	cfg, rep, err := loadConfig(fs, *file, *strict)
	for _, w := range rep.Warnings() {
		fmt.Fprintln(stderr, "hots: config:", w)
	}
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}
