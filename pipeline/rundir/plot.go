package rundir

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	hcap "hots/placement/capacity"
)

// CapacityColor draws the capacity line, so that tests and readers can
// find it.
var CapacityColor = color.RGBA{R: 220, A: 255}

// series is one scenario's plotted data for one metric.
type series struct {
	lines      map[string]plotter.XYs // named host → (tick, load)
	bandTicks  []float64
	bandLo     []float64
	bandHi     []float64
	others     int
	maxLoad    float64
	minT, maxT float64
}

// plots draws, per metric, host load over time with and without moves on
// the same axes: the busiest hosts by utilisation as lines, the rest as a
// min–max band, and the capacity.
func (w *Writer) plots() error {
	if len(w.opts.Metrics) == 0 {
		return nil
	}
	named := w.namedHosts()
	multi := len(w.domains) > 1
	key := func(domain, host string) string {
		if multi {
			return domain + "/" + host
		}
		return host
	}
	scen := map[string][]*series{}
	for _, s := range []struct{ name, file string }{{scenarioMoves, NodeUsageFile}, {scenarioBaseline, NodeUsageBaseline}} {
		ss, err := readSeries(filepath.Join(w.opts.Dir, s.file), len(w.opts.Metrics), func(d, h string) (string, bool) {
			k := key(d, h)
			return k, named[k]
		})
		if err != nil {
			return err
		}
		scen[s.name] = ss
	}
	if err := os.MkdirAll(w.opts.PlotsDir, 0o755); err != nil {
		return err
	}
	var errs []error
	var index []PlotInfo
	var moveTicks []float64
	for _, mv := range w.allMoves {
		moveTicks = append(moveTicks, float64(mv.Tick))
	}
	for m, metric := range w.opts.Metrics {
		capMax, capSame := 0.0, true
		first := -1.0
		for _, h := range sortedKeys(w.capacity) {
			c := w.capacity[h]
			if m >= len(c) || c[m] <= 0 {
				continue
			}
			capMax = max(capMax, c[m])
			if first >= 0 && c[m] != first {
				capSame = false
			}
			first = c[m]
		}
		ymax := max(capMax, scen[scenarioMoves][m].maxLoad, scen[scenarioBaseline][m].maxLoad) * 1.3 // room for the legend
		for _, name := range []string{scenarioBaseline, scenarioMoves} {
			title := fmt.Sprintf("%s load per host, %s", metric, map[string]string{scenarioBaseline: "as recorded (no moves)", scenarioMoves: "with the run's moves"}[name])
			file := fmt.Sprintf("load_%s_%s.svg", metric, name)
			var marks []float64
			if name == scenarioMoves {
				marks = moveTicks
			}
			series, err := drawLoad(filepath.Join(w.opts.PlotsDir, file), title, metric, scen[name][m], capMax, capSame, ymax, marks)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			index = append(index, PlotInfo{File: file, Title: title, Kind: "load", Metric: metric, Scenario: name, Series: series})
		}
	}
	title := "overloaded (host, tick) cells per tick, any metric"
	series, err := w.drawCells(filepath.Join(w.opts.PlotsDir, CellsPlot), title, moveTicks)
	if err != nil {
		errs = append(errs, err)
	} else {
		index = append(index, PlotInfo{File: CellsPlot, Title: title, Kind: "cells", Series: series})
	}
	b, err := json.MarshalIndent(index, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(w.opts.PlotsDir, PlotIndexFile), append(b, '\n'), 0o644)
	}
	return errors.Join(append(errs, err)...)
}

// CellsPlot is the overloaded cells over time, both scenarios.
const CellsPlot = "overloaded_cells.svg"

// PlotInfo is one entry of plots/plots.json: a plot file, its title and
// the series its legend names, in legend order.
type PlotInfo struct {
	File     string   `json:"file"`
	Title    string   `json:"title"`
	Kind     string   `json:"kind"` // load | cells
	Metric   string   `json:"metric,omitempty"`
	Scenario string   `json:"scenario,omitempty"` // moves | baseline
	Series   []string `json:"series"`
}

// NewPlot is plot.New with plain text everywhere: gonum's default handler
// reads LaTeX, which set host names such as n_12 as n with subscript 12.
func NewPlot() *plot.Plot {
	p := plot.New()
	h := text.Plain{Fonts: font.DefaultCache}
	p.Title.TextStyle.Handler = h
	p.Legend.TextStyle.Handler = h
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Handler = h
		a.Tick.Label.Handler = h
	}
	return p
}

