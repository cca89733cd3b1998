package prometheus

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"hots/codecs"
)

// rowKey is one container on one host in one domain: the series of every
// metric query with these labels make one usage row per tick.
type rowKey struct {
	domain, container, host string
}

type seriesKey struct {
	row    rowKey
	metric int
}

type lastSample struct {
	tick int64
	v    float64
}

// cell is one row of one tick being assembled from the metric queries.
type cell struct {
	vals   []float64
	have   []bool
	filled bool // some value is a gap fill, not a sample
}

// reader turns range queries into ticks: tick = (timestamp − start) / step.
// It keeps the ticks not yet emitted (at most max_gap + one chunk) and the
// last sample of every series (for gap fills).
type reader struct {
	c        *client
	metrics  []string
	queries  []string
	fields   codecs.UsageFields
	header   []string
	contL    string
	hostL    string
	domL     string
	start    time.Time
	step     time.Duration
	maxGap   int64
	chunk    int64 // steps per range query (halved on "too many samples")
	source   string
	reject   func(*codecs.RowError) // the connector's own rejects
	progress func(done, total int64)

	buf      map[int64]map[rowKey]*cell
	last     map[seriesKey]lastSample
	next     int64 // first tick not emitted
	line     int64 // rows emitted so far (a row's "line")
	rejected map[string]bool

	mu           sync.Mutex
	hostsKnown   map[string]bool
	unknownHosts []string
	nRows        atomic.Int64
	nRejected    atomic.Int64
	nTicks       atomic.Int64
	nSamples     atomic.Int64 // samples read from Prometheus
}

func (r *reader) tickOf(ts model.Time) (int64, bool) {
	d := ts.Time().Sub(r.start)
	if d < 0 || d%r.step != 0 {
		return 0, false
	}
	return int64(d / r.step), true
}

func (r *reader) timeOf(tick int64) time.Time { return r.start.Add(time.Duration(tick) * r.step) }

// rejectOnce sets aside a series once per run (it would repeat every chunk).
func (r *reader) rejectOnce(id string, e *codecs.RowError) {
	if r.rejected[id] {
		return
	}
	r.rejected[id] = true
	r.nRejected.Add(1)
	r.nRows.Add(1)
	r.reject(e)
}

// fetch reads ticks [from, to] of every metric into the buffer, in chunks
// under the server's points limit.
func (r *reader) fetch(ctx context.Context, from, to int64) error {
	for a := from; a <= to; {
		b := min(a+r.chunk-1, to)
		var mats []model.Matrix
		for m, q := range r.queries {
			mat, err := r.c.rangeQuery(ctx, "usage query ("+r.metrics[m]+")", q, v1.Range{Start: r.timeOf(a), End: r.timeOf(b), Step: r.step})
			if err != nil && tooManySamples(err) && r.chunk > 1 {
				r.chunk = max(1, r.chunk/2)
				r.c.log.Warn("prometheus refused the query for loading too many samples: smaller chunks", "query", q, "steps_per_query", r.chunk)
				mats = nil
				break
			}
			if err != nil {
				return err
			}
			mats = append(mats, mat)
		}
		if len(mats) < len(r.queries) {
			continue // retry the chunk, smaller
		}
		for m, mat := range mats {
			r.add(m, mat)
		}
		a = b + 1
	}
	return nil
}

func (r *reader) add(m int, mat model.Matrix) {
	for _, ss := range mat {
		host := string(ss.Metric[model.LabelName(r.hostL)])
		if host == "" {
			id := strconv.Itoa(m) + ss.Metric.String()
			r.rejectOnce(id, &codecs.RowError{Position: codecs.Position{Source: r.source + " usage query (" + r.metrics[m] + ")"},
				Field: r.hostL, Raw: ss.Metric.String(),
				Reason: fmt.Sprintf("series has no %q label (connector.parameters.host_label): its container cannot be placed; query %q", r.hostL, r.queries[m])})
			continue
		}
		k := rowKey{container: string(ss.Metric[model.LabelName(r.contL)]), host: host, domain: r.fields.DefaultDomain}
		if r.domL != "" {
			k.domain = string(ss.Metric[model.LabelName(r.domL)])
		}
		r.nSamples.Add(int64(len(ss.Values)))
		for _, p := range ss.Values {
			t, ok := r.tickOf(p.Timestamp)
			if !ok || t < r.next {
				continue
			}
			sk := seriesKey{row: k, metric: m}
			v := float64(p.Value)
			if l, ok := r.last[sk]; ok && t-l.tick > 1 && t-l.tick-1 <= r.maxGap {
				for g := max(l.tick+1, r.next); g < t; g++ {
					r.set(g, k, m, l.v, true)
				}
			}
			r.last[sk] = lastSample{tick: t, v: v}
			r.set(t, k, m, v, false)
		}
	}
}

