// Package rundir writes what a run produced into a run directory: per-loop
// metrics, host loads with and without the run's moves, a summary next to
// the no-move baseline, and SVG plots. It is a pipeline.Observer, so the
// same reports come out of a replay and of a live run.
//
// Files (all CSVs have a header row):
//
//	metrics.csv               one row per engine evaluation
//	node_usage.csv            domain,tick,host,<metric>…: load after the run's moves
//	node_usage_baseline.csv   same layout: load as the trace recorded it (no moves)
//	summary.json              run totals next to the baseline (Summary)
//	node_capacity.csv         host,<metric>…: the capacities the run knew
//	report.html               the page people look at (report.go): self-contained
//	plots/load_<metric>_moves.svg, plots/load_<metric>_baseline.svg
//	plots/overloaded_cells.svg, plots/plots.json (each plot's title and series)
//
// node_usage is split in two files of one layout rather than given a
// scenario column so that either can be read on its own, as upstream's
// node_usage.csv (tick, host, metrics) is.
package rundir

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"

	"hots/pipeline"
	"hots/placement"
	"hots/placement/kpi"
)

// File names inside a run directory.
const (
	MetricsFile       = "metrics.csv"
	NodeUsageFile     = "node_usage.csv"
	NodeUsageBaseline = "node_usage_baseline.csv"
	SummaryFile       = "summary.json"
	CapacityFile      = "node_capacity.csv"
	ReportFile        = "report.html"
	PlotIndexFile     = "plots.json" // in the plots folder: each plot's title and series
	PlotsDir          = "plots"
	DefaultPlotHosts  = 8
	scenarioMoves     = "moves"
	scenarioBaseline  = "baseline"
)

// MetricsHeader is metrics.csv's header.
var MetricsHeader = []string{
	"domain", "tick", "kind", "window_start", "window_end", "containers", "hosts", "clusters",
	"clust_conf_nodes", "clust_conf_edges", "clust_max_deg", "clust_mean_deg",
	"place_conf_nodes", "place_conf_edges", "place_max_deg", "place_mean_deg",
	"cluster_changes", "selected", "overload_selected", "moves",
	"window_overloads_before", "window_overloads_after", "loop_seconds",
	// One column per operator limit: the moves it held back in the loop.
	"held_max_moves_per_loop", "held_max_moves_per_source_host", "held_max_moves_per_target_host",
	"held_max_moves_per_domain_per_hour", "held_min_age_ticks", "held_max_moves_per_container_per_day",
}

// Options locate and tune the outputs.
type Options struct {
	Dir         string   // run directory, created if missing
	Metrics     []string // metric names, in Sample.Values order
	MetricsFile string   // "" = <Dir>/metrics.csv
	PlotsDir    string   // "" = <Dir>/plots
	// PlotHosts is how many of the busiest hosts a plot draws one line for;
	// the others are drawn as a min–max band. 0 = DefaultPlotHosts.
	PlotHosts    int
	Trace        string // name of the trace, for the summary
	ConfigDigest string
}

// Writer is the run directory observer. It is safe for concurrent use.
type Writer struct {
	opts Options

	mu       sync.Mutex
	files    []*os.File
	metrics  *csv.Writer
	usage    map[string]*csv.Writer // scenario → writer
	capacity map[string][]float64
	domains  map[string]*domainAcc
	hosts    map[string]bool
	loops    int
	moves    int
	moved    map[string]bool
	maxConts int
	loopSum  float64
	loopMax  float64
	rejects  int64
	err      error
	// For the summary and report.html.
	heldBack map[string]int
	dryRun   bool
	forecast Forecast
	allMoves []placement.Move
}

type domainAcc struct {
	actual, baseline *kpi.Accumulator
	churn            *kpi.ChurnAccumulator
	// window and horizon judge the churn: the loops' window length and
	// the ticks between two decisions (tick_increment), both learnt from
	// the decisions themselves.
	window, horizon int
	lastDecision    *int64
	// utilSum per host: summed utilisation (or load when the capacity is
	// unknown) over both scenarios, to pick the hosts a plot names.
	utilSum map[string]float64
	// loops, moves and moved containers of this domain.
	loops, moves int
	moved        map[string]bool
}

