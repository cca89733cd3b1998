package file

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"hots/codecs"
	"hots/connectors"
	"hots/connectors/file/sample"
)

// Name is the connector.type of the file connector.
const Name = "file"

func init() {
	connectors.Register(connectors.Registration{
		Name:    Name,
		Summary: "replay a CSV trace (container_usage.csv, node_meta.csv) in tick order; moves to a JSON-lines file",
		RunDir:  true,
		NewArgs: func() connectors.Args { return &Args{} },
		Keys: []connectors.Key{
			{Key: "data_folder", Doc: "folder holding the CSVs; empty = generate the bundled sample into RUN_DIR/input"},
			{Key: "file_name", Doc: "container usage CSV inside data_folder"},
			{Key: "node_meta_file", Doc: "host capacities CSV inside data_folder"},
			{Key: "outfile", Doc: "moves log (JSON lines); empty = RUN_DIR/moves.jsonl"},
			{Key: "reset_on_start", Doc: "truncate outfile at start"},
			{Key: "rejects_file", Doc: "bad input records (CSV); empty = beside outfile: RUN_DIR/rejects.csv"},
		},
		Flags: []connectors.Flag{{Name: "data", Key: "connector.parameters.data_folder",
			Usage: "data folder with container_usage.csv and node_meta.csv (connector.parameters.data_folder)"}},
		New: func(env connectors.Env, a connectors.Args) (connectors.Connector, error) { return New(env, *a.(*Args)) },
	})
}

// Args are the file connector's parameters (connector.parameters).
type Args struct {
	DataFolder   string `koanf:"data_folder"`
	FileName     string `koanf:"file_name"`
	NodeMetaFile string `koanf:"node_meta_file"`
	Outfile      string `koanf:"outfile"`
	ResetOnStart bool   `koanf:"reset_on_start"`
	RejectsFile  string `koanf:"rejects_file"`
}

// Default implements connectors.Args.
func (a *Args) Default() {
	a.FileName, a.NodeMetaFile, a.ResetOnStart = "container_usage.csv", "node_meta.csv", true
}

// Trace is the trace folder, which names the run directory ("" for the
// bundled sample).
func (a *Args) Trace() string { return a.DataFolder }

// Files implements connectors.Filer.
func (a *Args) Files(baseDir, runDir string) (inputs, outputs []connectors.NamedPath) {
	resolve := func(p string) string {
		if p == "" || filepath.IsAbs(p) || baseDir == "" {
			return p
		}
		return filepath.Join(baseDir, p)
	}
	if dir := resolve(a.DataFolder); dir != "" {
		inputs = append(inputs,
			connectors.NamedPath{Key: "connector.parameters.file_name", Path: filepath.Join(dir, a.FileName)},
			connectors.NamedPath{Key: "connector.parameters.node_meta_file", Path: filepath.Join(dir, a.NodeMetaFile)})
	}
	out := resolve(a.Outfile)
	if out == "" && runDir != "" {
		out = filepath.Join(runDir, "moves.jsonl")
	}
	rej := resolve(a.RejectsFile)
	if rej == "" && out != "" {
		rej = filepath.Join(filepath.Dir(out), "rejects.csv")
	}
	outputs = []connectors.NamedPath{{Key: "connector.parameters.outfile", Path: out}, {Key: "connector.parameters.rejects_file", Path: rej}}
	return inputs, outputs
}

// Validate implements connectors.Args.
func (a *Args) Validate() error {
	var errs []error
	for key, v := range map[string]string{"file_name": a.FileName, "node_meta_file": a.NodeMetaFile} {
		if v == "" {
			errs = append(errs, &connectors.KeyError{Key: "connector.parameters." + key, Value: v, Allowed: "must name a file"})
		}
	}
	return errors.Join(errs...)
}

// Connector replays a trace folder: the usage CSV through the Subscriber,
// moves to a JSON-lines file, bad records to a rejects CSV.
type Connector struct {
	env       connectors.Env
	usagePath string
	metaPath  string
	sub       *Subscriber
	moves     *MovesPublisher
	rejects   *RejectsWriter
	meta      *codecs.NodeMeta
	closeOnce sync.Once
	closeErr  error
}

