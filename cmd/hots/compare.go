package main

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"hots/codecs"
	"hots/config"
	"hots/connectors"
	fileconn "hots/connectors/file"
	"hots/pipeline"
	"hots/pipeline/rundir"
	"hots/placement"
	"hots/placement/kpi"
	"hots/placement/policy"
)

// Files of a compare run directory.
const (
	CompareTable = "compare.txt"
	CompareJSON  = "compare.json"
	CompareCSV   = "compare.csv"
	ComparePlot  = "overloaded_cells.svg"
)

func init() {
	register(command{"compare", "replay one trace with hots and the baseline policies and compare them", cmdCompare})
}

// PolicyResult is one policy's row of the comparison.
type PolicyResult struct {
	Policy string     `json:"policy"`
	Totals kpi.Totals `json:"totals"`
	Churn  kpi.Churn  `json:"churn"`
	Loops  int        `json:"loops"`
	// LoopSecondsMean and LoopSecondsMax time the engine's loop calls.
	LoopSecondsMean float64 `json:"loop_seconds_mean"`
	LoopSecondsMax  float64 `json:"loop_seconds_max"`
	// CellsPerTick is the overloaded (host, tick) cell count of each
	// counted tick, on any metric: the plotted series.
	CellsPerTick []TickCount `json:"cells_per_tick"`
}

// TickCount is a count at one tick.
type TickCount struct {
	Tick  int64 `json:"tick"`
	Cells int   `json:"cells"`
}

// Comparison is compare.json.
type Comparison struct {
	Trace      string         `json:"trace"`
	Config     string         `json:"config_digest"`
	Metrics    []string       `json:"metrics"`
	Containers int            `json:"containers"`
	Hosts      int            `json:"hosts"`
	Rejected   int            `json:"rejected_rows"`
	CountFrom  *int64         `json:"count_from,omitempty"`
	Policies   []PolicyResult `json:"policies"`
}

func cmdCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("compare", stderr)
	file, strict := loadFlags(fs)
	names := fs.StringSlice("policies", policy.Names, "policies to replay, comma-separated ("+strings.Join(policy.Names, ", ")+")")
	from := fs.String("from", "", "count overloaded cells and KPIs from this tick on (default: every tick)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, err := trimArgs(fs, 0, "no arguments (see --help)"); err != nil {
		return err
	}
	var countFrom *int64
	if *from != "" {
		t, err := strconv.ParseInt(*from, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: --from %q: not a tick", errUsage, *from)
		}
		countFrom = &t
	}
	l, err := loadConfig(fs, *file, *strict)
	for _, w := range l.rep.Warnings() {
		fmt.Fprintln(stderr, "hots: config:", w)
	}
	if err != nil {
		return err
	}
	cfg := &l.cfg
	// compare replays a trace folder: the file connector's parameters say
	// where it is, whatever connector.type the configuration names.
	dec, err := connectors.Decode(fileconn.Name, pipeline.RawConnector(*cfg))
	if err != nil {
		return err
	}
	fa := dec.Args.(*fileconn.Args)
	if fa.DataFolder == "" {
		return fmt.Errorf("%w: compare needs a trace: set connector.parameters.data_folder (--data)", errUsage)
	}
	for _, n := range *names {
		if !slices.Contains(policy.Names, n) {
			return fmt.Errorf("%w: --policies: %q is not one of %s", errUsage, n, strings.Join(policy.Names, ", "))
		}
	}
	trace := filepath.Base(filepath.Clean(fa.DataFolder))
	dir, err := runDir(cfg.Reporting.ResultsFolder, "compare-"+trace, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, "hots: run directory", dir)
	tr, err := readCompareTrace(*cfg, *fa)
	if err != nil {
		return err
	}
	cmpn := Comparison{Trace: trace, Config: cfg.Digest(), Metrics: tr.fields.Metrics, Hosts: len(tr.hosts),
		Containers: tr.containers, Rejected: tr.rejected, CountFrom: countFrom}
	for _, n := range *names {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := pipeline.EngineParams(*cfg)
		p.Metrics = tr.fields.Metrics
		p.Policy.Name = n
		res, moves, err := replayPolicy(p, tr, countFrom)
		if err != nil {
			return fmt.Errorf("policy %s: %w", n, err)
		}
		if err := writeMoves(filepath.Join(dir, "moves-"+n+".jsonl"), moves); err != nil {
			return err
		}
		cmpn.Policies = append(cmpn.Policies, *res)
	}
	return writeComparison(dir, &cmpn, stdout)
}