// New creates the run directory and the CSV files.
func New(opts Options) (*Writer, error) {
	if opts.PlotHosts <= 0 {
		opts.PlotHosts = DefaultPlotHosts
	}
	if opts.MetricsFile == "" {
		opts.MetricsFile = filepath.Join(opts.Dir, MetricsFile)
	}
	if opts.PlotsDir == "" {
		opts.PlotsDir = filepath.Join(opts.Dir, PlotsDir)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	w := &Writer{
		opts:     opts,
		usage:    map[string]*csv.Writer{},
		capacity: map[string][]float64{},
		domains:  map[string]*domainAcc{},
		hosts:    map[string]bool{},
		moved:    map[string]bool{},
		heldBack: map[string]int{},
	}
	open := func(path string, header []string) (*csv.Writer, error) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		w.files = append(w.files, f)
		cw := csv.NewWriter(f)
		return cw, cw.Write(header)
	}
	var err error
	if w.metrics, err = open(opts.MetricsFile, MetricsHeader); err != nil {
		w.closeFiles()
		return nil, err
	}
	usageHeader := append([]string{"domain", "tick", "host"}, opts.Metrics...)
	for scen, name := range map[string]string{scenarioMoves: NodeUsageFile, scenarioBaseline: NodeUsageBaseline} {
		if w.usage[scen], err = open(filepath.Join(opts.Dir, name), usageHeader); err != nil {
			w.closeFiles()
			return nil, err
		}
	}
	return w, nil
}

// SetCapacity declares host capacities (host → one value per metric), as
// node_meta.csv gives them. Call it before the ticks they apply to.
func (w *Writer) SetCapacity(capacity map[string][]float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range sortedKeys(capacity) {
		c := slices.Clone(capacity[h])
		w.capacity[h] = c
		w.hosts[h] = true
		for _, d := range w.domains {
			d.actual.SetCapacity(h, c)
			d.baseline.SetCapacity(h, c)
			d.churn.SetCapacity(h, c)
		}
	}
}

func (w *Writer) domain(name string) *domainAcc {
	d, ok := w.domains[name]
	if !ok {
		d = &domainAcc{
			actual:   kpi.New(w.opts.Metrics, w.capacity),
			baseline: kpi.New(w.opts.Metrics, w.capacity),
			churn:    kpi.NewChurn(w.capacity),
			utilSum:  map[string]float64{},
			moved:    map[string]bool{},
		}
		w.domains[name] = d
	}
	return d
}

// TickClosed implements pipeline.Observer.
func (w *Writer) TickClosed(domain string, tick int64, actual, baseline map[string][]float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.domain(domain)
	d.actual.AddTick(tick, actual)
	d.baseline.AddTick(tick, baseline)
	d.churn.AddTick(tick, actual)

	for scen, load := range map[string]map[string][]float64{scenarioMoves: actual, scenarioBaseline: baseline} {
		cw := w.usage[scen]
		for _, h := range sortedKeys(load) {
			w.hosts[h] = true
			row := []string{domain, strconv.FormatInt(tick, 10), h}
			for m := range w.opts.Metrics {
				v := 0.0
				if m < len(load[h]) {
					v = load[h][m]
				}
				row = append(row, fmtFloat(v))
				if c := w.capacity[h]; m < len(c) && c[m] > 0 {
					v /= c[m]
				}
				d.utilSum[h] += v
			}
			w.keep(cw.Write(row))
		}
		cw.Flush()
		w.keep(cw.Error())
	}
}