// New opens a trace folder. Relative paths resolve against env.BaseDir;
// with no data_folder the bundled sample is generated into
// <env.RunDir>/input (the README's first command needs nothing else).
func New(env connectors.Env, a Args) (*Connector, error) {
	resolve := func(p string) string {
		if p == "" || filepath.IsAbs(p) || env.BaseDir == "" {
			return p
		}
		return filepath.Join(env.BaseDir, p)
	}
	dir := resolve(a.DataFolder)
	if dir == "" {
		if env.RunDir == "" {
			return nil, errors.New("connector.parameters.data_folder is empty and there is no run directory to generate the sample into")
		}
		dir = filepath.Join(env.RunDir, "input")
		tr, err := sample.Generate(sample.Params{})
		if err != nil {
			return nil, err
		}
		if err := tr.Write(dir); err != nil {
			return nil, err
		}
		if env.Logger != nil {
			env.Logger.Info("no data_folder: generated the bundled sample", "dir", dir,
				"containers", len(tr.Containers), "hosts", len(tr.Hosts), "ticks", len(tr.Usage))
		}
	}
	outfile, rejectsPath := resolve(a.Outfile), resolve(a.RejectsFile)
	if outfile == "" {
		if env.RunDir == "" {
			return nil, errors.New("connector.parameters.outfile is empty and there is no run directory")
		}
		outfile = filepath.Join(env.RunDir, "moves.jsonl")
	}
	if rejectsPath == "" {
		rejectsPath = filepath.Join(filepath.Dir(outfile), "rejects.csv")
	}
	c := &Connector{env: env, usagePath: filepath.Join(dir, a.FileName), metaPath: filepath.Join(dir, a.NodeMetaFile)}
	var err error
	if c.rejects, err = NewRejectsWriter(rejectsPath, env.Reject); err != nil {
		return nil, err
	}
	if c.meta, err = codecs.ReadNodeMetaFile(c.metaPath, env.Fields); err != nil {
		c.rejects.Close()
		return nil, err
	}
	for _, d := range c.meta.Duplicates {
		c.rejects.Reject(d)
	}
	known := make(map[string]bool, len(c.meta.Hosts))
	for _, h := range c.meta.Hosts {
		known[h.Name] = true
	}
	c.sub, err = NewSubscriber(Config{UsagePath: c.usagePath, Fields: env.Fields, KnownHosts: known,
		Reject: c.reject, Logger: env.Logger,
		Progress: func(done, total int64) {
			// After each tick, once its moves are written: a killed run's
			// rejects file is then as far along as its moves file.
			c.rejects.Flush()
			if env.Progress != nil {
				env.Progress(done, total)
			}
		}})
	if err != nil {
		c.rejects.Close()
		return nil, err
	}
	if last, ok := c.sub.LastTick(); ok && env.Engine.SepTime > last && env.Logger != nil {
		env.Logger.Warn("connector.parameters.sep_time is past the last tick of the trace: no loop will run, the run only measures the trace without moves",
			"sep_time", env.Engine.SepTime, "last_tick", last, "file", c.usagePath)
	}
	if c.moves, err = NewMovesPublisher(outfile, a.ResetOnStart); err != nil {
		c.rejects.Close()
		return nil, err
	}
	return c, nil
}

// reject sets a record aside; with bad_input stop the first one ends the
// replay.
func (c *Connector) reject(e *codecs.RowError) {
	c.rejects.Reject(e)
	if c.env.BadInput == "stop" {
		c.sub.fail(fmt.Errorf("bad input (bad_input: stop): %w", e))
	}
}

// Paths are the files the connector reads and writes.
func (c *Connector) Paths() (usage, nodeMeta, moves, rejects string) {
	return c.usagePath, c.metaPath, c.moves.path, c.rejects.path
}

// Initial implements connectors.Connector: node_meta's hosts and their
// declared domains.
func (c *Connector) Initial(context.Context) (connectors.Initial, error) {
	return connectors.Initial{Hosts: c.meta.Hosts, Domains: c.meta.Domains}, nil
}

// Source implements connectors.Connector.
func (c *Connector) Source() connectors.Source {
	return connectors.Source{Subscriber: c.sub, Topics: []string{c.usagePath}}
}

// Sink implements connectors.Connector.
func (c *Connector) Sink() connectors.Sink {
	return connectors.Sink{Publisher: c.moves, Topic: c.moves.path}
}

// Poison implements connectors.Connector: the rejects file.
func (c *Connector) Poison() connectors.Sink {
	return connectors.Sink{Publisher: PoisonPublisher{Rejects: c.rejects}, Topic: "poison"}
}

// Ticks implements connectors.Connector: a replay knows when a tick is
// complete and sends its watermark.
func (c *Connector) Ticks() connectors.TickRule { return connectors.TickRule{Watermarks: true} }

// Done implements connectors.Finite.
func (c *Connector) Done() <-chan struct{} { return c.sub.Done() }

// Err implements connectors.Finite.
func (c *Connector) Err() error { return c.sub.Err() }

// Counts implements connectors.Counter.
func (c *Connector) Counts() connectors.Counts {
	st := c.sub.Stats()
	return connectors.Counts{Rows: st.Rows, Ticks: st.Ticks, Sorted: st.Sorted, UnknownHosts: st.UnknownHosts,
		HostsKnown: len(c.meta.Hosts), Rejected: st.Rejected + int64(len(c.meta.Duplicates))}
}

// Close implements connectors.Connector: flushes and syncs the moves and
// rejects files. Idempotent.
func (c *Connector) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = errors.Join(c.sub.Close(), c.moves.Close(), c.rejects.Close())
	})
	return c.closeErr
}