func (r *reader) set(t int64, k rowKey, m int, v float64, filled bool) {
	rows := r.buf[t]
	if rows == nil {
		rows = map[rowKey]*cell{}
		r.buf[t] = rows
	}
	c := rows[k]
	if c == nil {
		c = &cell{vals: make([]float64, len(r.metrics)), have: make([]bool, len(r.metrics))}
		rows[k] = c
	}
	if c.have[m] {
		return // a sample is never overwritten by a fill (nor by a second sample)
	}
	c.vals[m], c.have[m] = v, true
	c.filled = c.filled || filled
}

// emit sends every buffered tick ≤ upTo: its rows (row batches, which the
// decode stage validates row by row) and its watermark.
func (r *reader) emit(ctx context.Context, upTo int64, send func(*messageSpec) error) error {
	for ; r.next <= upTo; r.next++ {
		t := r.next
		rows := r.buf[t]
		delete(r.buf, t)
		keys := make([]rowKey, 0, len(rows))
		for k := range rows {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b rowKey) int {
			return cmp.Or(cmp.Compare(a.domain, b.domain), cmp.Compare(a.container, b.container), cmp.Compare(a.host, b.host))
		})
		// One row per container and tick: a real sample wins over a gap
		// fill (a container that moved host while its old series was
		// being bridged); two real ones are a duplicate, set aside.
		batch := &codecs.RawBatch{Source: r.source, Header: r.header}
		tickStr := strconv.FormatInt(t, 10)
		for i := 0; i < len(keys); {
			j := i + 1
			for j < len(keys) && keys[j].domain == keys[i].domain && keys[j].container == keys[i].container && keys[i].container != "" {
				j++
			}
			keep := i
			for x := i; x < j; x++ {
				if !rows[keys[x]].filled {
					keep = x
					break
				}
			}
			for x := i; x < j; x++ {
				if x != keep && !rows[keys[x]].filled {
					r.line++
					r.nRows.Add(1)
					r.nRejected.Add(1)
					r.reject(&codecs.RowError{Position: codecs.Position{Source: r.source, Line: r.line}, Field: r.contL, Value: keys[x].container,
						Reason: fmt.Sprintf("duplicate (tick %d, container): series on host %q kept, this one is on host %q; aggregate the query by %s and %s",
							t, keys[keep].host, keys[x].host, r.contL, r.hostL)})
				}
			}
			k, c := keys[keep], rows[keys[keep]]
			r.line++
			r.nRows.Add(1)
			if miss := missing(c, r.metrics); miss != "" {
				r.nRejected.Add(1)
				r.reject(&codecs.RowError{Position: codecs.Position{Source: r.source, Line: r.line}, Field: miss, Value: k.container,
					Reason: fmt.Sprintf("no sample of metric %s at tick %d for container %q on host %q (its query has no such series then)", miss, t, k.container, k.host)})
			} else {
				r.noteHost(k.host)
				f := make([]string, 0, len(r.header))
				f = append(f, tickStr, k.container, k.host)
				if r.domL != "" {
					f = append(f, k.domain)
				}
				for _, v := range c.vals {
					f = append(f, formatValue(v))
				}
				batch.Rows = append(batch.Rows, codecs.RawRow{Line: r.line, Fields: f})
				if len(batch.Rows) >= batchRows {
					if err := send(&messageSpec{kind: codecs.KindRows, tick: t, domain: r.oneDomain(), batch: batch}); err != nil {
						return err
					}
					batch = &codecs.RawBatch{Source: r.source, Header: r.header}
				}
			}
			i = j
		}
		if len(batch.Rows) > 0 {
			if err := send(&messageSpec{kind: codecs.KindRows, tick: t, domain: r.oneDomain(), batch: batch}); err != nil {
				return err
			}
		}
		if err := send(&messageSpec{kind: codecs.KindWatermark, tick: t, domain: r.oneDomain()}); err != nil {
			return err
		}
		r.nTicks.Add(1)
		if r.progress != nil {
			r.progress(t+1, 0)
		}
	}
	// Forget the last samples too old to bridge a gap into the future.
	for sk, l := range r.last {
		if l.tick < r.next-r.maxGap-2 {
			delete(r.last, sk)
		}
	}
	return nil
}

const batchRows = 1000

// oneDomain is the domain of every row when there is no domain label.
func (r *reader) oneDomain() string {
	if r.domL != "" {
		return ""
	}
	return r.fields.DefaultDomain
}

func missing(c *cell, metrics []string) string {
	for m, ok := range c.have {
		if !ok {
			return metrics[m]
		}
	}
	return ""
}

// formatValue writes a sample as the shortest decimal that reads back to
// the same float64 (so a trace read from Prometheus decodes to the very
// values of its CSV); NaN and ±Inf are written as such and refused by the
// decode stage like a CSV's.
func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func (r *reader) noteHost(h string) {
	if r.hostsKnown == nil || r.hostsKnown[h] {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.hostsKnown[h] {
		r.hostsKnown[h] = true
		r.unknownHosts = append(r.unknownHosts, h)
		r.c.log.Warn("host without a capacity answer: samples kept, the host is never a move target", "host", h)
	}
}
