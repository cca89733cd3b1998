package rundir

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"hots/codecs"
	"hots/placement"
	"hots/placement/kpi"
)

// report.html is one self-contained file: no script, style or font from
// the network; the charts are the run's SVG plots inlined, and the moves
// table sorts with a few lines of inline script.

//go:embed report.html.tmpl
var reportTemplate string

var pageTmpl = template.Must(template.New("report").Parse(reportTemplate))

// MaxReportMoves bounds the moves table (the moves log has them all).
const MaxReportMoves = 5000

// Page is what report.html shows; a run fills it with two columns (no
// moves, with moves), hots compare with one column per policy.
type Page struct {
	Title    string
	Subtitle string
	DryRun   string // the dry-run banner, empty when the moves were applied
	Facts    []Fact
	Columns  []string // KPI table columns
	Rows     []Row
	HeldBack []Fact
	Churn    []Row // churn table, same columns as Rows (or one: the run's)
	ChurnCol []string
	Charts   []Chart
	Moves    []placement.Move
	// MovesTotal is every move, MovesShown those in the table.
	MovesTotal, MovesShown int
	Notes                  []string
}

// Fact is one labelled value; Key is its path in summary.json (data-key).
type Fact struct{ Label, Key, Value string }

// Row is one KPI across the columns.
type Row struct {
	Label string
	Cells []Fact // Key and Value per column
}

// Chart is one inlined SVG plot and the series its legend names.
type Chart struct {
	ID, Title string
	Series    []string
	SVG       template.HTML
}

