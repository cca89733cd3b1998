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

	"hots/codecs"
	"hots/config"
	"hots/connectors"
	"hots/pipeline"
	"hots/pipeline/rundir"
)

// loadFlags are the flags every config-reading command shares: the
// configuration's and every registered connector's.
func loadFlags(fs *pflag.FlagSet) (file *string, strict *bool) {
	file = fs.StringP("config", "c", "", "config file, JSON or YAML (default $"+config.EnvConfigFile+", else the bundled sample config)")
	strict = fs.Bool("strict", false, "unknown configuration keys are errors (also $HOTS_STRICT=1)")
	config.RegisterFlags(fs)
	for _, f := range connectors.Flags() {
		if fs.Lookup(f.Name) != nil {
			continue // two connectors offer the same shortcut for the same key
		}
		if f.List {
			fs.StringSlice(f.Name, nil, f.Usage)
		} else {
			fs.String(f.Name, "", f.Usage)
		}
	}
	return file, strict
}

// loaded is a configuration with its connector's Args decoded.
type loaded struct {
	cfg  config.Config
	rep  config.Report
	conn *connectors.Decoded
}

func loadConfig(fs *pflag.FlagSet, file string, strict bool) (*loaded, error) {
	if file == "" {
		file = os.Getenv(config.EnvConfigFile)
	}
	if s, err := strconv.ParseBool(os.Getenv("HOTS_STRICT")); err == nil && s {
		strict = true
	}
	keys := map[string]string{}
	for _, f := range connectors.Flags() {
		keys[f.Name] = f.Key
	}
	cfg, rep, err := config.Load(config.LoadOptions{File: file, Flags: fs, Strict: strict, FlagKeys: keys, Sections: connectors.Sections()})
	l := &loaded{rep: rep}
	if err != nil {
		return l, err
	}
	l.cfg = *cfg
	dec, err := connectors.Decode(cfg.Connector.Type, pipeline.RawConnector(*cfg))
	if dec != nil {
		l.rep.AddUnknown(dec.Unknown...)
	}
	if err != nil {
		return l, err
	}
	l.conn = dec
	if strict {
		return l, l.rep.StrictError()
	}
	return l, nil
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
	l, err := loadConfig(fs, *file, *strict)
	if err != nil {
		for _, w := range l.rep.Warnings() { // the logger is not set up yet: say it plainly
			fmt.Fprintln(stderr, "hots: config:", w)
		}
		return err
	}
	// Before the log file or anything else is created.
	if err := checkOutputs(l.cfg, l.conn, cmp.Or(*file, os.Getenv(config.EnvConfigFile)), *overwrite); err != nil {
		return err
	}
	log, closeLog, err := newLogger(l.cfg.Logging, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	l.rep.Log(log)
	return run(ctx, l.cfg, l.conn, log, stdout, stderr)
}

// run is the main job, separate from flag parsing so tests call it with a
// configuration: a replay writes a run directory and prints its summary;
// any other connector runs as a service until ctx ends.
func run(ctx context.Context, cfg config.Config, dec *connectors.Decoded, log *slog.Logger, stdout, stderr io.Writer) error {
	env := pipeline.Env(cfg, log)
	if !dec.Registration.RunDir {
		return serve(ctx, cfg, dec, env, log)
	}
	start := time.Now()
	trace := "sample"
	if d := dataFolder(dec); d != "" {
		trace = filepath.Base(filepath.Clean(d))
	}
	dir, err := runDir(cfg.Reporting.ResultsFolder, trace, start)
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, "hots: run directory", dir)
	if b, err := json.MarshalIndent(cfg, "", "  "); err == nil {
		// The effective configuration, so a run directory says how it was made.
		if err := os.WriteFile(filepath.Join(dir, "config.json"), append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	rd, err := rundir.New(rundir.Options{
		Dir: dir, Metrics: cfg.Connector.Parameters.Metrics, MetricsFile: cfg.Reporting.MetricsFile, PlotsDir: cfg.Reporting.PlotsFolder,
		Trace: trace, ConfigDigest: cfg.Digest(),
	})
	if err != nil {
		return err
	}
	obs := fanout{rd}
	if bar := newProgress(stderr); bar != nil {
		obs = append(obs, bar)
		defer bar.finish()
	}
	env.RunDir = dir
	env.Reject = func(e *codecs.RowError) { obs.Rejected(pipeline.ToReject(e)) }
	env.Progress = obs.Progress
	conn, err := dec.Registration.New(env, dec.Args)
	if err != nil {
		return err
	}
	defer conn.Close() // on early returns; the normal path closes it below, checked

	// The run honours time_limit itself, between ticks.
	res, rerr := pipeline.Run(ctx, cfg, conn, pipeline.Options{Observer: obs, Logger: log,
		OnInitial: func(in connectors.Initial) {
			capacity := make(map[string][]float64, len(in.Hosts))
			for _, h := range in.Hosts {
				capacity[h.Name] = h.Capacity
			}
			rd.SetCapacity(capacity)
		}})
	if res == nil {
		res = &pipeline.Result{}
	}
	if err := conn.Close(); err != nil && rerr == nil {
		rerr = err // the moves or rejects file did not reach the disk
	}
	info := rundir.RunInfo{Samples: res.Samples, Rejects: res.Rejected, Containers: res.Containers, HostConflicts: res.HostConflicts}
	stopped := ""
	switch {
	case ctx.Err() != nil:
		stopped = "signal"
	case res.TimeLimitReached:
		stopped = "time_limit"
	}
	if rerr != nil && stopped == "" {
		// Outputs are still written: they say how far the run got.
		info.WallSeconds, info.Stopped = time.Since(start).Seconds(), "error"
		_, _ = rd.Close(info)
		return fmt.Errorf("replay: %w (partial outputs in %s)", rerr, dir)
	}
	if stopped != "" {
		log.Warn("run stopped early; outputs cover the ticks closed so far", "reason", stopped)
	}
	info.WallSeconds, info.Stopped = time.Since(start).Seconds(), stopped
	s, err := rd.Close(info)
	if s != nil {
		if werr := s.WriteTable(stdout); werr != nil && err == nil {
			err = werr
		}
		fmt.Fprintf(stdout, "run directory: %s\n", dir)
	}
	return cmp.Or(err, runOutcome(stopped, res, dir))
}

// runOutcome fails a run that completed without reading anything usable,
// and marks an interrupted one (main exits 130 or 143 on it).
func runOutcome(stopped string, res *pipeline.Result, dir string) error {
	switch {
	case stopped == "signal":
		return &interruptedError{dir: dir}
	case stopped == "" && res.Samples == 0:
		return &errNothingUsable{rejects: res.Rejected, dir: dir}
	}
	return nil
}

// serve runs a service connector until ctx ends, with health, readiness
// and metrics on service.http_addr.
func serve(ctx context.Context, cfg config.Config, dec *connectors.Decoded, env connectors.Env, log *slog.Logger) error {
	conn, err := dec.Registration.New(env, dec.Args)
	if err != nil {
		return err
	}
	defer conn.Close()
	stall, _ := time.ParseDuration(cfg.Service.StallAfter) // validated by config
	svc, err := pipeline.NewService(pipeline.ServiceOptions{Addr: cfg.Service.HTTPAddr, StallAfter: stall, Pprof: cfg.Service.Pprof}, log)
	if err != nil {
		return err
	}
	defer svc.Close()
	_, err = pipeline.Run(ctx, cfg, conn, pipeline.Options{Service: svc, Logger: log})
	return err
}

// dataFolder is the trace the connector replays, if its Args say: it
// names the run directory.
func dataFolder(dec *connectors.Decoded) string {
	if t, ok := dec.Args.(interface{ Trace() string }); ok {
		return t.Trace()
	}
	return ""
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
		_, err := io.WriteString(stdout, config.MarkdownTable()+"\n"+connectors.MarkdownTable())
		return err
	}
	l, err := loadConfig(fs, *file, *strict)
	for _, w := range l.rep.Warnings() {
		fmt.Fprintln(stderr, "hots: config:", w)
	}
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(l.cfg, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}