// compareTrace is a whole trace in memory, read once for every policy.
type compareTrace struct {
	fields     codecs.UsageFields
	hosts      []placement.Host
	domainOf   map[string]string // host -> its domain (handlers.Placer's rule)
	capacity   map[string][]float64
	domains    []string
	ticks      map[string][]placement.TickBatch // per domain, in tick order
	containers int
	rejected   int
}

// readCompareTrace reads node_meta and the usage CSV with the codecs the file
// connector uses. Rows the codecs refuse are counted and left out, as a
// replay would set them aside.
func readCompareTrace(cfg config.Config, fa fileconn.Args) (*compareTrace, error) {
	fields := pipeline.UsageFields(cfg)
	metaPath := filepath.Join(fa.DataFolder, fa.NodeMetaFile)
	mf, err := os.Open(metaPath)
	if err != nil {
		return nil, err
	}
	meta, err := codecs.ReadNodeMetaFields(mf, metaPath, fields)
	mf.Close()
	if err != nil {
		return nil, err
	}
	tr := &compareTrace{fields: fields, hosts: meta.Hosts, capacity: map[string][]float64{}, ticks: map[string][]placement.TickBatch{},
		domainOf: map[string]string{}}
	for h, d := range meta.Domains {
		tr.domainOf[h] = d.Domain
	}
	for _, h := range meta.Hosts {
		tr.capacity[h.Name] = h.Capacity
	}
	usagePath := filepath.Join(fa.DataFolder, fa.FileName)
	uf, err := os.Open(usagePath)
	if err != nil {
		return nil, err
	}
	defer uf.Close()
	r := csv.NewReader(uf)
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", usagePath, err)
	}
	h, err := codecs.NewUsageHeader(usagePath, slices.Clone(head), fields)
	if err != nil {
		return nil, err
	}
	byTick := map[string]map[int64][]placement.Sample{}
	containers := map[string]bool{}
	for line := int64(2); ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				tr.rejected++
				continue
			}
			return nil, err
		}
		s, err := h.Sample(rec, line, make([]float64, len(fields.Metrics)))
		if err != nil {
			tr.rejected++
			continue
		}
		s.Container, s.Host = strings.Clone(s.Container), strings.Clone(s.Host)
		if byTick[s.Domain] == nil {
			byTick[s.Domain] = map[int64][]placement.Sample{}
			tr.domains = append(tr.domains, s.Domain)
		}
		byTick[s.Domain][s.Tick] = append(byTick[s.Domain][s.Tick], s)
		if _, ok := tr.domainOf[s.Host]; !ok {
			tr.domainOf[s.Host] = s.Domain // an undeclared host joins the first domain naming it
		}
		containers[s.Domain+"\x00"+s.Container] = true
	}
	slices.Sort(tr.domains)
	for d, m := range byTick {
		ticks := make([]int64, 0, len(m))
		for t := range m {
			ticks = append(ticks, t)
		}
		slices.Sort(ticks)
		for _, t := range ticks {
			tr.ticks[d] = append(tr.ticks[d], placement.TickBatch{Domain: d, Tick: t, Samples: m[t]})
		}
	}
	tr.containers = len(containers)
	return tr, nil
}

// hostsOf is a domain's hosts, in node_meta order: declared in it, else
// first named by its samples, else (for the default domain) undeclared
// and named by no sample. A move never leaves its domain.
func (tr *compareTrace) hostsOf(domain string) []placement.Host {
	var out []placement.Host
	for _, h := range tr.hosts {
		d, ok := tr.domainOf[h.Name]
		if d == domain || (!ok && domain == tr.fields.DefaultDomain) {
			out = append(out, h)
		}
	}
	return out
}