// WritePage renders a page to path.
func WritePage(path string, p *Page) error {
	var b bytes.Buffer
	if err := pageTmpl.Execute(&b, p); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func (w *Writer) report(s *Summary) error {
	return WriteReport(w.opts.Dir, w.opts.PlotsDir, s, w.allMoves)
}

// WriteReport writes <dir>/report.html from the summary, the plots in
// plotsDir ("" = <dir>/plots, as plots.json lists them) and the moves.
func WriteReport(dir, plotsDir string, s *Summary, moves []placement.Move) error {
	if plotsDir == "" {
		plotsDir = filepath.Join(dir, PlotsDir)
	}
	p := RunPage(s, moves)
	charts, err := LoadCharts(plotsDir)
	p.Charts = charts
	if err != nil {
		p.Notes = append(p.Notes, "plots: "+err.Error())
	}
	return errors.Join(err, WritePage(filepath.Join(dir, ReportFile), p))
}

// RunPage lays a run's summary out: facts, the KPIs next to the baseline,
// churn, held-back counts and the moves.
func RunPage(s *Summary, moves []placement.Move) *Page {
	p := &Page{Title: "hots run: " + s.Trace, Subtitle: fmt.Sprintf("config %s", s.ConfigDigest), Columns: []string{"no moves", "with moves"}}
	if s.DryRun {
		p.DryRun = fmt.Sprintf("Dry run: %d moves were published marked dry_run and none applied, so \"with moves\" equals \"no moves\". The engine forecast they would have cut the overloaded cells of their windows from %d to %d.",
			s.Moves, s.Forecast.WindowOverloadsBefore, s.Forecast.WindowOverloadsAfter)
	}
	i := strconv.Itoa
	p.Facts = []Fact{
		{"trace", "trace", s.Trace},
		{"containers", "containers", i(s.Containers)},
		{"hosts", "hosts", i(s.Hosts)},
		{"ticks", "ticks", i(s.Ticks)},
		{"samples", "samples", strconv.FormatInt(s.Samples, 10)},
		{"rejected", "rejects", strconv.FormatInt(s.Rejects, 10)},
		{"loops", "loops", i(s.Loops)},
		{"moves", "moves", i(s.Moves)},
		{"containers moved", "containers_moved", i(s.ContainersMoved)},
		{"forecast window overloads before the loops' moves", "forecast.window_overloads_before", i(s.Forecast.WindowOverloadsBefore)},
		{"forecast window overloads after the loops' moves", "forecast.window_overloads_after", i(s.Forecast.WindowOverloadsAfter)},
	}
	p.Rows = KPIRows(s.Metrics, []string{"baseline", "actual"}, []kpi.Totals{s.Baseline, s.Actual})
	p.ChurnCol = []string{"this run"}
	p.Churn = ChurnRows([]string{"churn"}, []kpi.Churn{s.Churn})
	for _, l := range placement.Limits {
		if n := s.HeldBack[l]; n > 0 {
			p.HeldBack = append(p.HeldBack, Fact{fmt.Sprintf("moves held back by %s", l), "held_back." + l, i(n)})
		}
	}
	p.setMoves(moves)
	return p
}

func (p *Page) setMoves(moves []placement.Move) {
	p.MovesTotal = len(moves)
	p.Moves = moves[:min(len(moves), MaxReportMoves)]
	p.MovesShown = len(p.Moves)
}

// KPIRows lays out the totals of each column; prefixes are the columns'
// paths in the summary (data-key = prefix.field[.metric index]).
func KPIRows(metrics []string, prefixes []string, ts []kpi.Totals) []Row {
	var rows []Row
	f3 := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	add := func(label, field string, val func(t kpi.Totals) (string, bool)) {
		r := Row{Label: label}
		for c, t := range ts {
			v, ok := val(t)
			if !ok {
				v = "-"
			}
			r.Cells = append(r.Cells, Fact{Key: prefixes[c] + "." + field, Value: v})
		}
		rows = append(rows, r)
	}
	add("overloaded cells (any metric)", "overloaded_cells_any", func(t kpi.Totals) (string, bool) { return strconv.Itoa(t.OverloadedCellsAny), true })
	perMetric := func(label, field string, get func(t kpi.Totals) []float64) {
		for m, name := range metrics {
			add(label+" "+name, field+"."+strconv.Itoa(m), func(t kpi.Totals) (string, bool) {
				v := get(t)
				if m >= len(v) {
					return "", false
				}
				return f3(v[m]), true
			})
		}
	}
	for m, name := range metrics {
		add("overloaded cells "+name, "overloaded_cells."+strconv.Itoa(m), func(t kpi.Totals) (string, bool) {
			if m >= len(t.OverloadedCells) {
				return "", false
			}
			return strconv.Itoa(t.OverloadedCells[m]), true
		})
	}
	perMetric("excess", "excess", func(t kpi.Totals) []float64 { return t.Excess })
	perMetric("peak utilisation", "peak_util", func(t kpi.Totals) []float64 { return t.PeakUtil })
	perMetric("mean spread", "mean_spread", func(t kpi.Totals) []float64 { return t.MeanSpread })
	perMetric("load variance", "load_variance", func(t kpi.Totals) []float64 { return t.LoadVariance })
	add("hosts used", "hosts_used", func(t kpi.Totals) (string, bool) { return strconv.Itoa(t.HostsUsed), true })
	return rows
}

// ChurnRows lays out churn figures, one column per prefix.
func ChurnRows(prefixes []string, cs []kpi.Churn) []Row {
	var rows []Row
	add := func(label, field string, get func(c kpi.Churn) int) {
		r := Row{Label: label}
		for k, c := range cs {
			r.Cells = append(r.Cells, Fact{Key: prefixes[k] + "." + field, Value: strconv.Itoa(get(c))})
		}
		rows = append(rows, r)
	}
	add("moves", "moves", func(c kpi.Churn) int { return c.Moves })
	add("containers moved", "containers_moved", func(c kpi.Churn) int { return c.ContainersMoved })
	add("re-moves (container moved again)", "re_moves", func(c kpi.Churn) int { return c.ReMoves })
	add("moves back to the host left", "moves_back", func(c kpi.Churn) int { return c.MovesBack })
	add("moves off calm hosts", "moves_off_calm_hosts", func(c kpi.Churn) int { return c.MovesOffCalm })
	add("moves into overload", "moves_into_overload", func(c kpi.Churn) int { return c.MovesIntoOverload })
	return rows
}

// LoadCharts inlines the plots plots.json lists.
func LoadCharts(plotsDir string) ([]Chart, error) {
	b, err := os.ReadFile(filepath.Join(plotsDir, PlotIndexFile))
	if err != nil {
		return nil, err
	}
	var index []PlotInfo
	if err := json.Unmarshal(b, &index); err != nil {
		return nil, fmt.Errorf("%s: %w", PlotIndexFile, err)
	}
	var out []Chart
	var errs []error
	for _, pi := range index {
		svg, err := InlineSVG(filepath.Join(plotsDir, pi.File))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, Chart{ID: pi.File[:len(pi.File)-len(filepath.Ext(pi.File))], Title: pi.Title, Series: pi.Series, SVG: svg})
	}
	return out, errors.Join(errs...)
}

// InlineSVG reads an SVG file for inclusion in HTML: from its <svg> tag
// on (no XML prolog).
func InlineSVG(path string) (template.HTML, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	i := bytes.Index(b, []byte("<svg"))
	if i < 0 {
		return "", fmt.Errorf("%s: no <svg> element", path)
	}
	return template.HTML(b[i:]), nil
}

// ReadMoves reads a moves log (JSON lines).
func ReadMoves(path string) ([]placement.Move, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []placement.Move
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	line := 0
	for sc.Scan() {
		line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		m, err := codecs.DecodeMove(sc.Bytes())
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// SummaryValue looks a data-key up in a decoded summary.json: dotted
// fields, numbers index arrays (actual.overloaded_cells.0).
func SummaryValue(sum map[string]any, key string) (any, bool) {
	var cur any = sum
	for _, part := range strings.Split(key, ".") {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[part]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// SameValue says whether a value shown on the page is the summary's: the
// same string, or the same number to the page's three decimals.
func SameValue(shown string, v any) bool {
	switch x := v.(type) {
	case string:
		return shown == x
	case float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(shown), 64)
		return err == nil && math.Abs(f-x) <= 5e-4+1e-9*math.Abs(x)
	}
	return false
}