// moveMarks draws one small triangle per move tick on the time axis.
func moveMarks(p *plot.Plot, ticks []float64, y float64) (string, error) {
	if len(ticks) == 0 {
		return "", nil
	}
	pts := make(plotter.XYs, len(ticks))
	for i, t := range ticks {
		pts[i] = plotter.XY{X: t, Y: y}
	}
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return "", err
	}
	sc.GlyphStyle.Shape = draw.TriangleGlyph{}
	sc.GlyphStyle.Color = color.RGBA{B: 160, A: 255}
	sc.GlyphStyle.Radius = vg.Points(3)
	p.Add(sc)
	label := fmt.Sprintf("moves (%d)", len(ticks))
	p.Legend.Add(label, sc)
	return label, nil
}

// drawCells plots, per tick, the hosts over capacity on some metric, with
// and without the run's moves, read back from the node usage files.
func (w *Writer) drawCells(path, title string, marks []float64) ([]string, error) {
	p := NewPlot()
	p.Title.Text = title
	p.X.Label.Text = "tick"
	p.Y.Label.Text = "overloaded hosts"
	p.Legend.Top = true
	var series []string
	ymax := 1.0
	for i, s := range []struct{ name, file, label string }{{scenarioBaseline, NodeUsageBaseline, "no moves"}, {scenarioMoves, NodeUsageFile, "with moves"}} {
		cells, err := CellsPerTick(filepath.Join(w.opts.Dir, s.file), len(w.opts.Metrics), w.capacity)
		if err != nil {
			return nil, err
		}
		pts := make(plotter.XYs, len(cells))
		for k, c := range cells {
			pts[k] = plotter.XY{X: float64(c[0]), Y: float64(c[1])}
			ymax = max(ymax, float64(c[1]))
		}
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i)
		l.Width = vg.Points(1.4)
		p.Add(l)
		p.Legend.Add(s.label, l)
		series = append(series, s.label)
	}
	p.Y.Min, p.Y.Max = 0, ymax*1.3
	if label, err := moveMarks(p, marks, 0); err != nil {
		return nil, err
	} else if label != "" {
		series = append(series, label)
	}
	p.Add(plotter.NewGrid())
	return series, p.Save(9*vg.Inch, 3.5*vg.Inch, path)
}