// Decided implements pipeline.Observer.
func (w *Writer) Decided(rec pipeline.LoopRecord, moves []placement.Move) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := rec.Report
	w.loops++
	w.moves += len(moves)
	d := w.domain(rec.Domain)
	for k, n := range r.HeldBack {
		w.heldBack[k] += n
	}
	w.forecast.WindowOverloadsBefore += r.WindowOverloadsBefore
	w.forecast.WindowOverloadsAfter += r.WindowOverloadsAfter
	w.allMoves = append(w.allMoves, moves...)
	d.loops++
	d.moves += len(moves)
	for _, m := range moves {
		w.dryRun = w.dryRun || m.DryRun
		w.moved[m.Domain+"\x00"+m.Container] = true
		d.moved[m.Container] = true
		d.churn.AddMove(m.Tick, m.Container, m.OldHost, m.NewHost)
	}
	if rec.Kind == "loop" && d.window == 0 {
		d.window = int(r.WindowEnd - r.WindowStart + 1)
	}
	if d.lastDecision != nil && d.horizon == 0 && rec.Tick > *d.lastDecision {
		d.horizon = int(rec.Tick - *d.lastDecision)
	}
	t := rec.Tick
	d.lastDecision = &t
	w.maxConts = max(w.maxConts, r.Containers)
	w.loopSum += rec.LoopSeconds
	w.loopMax = max(w.loopMax, rec.LoopSeconds)
	i := strconv.Itoa
	w.keep(w.metrics.Write([]string{
		rec.Domain, strconv.FormatInt(rec.Tick, 10), rec.Kind,
		strconv.FormatInt(r.WindowStart, 10), strconv.FormatInt(r.WindowEnd, 10),
		i(r.Containers), i(r.Hosts), i(r.Clusters),
		i(r.ClusterGraph.Nodes), i(r.ClusterGraph.Edges), i(r.ClusterGraph.MaxDegree), fmtFloat(r.ClusterGraph.MeanDeg),
		i(r.PlacementGraph.Nodes), i(r.PlacementGraph.Edges), i(r.PlacementGraph.MaxDegree), fmtFloat(r.PlacementGraph.MeanDeg),
		i(r.ClusterChanges), i(r.Selected), i(r.OverloadSelected), i(len(moves)),
		i(r.WindowOverloadsBefore), i(r.WindowOverloadsAfter), strconv.FormatFloat(rec.LoopSeconds, 'f', 6, 64),
		i(r.HeldBack[placement.LimitPerLoop]), i(r.HeldBack[placement.LimitPerSourceHost]), i(r.HeldBack[placement.LimitPerTargetHost]),
		i(r.HeldBack[placement.LimitPerDomainPerHour]), i(r.HeldBack[placement.LimitMinAge]), i(r.HeldBack[placement.LimitPerContainerPerDay]),
	}))
	w.metrics.Flush()
	w.keep(w.metrics.Error())
}

// Rejected implements pipeline.Observer: the connector writes the record
// itself; the run directory only counts it.
func (w *Writer) Rejected(pipeline.Reject) {
	w.mu.Lock()
	w.rejects++
	w.mu.Unlock()
}

// Progress implements pipeline.Observer; progress is shown elsewhere.
func (w *Writer) Progress(done, total int64) {}

func (w *Writer) keep(err error) {
	if err != nil && w.err == nil {
		w.err = err
	}
}

// RunInfo is what the caller knows about the run that the observer does not.
type RunInfo struct {
	Samples     int64
	Rejects     int64
	Containers  int // distinct containers in the input; 0 = the largest loop's count
	WallSeconds float64
	// Stopped says why the run ended early: "time_limit", "signal", or ""
	// for a run that consumed all its input.
	Stopped string
	// HostConflicts are the (host, domain) pairs where a domain named a
	// host of another domain (pipeline.Result.HostConflicts).
	HostConflicts int64
}

// Close flushes the CSVs and writes summary.json and the plots. It returns
// the summary even when a plot fails, with the error.
func (w *Writer) Close(info RunInfo) (*Summary, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, cw := range w.usage {
		cw.Flush()
		w.keep(cw.Error())
	}
	w.metrics.Flush()
	w.keep(w.metrics.Error())
	if err := w.closeFiles(); err != nil {
		w.keep(err)
	}
	s := w.summary(info)
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return s, err
	}
	if err := os.WriteFile(filepath.Join(w.opts.Dir, SummaryFile), append(b, '\n'), 0o644); err != nil {
		return s, err
	}
	if w.err != nil {
		return s, w.err
	}
	if err := w.writeCapacity(); err != nil {
		return s, err
	}
	return s, errors.Join(w.plots(), w.report(s))
}

func (w *Writer) closeFiles() error {
	var first error
	for _, f := range w.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	w.files = nil
	return first
}

func (w *Writer) summary(info RunInfo) *Summary {
	s := &Summary{
		Trace:           w.opts.Trace,
		ConfigDigest:    w.opts.ConfigDigest,
		Metrics:         slices.Clone(w.opts.Metrics),
		Containers:      info.Containers,
		Hosts:           len(w.hosts),
		Samples:         info.Samples,
		Rejects:         max(info.Rejects, w.rejects),
		Loops:           w.loops,
		Moves:           w.moves,
		ContainersMoved: len(w.moved),
		LoopSecondsMax:  w.loopMax,
		WallSeconds:     info.WallSeconds,
		Stopped:         info.Stopped,
		DryRun:          w.dryRun,
		Forecast:        w.forecast,
		HostConflicts:   info.HostConflicts,
	}
	if len(w.heldBack) > 0 {
		s.HeldBack = maps.Clone(w.heldBack)
	}
	if s.Containers == 0 {
		s.Containers = w.maxConts
	}
	if w.loops > 0 {
		s.LoopSecondsMean = w.loopSum / float64(w.loops)
	}
	var act, base []kpi.Totals
	for _, name := range sortedKeys(w.domains) {
		d := w.domains[name]
		a, b := d.actual.Totals(), d.baseline.Totals()
		act, base = append(act, a), append(base, b)
		ch := d.churn.Totals(d.window, d.horizon)
		s.Churn = addChurn(s.Churn, ch)
		if len(w.domains) > 1 {
			s.Domains = append(s.Domains, DomainSummary{Domain: name, Loops: d.loops, Moves: d.moves, ContainersMoved: len(d.moved),
				Actual: a, Baseline: b, Churn: ch})
		}
	}
	s.Actual, s.Baseline = combine(w.opts.Metrics, act), combine(w.opts.Metrics, base)
	s.Ticks = s.Actual.Ticks
	return s
}