// replayPolicy replays every domain of tr with p and folds the KPIs of the
// counted ticks.
func replayPolicy(p placement.Params, tr *compareTrace, from *int64) (*PolicyResult, []placement.Move, error) {
	acc := kpi.New(p.Metrics, tr.capacity)
	churn := kpi.NewChurn(tr.capacity)
	res := &PolicyResult{Policy: p.Policy.Name}
	var moves []placement.Move
	var loopTotal float64
	// Domains are independent; their ticks are folded in tick order so the
	// totals are one cluster-wide view.
	loads := map[int64]map[string][]float64{}
	for _, d := range tr.domains {
		rp, err := placement.NewReplayer(d, p, tr.hostsOf(d))
		if err != nil {
			return nil, nil, err
		}
		for _, tb := range tr.ticks[d] {
			start := time.Now()
			eff, dec, err := rp.Step(tb)
			el := time.Since(start).Seconds()
			if err != nil {
				return nil, nil, err
			}
			l := loads[tb.Tick]
			if l == nil {
				l = map[string][]float64{}
				loads[tb.Tick] = l
			}
			for _, s := range eff.Samples {
				v := l[s.Host]
				if v == nil {
					v = make([]float64, len(s.Values))
					l[s.Host] = v
				}
				for m, x := range s.Values {
					v[m] += x
				}
			}
			if dec == nil {
				continue
			}
			if dec.Kind == "loop" {
				res.Loops++
				loopTotal += el
				res.LoopSecondsMax = max(res.LoopSecondsMax, el)
			}
			moves = append(moves, dec.Moves...)
		}
	}
	ticks := make([]int64, 0, len(loads))
	for t := range loads {
		ticks = append(ticks, t)
	}
	slices.Sort(ticks)
	slices.SortStableFunc(moves, func(a, b placement.Move) int { return cmp.Compare(a.Tick, b.Tick) })
	mi := 0
	for _, t := range ticks {
		churn.AddTick(t, loads[t])
		for ; mi < len(moves) && moves[mi].Tick == t; mi++ {
			m := moves[mi]
			churn.AddMove(t, m.Domain+"/"+m.Container, m.OldHost, m.NewHost)
		}
		if from != nil && t < *from {
			continue
		}
		before := acc.Totals().OverloadedCellsAny
		acc.AddTick(t, loads[t])
		res.CellsPerTick = append(res.CellsPerTick, TickCount{Tick: t, Cells: acc.Totals().OverloadedCellsAny - before})
	}
	res.Totals = acc.Totals()
	res.Churn = churn.Totals(p.WindowDuration, p.TickIncrement)
	if res.Loops > 0 {
		res.LoopSecondsMean = loopTotal / float64(res.Loops)
	}
	return res, moves, nil
}