// CellsPerTick reads a node usage CSV and counts, per tick (ascending),
// the (domain, host) rows over capacity on at least one metric, as the
// KPIs count them (capacity.CellOverloaded).
func CellsPerTick(path string, metrics int, capacity map[string][]float64) ([][2]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	if _, err := r.Read(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	per := map[int64]int64{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		tick, err := strconv.ParseInt(rec[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: tick %q: %w", path, rec[1], err)
		}
		if _, ok := per[tick]; !ok {
			per[tick] = 0
		}
		cp := capacity[rec[2]]
		for m := 0; m < metrics && 3+m < len(rec) && m < len(cp); m++ {
			v, err := strconv.ParseFloat(rec[3+m], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: load %q: %w", path, rec[3+m], err)
			}
			if cp[m] > 0 && !math.IsInf(cp[m], 0) && hcap.CellOverloaded(v, cp[m]) {
				per[tick]++
				break
			}
		}
	}
	out := make([][2]int64, 0, len(per))
	for t, n := range per {
		out = append(out, [2]int64{t, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out, nil
}

// namedHosts picks the hosts plotted as lines: the PlotHosts busiest by
// summed utilisation over both scenarios, ties by name.
func (w *Writer) namedHosts() map[string]bool {
	type hu struct {
		key  string
		util float64
	}
	var all []hu
	for _, d := range sortedKeys(w.domains) {
		for h, u := range w.domains[d].utilSum {
			k := h
			if len(w.domains) > 1 {
				k = d + "/" + h
			}
			all = append(all, hu{k, u})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].util != all[j].util {
			return all[i].util > all[j].util
		}
		return all[i].key < all[j].key
	})
	out := map[string]bool{}
	for i := 0; i < len(all) && i < w.opts.PlotHosts; i++ {
		out[all[i].key] = true
	}
	return out
}

// readSeries reads a node usage CSV back: lines for the named hosts and,
// per tick, the min and max over the others.
func readSeries(path string, metrics int, name func(domain, host string) (string, bool)) ([]*series, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	if _, err := r.Read(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := make([]*series, metrics)
	type band struct{ lo, hi float64 }
	bands := make([]map[float64]*band, metrics)
	others := map[string]bool{}
	for m := range out {
		out[m] = &series{lines: map[string]plotter.XYs{}, minT: math.Inf(1), maxT: math.Inf(-1)}
		bands[m] = map[float64]*band{}
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		tick, err := strconv.ParseFloat(rec[1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: tick %q: %w", path, rec[1], err)
		}
		key, named := name(rec[0], rec[2])
		if !named {
			others[key] = true
		}
		for m := 0; m < metrics && 3+m < len(rec); m++ {
			v, err := strconv.ParseFloat(rec[3+m], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: load %q: %w", path, rec[3+m], err)
			}
			s := out[m]
			s.maxLoad = max(s.maxLoad, v)
			s.minT, s.maxT = min(s.minT, tick), max(s.maxT, tick)
			if named {
				s.lines[key] = append(s.lines[key], plotter.XY{X: tick, Y: v})
				continue
			}
			b := bands[m][tick]
			if b == nil {
				bands[m][tick] = &band{v, v}
			} else {
				b.lo, b.hi = min(b.lo, v), max(b.hi, v)
			}
		}
	}
	for m, s := range out {
		s.others = len(others)
		ticks := make([]float64, 0, len(bands[m]))
		for t := range bands[m] {
			ticks = append(ticks, t)
		}
		sort.Float64s(ticks)
		for _, t := range ticks {
			s.bandTicks = append(s.bandTicks, t)
			s.bandLo = append(s.bandLo, bands[m][t].lo)
			s.bandHi = append(s.bandHi, bands[m][t].hi)
		}
	}
	return out, nil
}

// drawLoad writes one load plot and returns its legend's series.
func drawLoad(path, title, metric string, s *series, capMax float64, capSame bool, ymax float64, marks []float64) ([]string, error) {
	var legend []string
	p := NewPlot()
	p.Title.Text = title
	p.X.Label.Text = "tick"
	p.Y.Label.Text = metric
	p.Y.Min, p.Y.Max = 0, ymax
	if ymax <= 0 {
		p.Y.Max = 1
	}
	p.Legend.Top = true
	if len(s.bandTicks) > 0 {
		pts := make(plotter.XYs, 0, 2*len(s.bandTicks))
		for i, t := range s.bandTicks {
			pts = append(pts, plotter.XY{X: t, Y: s.bandHi[i]})
		}
		for i := len(s.bandTicks) - 1; i >= 0; i-- {
			pts = append(pts, plotter.XY{X: s.bandTicks[i], Y: s.bandLo[i]})
		}
		poly, err := plotter.NewPolygon(pts)
		if err != nil {
			return nil, err
		}
		poly.Color = color.Gray{Y: 215}
		poly.LineStyle.Width = 0
		p.Add(poly)
		label := fmt.Sprintf("other %d hosts (min–max)", s.others)
		p.Legend.Add(label, poly)
		legend = append(legend, label)
	}
	names := sortedKeys(s.lines)
	for i, h := range names {
		l, err := plotter.NewLine(s.lines[h])
		if err != nil {
			return nil, err
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(h, l)
		legend = append(legend, h)
	}
	if capMax > 0 && s.maxT >= s.minT {
		c, err := plotter.NewLine(plotter.XYs{{X: s.minT, Y: capMax}, {X: s.maxT, Y: capMax}})
		if err != nil {
			return nil, err
		}
		c.Color = CapacityColor
		c.Width = vg.Points(1.5)
		c.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		p.Add(c)
		label := "capacity"
		if !capSame {
			label = "capacity (largest host)"
		}
		p.Legend.Add(label, c)
		legend = append(legend, label)
	}
	if label, err := moveMarks(p, marks, 0); err != nil {
		return nil, err
	} else if label != "" {
		legend = append(legend, label)
	}
	p.Legend.ThumbnailWidth = vg.Points(20)
	p.Add(plotter.NewGrid())
	return legend, p.Save(9*vg.Inch, 4.5*vg.Inch, path)
}
