package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"hots/codecs"
	"hots/config"
	"hots/connectors/file"
	"hots/handlers"
	"hots/placement"
)

// ReplayResult are the counts of one replay.
type ReplayResult struct {
	Rows       int64 // data rows read from the usage file
	Samples    int64 // samples that reached the window (rows minus rejects)
	Rejected   int64 // bad rows and poisoned messages (all in the rejects file)
	Late       int64 // samples or ticks dropped as already closed
	Ticks      int64 // ticks replayed
	Loops      int64 // engine decisions
	Moves      int64 // moves written
	Domains    int
	Containers int
	Hosts      int // distinct hosts in the samples (trace and re-attributed)
	// NodeMetaHosts is the host count of node_meta.csv; NodeMetaDuplicates
	// its duplicate rows (first kept, others in the rejects file).
	NodeMetaHosts      int
	NodeMetaDuplicates int
	UnknownHosts       []string // hosts in the samples but not in node_meta
	Relocated          int64    // rows re-attributed after the run's own moves
	Sorted             bool     // the usage file was sorted by tick (streamed)
	TimeLimitReached   bool
	MovesPath          string
	RejectsPath        string
	Elapsed            time.Duration
}

// EngineParams is the configuration's engine parameters with the engine's
// defaults filled in (config owns the key mapping).
func EngineParams(cfg config.Config) placement.Params {
	p := cfg.EngineParams()
	placement.SetDefaults(&p)
	return p
}

// UsageFields maps the connector parameters onto the codecs' field names.
func UsageFields(cfg config.Config) codecs.UsageFields {
	cp := cfg.Connector.Parameters
	return codecs.UsageFields{Tick: cp.TickField, Individual: cp.IndividualField, Host: cp.HostField,
		Domain: cp.DomainField, Metrics: cp.Metrics, DefaultDomain: cp.Domain}.WithDefaults()
}

// ToReject converts a codec error into the Observer's record.
func ToReject(e *codecs.RowError) Reject {
	return Reject{Source: e.Source, Line: e.Line, Partition: e.Partition, Offset: e.Offset, Field: e.Field, Reason: e.Reason, Raw: e.Raw}
}