// combine folds per-domain totals into one: counts add up, maxima take
// the max, and means are weighted by ticks (spread) or by hosts used
// (load variance).
func combine(metrics []string, ts []kpi.Totals) kpi.Totals {
	if len(ts) == 1 {
		return ts[0]
	}
	n := len(metrics)
	out := kpi.Totals{
		Metrics: slices.Clone(metrics), OverloadedCells: make([]int, n), Excess: make([]float64, n),
		MeanSpread: make([]float64, n), MaxSpread: make([]float64, n), PeakUtil: make([]float64, n),
		LoadVariance: make([]float64, n), MaxAmplitude: make([]float64, n),
	}
	hosts, ticks := 0, 0
	for _, t := range ts {
		out.Ticks = max(out.Ticks, t.Ticks)
		out.OverloadedCellsAny += t.OverloadedCellsAny
		out.HostsUsed += t.HostsUsed
		out.MeanHostsUsed += t.MeanHostsUsed
		for m := 0; m < n && m < len(t.OverloadedCells); m++ {
			out.OverloadedCells[m] += t.OverloadedCells[m]
			out.Excess[m] += t.Excess[m]
			out.MeanSpread[m] += t.MeanSpread[m] * float64(t.Ticks)
			out.MaxSpread[m] = max(out.MaxSpread[m], t.MaxSpread[m])
			out.PeakUtil[m] = max(out.PeakUtil[m], t.PeakUtil[m])
			out.LoadVariance[m] += t.LoadVariance[m] * float64(t.HostsUsed)
			out.MaxAmplitude[m] = max(out.MaxAmplitude[m], t.MaxAmplitude[m])
		}
		hosts += t.HostsUsed
		ticks += t.Ticks
	}
	for m := range n {
		if ticks > 0 {
			out.MeanSpread[m] /= float64(ticks)
		}
		if hosts > 0 {
			out.LoadVariance[m] /= float64(hosts)
		}
	}
	return out
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', 10, 64) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var _ pipeline.Observer = (*Writer)(nil)

// errorf keeps error messages naming the run directory.
func errorf(dir, format string, a ...any) error {
	return fmt.Errorf("run directory %s: "+format, append([]any{dir}, a...)...)
}

// addChurn sums two domains' churn; the window and horizon are the first
// domain's (one configuration serves every domain).
func addChurn(a, b kpi.Churn) kpi.Churn {
	if a.Window == 0 {
		a.Window, a.Horizon = b.Window, b.Horizon
	}
	a.Moves += b.Moves
	a.ContainersMoved += b.ContainersMoved
	a.ReMoves += b.ReMoves
	a.MovesBack += b.MovesBack
	a.MovesOffCalm += b.MovesOffCalm
	a.MovesIntoOverload += b.MovesIntoOverload
	return a
}

// writeCapacity writes node_capacity.csv: what explain and the report read
// utilisation against.
func (w *Writer) writeCapacity() error {
	f, err := os.Create(filepath.Join(w.opts.Dir, CapacityFile))
	if err != nil {
		return err
	}
	cw := csv.NewWriter(f)
	_ = cw.Write(append([]string{"host"}, w.opts.Metrics...))
	for _, h := range sortedKeys(w.capacity) {
		row := []string{h}
		for m := range w.opts.Metrics {
			v := 0.0
			if m < len(w.capacity[h]) {
				v = w.capacity[h][m]
			}
			row = append(row, fmtFloat(v))
		}
		_ = cw.Write(row)
	}
	cw.Flush()
	return errors.Join(cw.Error(), f.Close())
}