func writeMoves(path string, moves []placement.Move) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	for _, m := range moves {
		b, err := codecs.EncodeMove(m)
		if err != nil {
			f.Close()
			return err
		}
		if _, err := f.Write(append(b, '\n')); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// compareColumns are the table's columns, shared by the text table and
// the CSV so that they cannot disagree.
func compareColumns(metrics []string) ([]string, func(PolicyResult) []string) {
	per := func(v []float64, f string) string {
		out := make([]string, len(v))
		for i, x := range v {
			out[i] = strconv.FormatFloat(x, 'f', -1, 64)
			if f != "" {
				out[i] = fmt.Sprintf(f, x)
			}
		}
		return strings.Join(out, "/")
	}
	ints := func(v []int) string {
		out := make([]string, len(v))
		for i, x := range v {
			out[i] = strconv.Itoa(x)
		}
		return strings.Join(out, "/")
	}
	m := strings.Join(metrics, "/")
	head := []string{"policy", "overloaded cells", "cells " + m, "excess " + m, "spread " + m, "peak util " + m, "load variance " + m,
		"moves", "containers moved", "re-moves", "moves back", "moves off calm hosts", "moves into overload",
		"hosts used", "loop ms mean", "loop ms max"}
	row := func(r PolicyResult) []string {
		t, c := r.Totals, r.Churn
		return []string{r.Policy, strconv.Itoa(t.OverloadedCellsAny), ints(t.OverloadedCells), per(t.Excess, "%.1f"),
			per(t.MeanSpread, "%.3f"), per(t.PeakUtil, "%.3f"), per(t.LoadVariance, "%.3f"),
			strconv.Itoa(c.Moves), strconv.Itoa(c.ContainersMoved), strconv.Itoa(c.ReMoves), strconv.Itoa(c.MovesBack),
			strconv.Itoa(c.MovesOffCalm), strconv.Itoa(c.MovesIntoOverload), strconv.Itoa(t.HostsUsed),
			fmt.Sprintf("%.1f", 1000*r.LoopSecondsMean), fmt.Sprintf("%.1f", 1000*r.LoopSecondsMax)}
	}
	return head, row
}

func writeComparison(dir string, c *Comparison, stdout io.Writer) error {
	head, row := compareColumns(c.Metrics)
	var txt strings.Builder
	fmt.Fprintf(&txt, "trace %s: %d containers, %d hosts", c.Trace, c.Containers, c.Hosts)
	if c.CountFrom != nil {
		fmt.Fprintf(&txt, ", KPIs counted from tick %d", *c.CountFrom)
	}
	if c.Rejected > 0 {
		fmt.Fprintf(&txt, ", %d rows rejected", c.Rejected)
	}
	txt.WriteString("\n")
	tw := tabwriter.NewWriter(&txt, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, r := range c.Policies {
		fmt.Fprintln(tw, strings.Join(row(r), "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, CompareTable), []byte(txt.String()), 0o644); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, CompareJSON), append(b, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, CompareCSV))
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write(head)
	for _, r := range c.Policies {
		_ = w.Write(row(r))
	}
	w.Flush()
	if err := errors.Join(w.Error(), f.Close()); err != nil {
		return err
	}
	if err := plotCells(filepath.Join(dir, ComparePlot), c); err != nil {
		return err
	}
	if err := comparePage(dir, c); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%srun directory: %s\n", txt.String(), dir)
	return err
}

// plotCells draws the overloaded cells per tick, one line per policy.
func plotCells(path string, c *Comparison) error {
	p := rundir.NewPlot()
	p.Title.Text = "overloaded (host, tick) cells: " + c.Trace
	p.X.Label.Text = "tick"
	p.Y.Label.Text = "overloaded hosts"
	p.Legend.Top = true
	p.Y.Min = 0
	for i, r := range c.Policies {
		pts := make(plotter.XYs, len(r.CellsPerTick))
		for k, tc := range r.CellsPerTick {
			pts[k] = plotter.XY{X: float64(tc.Tick), Y: float64(tc.Cells)}
		}
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.2)
		l.Dashes = plotutil.Dashes(i)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (%d cells, %d moves)", r.Policy, r.Totals.OverloadedCellsAny, r.Churn.Moves), l)
	}
	p.Add(plotter.NewGrid())
	return p.Save(9*vg.Inch, 4.5*vg.Inch, path)
}

// comparePage is report.html for a comparison: the run page's layout with
// one column per policy (data-key paths are compare.json's).
func comparePage(dir string, c *Comparison) error {
	p := &rundir.Page{Title: "hots compare: " + c.Trace, Subtitle: "config " + c.Config}
	p.Facts = []rundir.Fact{{Label: "trace", Key: "trace", Value: c.Trace},
		{Label: "containers", Key: "containers", Value: strconv.Itoa(c.Containers)},
		{Label: "hosts", Key: "hosts", Value: strconv.Itoa(c.Hosts)}}
	var prefixes []string
	var totals []kpi.Totals
	var churn []kpi.Churn
	for i, r := range c.Policies {
		p.Columns = append(p.Columns, r.Policy)
		prefixes = append(prefixes, fmt.Sprintf("policies.%d.totals", i))
		totals = append(totals, r.Totals)
		churn = append(churn, r.Churn)
	}
	p.Rows = rundir.KPIRows(c.Metrics, prefixes, totals)
	p.ChurnCol = p.Columns
	for i := range prefixes {
		prefixes[i] = fmt.Sprintf("policies.%d.churn", i)
	}
	p.Churn = rundir.ChurnRows(prefixes, churn)
	svg, err := rundir.InlineSVG(filepath.Join(dir, ComparePlot))
	if err != nil {
		return err
	}
	var series []string
	for _, r := range c.Policies {
		series = append(series, fmt.Sprintf("%s (%d cells, %d moves)", r.Policy, r.Totals.OverloadedCellsAny, r.Churn.Moves))
	}
	p.Charts = []rundir.Chart{{ID: "overloaded_cells", Title: "overloaded cells per tick, one line per policy", Series: series, SVG: svg}}
	p.Notes = []string{"Each policy's moves, with their why, are in moves-<policy>.jsonl beside this page."}
	return rundir.WritePage(filepath.Join(dir, rundir.ReportFile), p)
}