// Replay runs the file pipeline over a trace to its end (or until ctx is
// cancelled or cfg.TimeLimit passes) and returns its counts. Moves go to
// cfg.Connector.Parameters.Outfile (required: the CLI defaults it to
// <run dir>/moves.jsonl), rejects to RejectsFile (default: rejects.csv
// next to the moves file). With bad_input "stop" the first reject ends the
// run with an error.
func Replay(ctx context.Context, cfg config.Config, obs Observer) (*ReplayResult, error) {
	start := time.Now()
	if obs == nil {
		obs = NopObserver{}
	}
	cp := cfg.Connector.Parameters
	if cp.DataFolder == "" {
		return nil, errors.New("connector.parameters.data_folder is empty")
	}
	if cp.Outfile == "" {
		return nil, errors.New("connector.parameters.outfile is empty")
	}
	usagePath := filepath.Join(cp.DataFolder, orDefault(cp.FileName, "container_usage.csv"))
	metaPath := filepath.Join(cp.DataFolder, orDefault(cp.NodeMetaFile, "node_meta.csv"))
	rejectsPath := cp.RejectsFile
	if rejectsPath == "" {
		rejectsPath = filepath.Join(filepath.Dir(cp.Outfile), "rejects.csv")
	}
	fields := UsageFields(cfg)
	params := EngineParams(cfg)
	params.Metrics = fields.Metrics

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if cfg.TimeLimit > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, time.Duration(cfg.TimeLimit*float64(time.Second)), errTimeLimit)
		defer stop()
	}

	var stopErr error
	var stopOnce sync.Once
	rejects, err := file.NewRejectsWriter(rejectsPath, func(e *codecs.RowError) {
		obs.Rejected(ToReject(e))
		if cp.BadInput == "stop" {
			stopOnce.Do(func() { stopErr = fmt.Errorf("bad input (bad_input: stop): %w", e); cancel(stopErr) })
		}
	})
	if err != nil {
		return nil, err
	}
	defer rejects.Close()

	meta, err := readNodeMeta(metaPath, fields)
	if err != nil {
		return nil, err
	}
	known := make(map[string]bool, len(meta.Hosts))
	for _, h := range meta.Hosts {
		known[h.Name] = true
	}
	for _, d := range meta.Duplicates {
		rejects.Reject(d)
	}
	// Parameters are checked once, before anything runs.
	if _, err := placement.New(fields.DefaultDomain, params, meta.Hosts); err != nil {
		return nil, fmt.Errorf("engine parameters: %w", err)
	}

	reloc := file.NewRelocations()
	ready := make(chan struct{})
	sub, err := file.NewSubscriber(file.Config{UsagePath: usagePath, Fields: fields, KnownHosts: known,
		Relocations: reloc, Reject: rejects.Reject, Ready: ready,
		Progress: func(done, total int64) {
			// After each tick, when its moves are written: a killed run's
			// rejects file is then as far along as its moves file.
			rejects.Flush()
			obs.Progress(done, total)
		}})
	if err != nil {
		return nil, err
	}
	if last, ok := sub.LastTick(); ok && params.SepTime > last {
		slog.Warn("connector.parameters.sep_time is past the last tick of the trace: no loop will run, the run only measures the trace without moves",
			"sep_time", params.SepTime, "last_tick", last, "file", usagePath)
	}
	moves, err := file.NewMovesPublisher(cp.Outfile, cp.ResetOnStart, reloc)
	if err != nil {
		return nil, err
	}
	defer moves.Close()

	stages := Stages{
		Decoder: &handlers.Decoder{Fields: fields, Reject: rejects.Reject},
		Window:  &handlers.Window{Metrics: len(fields.Metrics), OnTickClosed: obs.TickClosed},
		Placer: &handlers.Placer{Params: params, Hosts: meta.Hosts, OnDecision: func(d *placement.Decision, secs float64) {
			obs.Decided(LoopRecord{Domain: d.Domain, Tick: d.Tick, Kind: d.Kind, Report: d.Loop, LoopSeconds: secs}, d.Moves)
		}},
	}
	r, err := Build(RouterConfig{Source: sub, SourceTopic: usagePath, Sink: moves, SinkTopic: cp.Outfile,
		Poison: file.PoisonPublisher{Rejects: rejects, Stopping: func() bool { return ctx.Err() != nil }}, Stages: stages,
		OnPanic: func(pe *PanicError) {
			slog.Error("stage panicked", "handler", pe.Handler, "domain", pe.Domain, "tick", pe.Tick, "panic", pe.Value, "stack", string(pe.Stack))
			stopOnce.Do(func() { stopErr = pe; cancel(pe) })
		}})
	if err != nil {
		return nil, err
	}
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(ctx) }()
	select {
	case <-r.Running():
		close(ready)
	case err := <-runErr:
		return nil, errStopped(err)
	}

	var result error
	select {
	case <-sub.Done():
		result = sub.Err()
	case <-ctx.Done():
	}
	timeLimit := false
	if cause := context.Cause(ctx); cause != nil {
		switch {
		case errors.Is(cause, errTimeLimit):
			timeLimit = true
		case stopErr != nil:
			result = stopErr
		default:
			result = errStopped(cause)
		}
	}
	if err := r.Close(); err != nil && result == nil {
		result = err
	}
	if err := <-runErr; err != nil && result == nil {
		result = err
	}
	if err := moves.Close(); err != nil && result == nil {
		result = err
	}
	if err := rejects.Close(); err != nil && result == nil {
		result = err
	}

	ss := sub.Stats()
	ws := stages.Window.Stats()
	doms, conts, hosts := stages.Window.Seen()
	res := &ReplayResult{
		Rows: ss.Rows, Samples: ws.Samples, Rejected: rejects.Count(),
		Late: ws.Late + stages.Placer.Late(), Ticks: ss.Ticks, Loops: stages.Placer.Loops(), Moves: moves.Count(),
		Domains: doms, Containers: conts, Hosts: hosts,
		NodeMetaHosts: len(meta.Hosts), NodeMetaDuplicates: len(meta.Duplicates), UnknownHosts: ss.UnknownHosts,
		Relocated: ss.Relocated, Sorted: ss.Sorted, TimeLimitReached: timeLimit,
		MovesPath: cp.Outfile, RejectsPath: rejectsPath, Elapsed: time.Since(start),
	}
	if ws.Duplicates > 0 { // the connector already drops them; counted here if any slipped through
		slog.Warn("duplicate samples dropped by the window", "count", ws.Duplicates)
	}
	return res, result
}

var errTimeLimit = errors.New("time limit reached")

func readNodeMeta(path string, f codecs.UsageFields) (*codecs.NodeMeta, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("node meta file: %w", err)
	}
	defer fh.Close()
	return codecs.ReadNodeMeta(fh, path, f.Host, f.Metrics)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
