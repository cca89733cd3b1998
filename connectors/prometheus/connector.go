package prometheus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"hots/codecs"
	"hots/connectors"
	"hots/connectors/file"
	"hots/connectors/webhook"
	"hots/placement"
)

func init() {
	for _, live := range []bool{false, true} {
		name, summary := Name, "replay a past range [start, end] of a Prometheus server (PromQL per metric, one tick per step) like a file replay; moves to a JSON-lines file and, if set, a webhook"
		if live {
			name, summary = LiveName, "follow a Prometheus server live (a tick closes every step, after lag); moves to a JSON-lines file and, if set, a webhook"
		}
		connectors.Register(connectors.Registration{
			Name:    name,
			Summary: summary,
			RunDir:  !live,
			NewArgs: func() connectors.Args { return &Args{Live: live} },
			Keys:    keys,
			New: func(env connectors.Env, a connectors.Args) (connectors.Connector, error) {
				return Open(env, *a.(*Args))
			},
		})
	}
}

// Connector reads usage and capacities from Prometheus: history mode
// replays [start, end] (Finite), live mode follows now (a service). Both
// send each tick's rows then its watermark; moves go to a JSON-lines file
// (the file connector's writer) and then, if set, to a webhook (the http
// connector's, package webhook), bad input to a rejects CSV.
type Connector struct {
	env     connectors.Env
	args    Args
	r       *reader
	sub     *subscriber
	moves   *file.MovesPublisher
	sink    message.Publisher // moves, then the webhook if any
	rejects *file.RejectsWriter
	end     int64 // last tick (history)

	closeOnce sync.Once
	closeErr  error
}

// New checks the queries against connector.parameters.metrics and opens
// the outputs; it does not contact the server (Initial does).
func New(env connectors.Env, a Args) (*Connector, error) {
	log := env.Logger
	if log == nil {
		log = slog.Default()
	}
	f := env.Fields.WithDefaults()
	qs, err1 := metricQueries(a.Queries, "queries", f.Metrics)
	_, err2 := metricQueries(a.CapacityQueries, "capacity_queries", f.Metrics)
	var err3 error
	if a.DomainLabel != "" && f.Domain == "" {
		err3 = &connectors.KeyError{Key: key("domain_label"), Value: a.DomainLabel, Allowed: "needs connector.parameters.domain_field (the name the domain goes by in the samples)"}
	}
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	c, err := newClient(a, env.BaseDir, log)
	if err != nil {
		return nil, err
	}
	var start time.Time
	if a.Start != "" {
		start, _ = ParseTime(a.Start)
	} else {
		// Live without start: tick 0 is sep_time+1 steps ago, so the
		// analysis period is the recent past and loops start at once.
		start = time.Now().Truncate(a.Step).Add(-time.Duration(max(env.Engine.SepTime, 0)+1) * a.Step).Add(-a.Lag)
		start = start.Truncate(a.Step)
	}
	header := []string{f.Tick, f.Individual, f.Host}
	if a.DomainLabel != "" {
		header = append(header, f.Domain)
	}
	header = append(header, f.Metrics...)
	conn := &Connector{env: env, args: a}
	conn.r = &reader{c: c, metrics: f.Metrics, queries: qs, fields: f, header: header,
		contL: a.ContainerLabel, hostL: a.HostLabel, domL: a.DomainLabel, start: start, step: a.Step,
		maxGap: int64(a.MaxGap), chunk: int64(a.MaxPoints), source: "prometheus " + a.URL,
		progress: env.Progress, buf: map[int64]map[rowKey]*cell{}, last: map[seriesKey]lastSample{}, rejected: map[string]bool{}}
	if !a.Live {
		end, _ := ParseTime(a.End)
		conn.end = int64(end.Sub(start) / a.Step)
	}
	outfile, rejectsPath := a.paths(env.BaseDir, env.RunDir)
	if outfile == "" {
		return nil, errors.New("connector.parameters.outfile is empty and there is no run directory")
	}
	if conn.rejects, err = file.NewRejectsWriter(rejectsPath, env.Reject); err != nil {
		return nil, err
	}
	conn.r.reject = func(e *codecs.RowError) {
		conn.rejects.Reject(e)
		if env.BadInput == "stop" && conn.sub != nil {
			conn.sub.fail(fmt.Errorf("bad input (bad_input: stop): %w", e))
		}
	}
	if conn.moves, err = file.NewMovesPublisher(outfile, a.ResetOnStart); err != nil {
		conn.rejects.Close()
		return nil, err
	}
	conn.sink = webhook.Also(conn.moves, webhook.New(a.Args, log.With("connector", conn.name())))
	conn.sub = newSubscriber(func(ctx context.Context, send func(*messageSpec) error) error {
		return conn.run(ctx, func(m *messageSpec) error {
			err := send(m)
			if err == nil && m.kind == codecs.KindWatermark {
				// The tick went through: its bad input is in the rejects
				// file, as the file connector does after each tick.
				conn.rejects.Flush()
			}
			return err
		})
	})
	return conn, nil
}

func (c *Connector) name() string {
	if c.args.Live {
		return LiveName
	}
	return Name
}

// Paths are the files the connector writes.
func (c *Connector) Paths() (moves, rejects string) {
	return c.args.paths(c.env.BaseDir, c.env.RunDir)
}

// Start is tick 0's timestamp.
func (c *Connector) Start() time.Time { return c.r.start }

// analysis is the tick range capacities and the host check read:
// the analysis period (ticks ≤ sep_time), within what exists.
func (c *Connector) analysis(ctx context.Context) (int64, int64, error) {
	last := max(c.env.Engine.SepTime, 0)
	if c.args.Live {
		// Wait for tick 0 to be readable, then read what is there of the
		// analysis period.
		if err := sleepUntil(ctx, c.r.timeOf(0).Add(c.args.Lag)); err != nil {
			return 0, 0, err
		}
		last = min(last, c.dueTick(time.Now()))
	} else {
		last = min(last, c.end)
	}
	return 0, last, nil
}

func (c *Connector) dueTick(now time.Time) int64 {
	return int64(now.Add(-c.args.Lag).Sub(c.r.start) / c.args.Step)
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Initial implements connectors.Connector: every host the capacity
// queries answer for over the analysis period (its last value there).
// A host of the usage in that period without an answer in every metric
// is an error naming it.
func (c *Connector) Initial(ctx context.Context) (connectors.Initial, error) {
	a, b, err := c.analysis(ctx)
	if err != nil {
		return connectors.Initial{}, err
	}
	step := c.args.Step
	if n := b - a + 1; n > int64(c.args.MaxPoints) {
		step = time.Duration((n + int64(c.args.MaxPoints) - 1) / int64(c.args.MaxPoints) * int64(step))
	}
	rng := v1.Range{Start: c.r.timeOf(a), End: c.r.timeOf(b), Step: step}
	metrics := c.r.metrics
	caps := map[string][]float64{}
	have := map[string][]bool{}
	for m, name := range metrics {
		q := strings.TrimSpace(c.args.CapacityQueries[name])
		mat, err := c.r.c.rangeQuery(ctx, "capacity query ("+name+")", q, rng)
		if err != nil {
			return connectors.Initial{}, err
		}
		for _, ss := range mat {
			h := string(ss.Metric[model.LabelName(c.args.HostLabel)])
			if h == "" || len(ss.Values) == 0 {
				c.env.Logger.Warn("capacity series without the host label: ignored", "query", q, "series", ss.Metric.String(), "host_label", c.args.HostLabel)
				continue
			}
			if caps[h] == nil {
				caps[h], have[h] = make([]float64, len(metrics)), make([]bool, len(metrics))
			}
			caps[h][m], have[h][m] = float64(ss.Values[len(ss.Values)-1].Value), true
		}
	}
	var errs []error
	var hosts []placement.Host
	known := map[string]bool{}
	for h, v := range caps {
		full := true
		for m, ok := range have[h] {
			if !ok {
				full = false
				errs = append(errs, fmt.Errorf("%s: no answer for host %q (the other metrics' capacity queries have one): query %q", queryKey("capacity_queries", metrics[m]), h, c.args.CapacityQueries[metrics[m]]))
			}
		}
		if full {
			hosts = append(hosts, placement.Host{Name: h, Capacity: v})
			known[h] = true
		}
	}
	// Every host the usage names in the analysis period needs a capacity.
	for m, q := range c.r.queries {
		hq := fmt.Sprintf("count by (%s) (%s)", c.args.HostLabel, q)
		mat, err := c.r.c.rangeQuery(ctx, "usage hosts ("+metrics[m]+")", hq, rng)
		if err != nil {
			return connectors.Initial{}, err
		}
		var missing []string
		for _, ss := range mat {
			if h := string(ss.Metric[model.LabelName(c.args.HostLabel)]); h != "" && !known[h] && caps[h] == nil {
				missing = append(missing, h)
			}
		}
		sort.Strings(missing)
		for _, h := range missing {
			errs = append(errs, fmt.Errorf("%s: no answer for host %q, which the usage query of %s names in the analysis period (ticks %d–%d): query %q",
				queryKey("capacity_queries", metrics[m]), h, metrics[m], a, b, strings.TrimSpace(c.args.CapacityQueries[metrics[m]])))
		}
		if len(missing) > 0 {
			break // the same hosts for every metric, usually: once is enough
		}
	}
	if err := errors.Join(errs...); err != nil {
		return connectors.Initial{}, err
	}
	// Prometheus has no order; the engine's decisions depend on the host
	// order (as on node_meta's row order in a file replay): natural order.
	slices.SortFunc(hosts, func(x, y placement.Host) int { return NaturalCompare(x.Name, y.Name) })
	c.r.mu.Lock()
	c.r.hostsKnown = known
	c.r.mu.Unlock()
	return connectors.Initial{Hosts: hosts}, nil
}

// run is the source: history reads [0, end] chunk by chunk; live reads
// every tick once it is due. A tick is emitted max_gap ticks after it was
// read, so that a gap bridged by a later sample is filled in it.
func (c *Connector) run(ctx context.Context, send func(*messageSpec) error) error {
	r := c.r
	if !c.args.Live {
		for a := int64(0); a <= c.end; {
			b := min(a+r.chunk-1, c.end)
			if err := r.fetch(ctx, a, b); err != nil {
				return err
			}
			if err := r.emit(ctx, b-r.maxGap, send); err != nil {
				return err
			}
			a = b + 1
		}
		return r.emit(ctx, c.end, send)
	}
	next := int64(0)
	for {
		due := c.dueTick(time.Now())
		if due >= next {
			if err := r.fetch(ctx, next, due); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				// Never a crash: say so, and try again at the next step.
				c.env.Logger.Error("prometheus: reading ticks failed; retrying at the next step", "ticks", fmt.Sprintf("%d–%d", next, due), "err", err)
			} else {
				next = due + 1
				if err := r.emit(ctx, due-r.maxGap, send); err != nil {
					return err
				}
			}
		}
		if err := sleepUntil(ctx, r.timeOf(next).Add(c.args.Lag)); err != nil {
			return nil
		}
	}
}

// Source implements connectors.Connector.
func (c *Connector) Source() connectors.Source {
	return connectors.Source{Subscriber: c.sub, Topics: []string{c.args.URL}}
}

// Sink implements connectors.Connector.
func (c *Connector) Sink() connectors.Sink {
	moves, _ := c.Paths()
	return connectors.Sink{Publisher: c.sink, Topic: moves}
}

// Poison implements connectors.Connector: the rejects file.
func (c *Connector) Poison() connectors.Sink {
	return connectors.Sink{Publisher: file.PoisonPublisher{Rejects: c.rejects}, Topic: "poison"}
}

// Ticks implements connectors.Connector: both modes know when a tick was
// read whole, and send its watermark.
func (c *Connector) Ticks() connectors.TickRule { return connectors.TickRule{Watermarks: true} }

// Counts implements connectors.Counter.
func (c *Connector) Counts() connectors.Counts {
	c.r.mu.Lock()
	unknown := slices.Clone(c.r.unknownHosts)
	known := len(c.r.hostsKnown) - len(unknown)
	c.r.mu.Unlock()
	return connectors.Counts{Rows: c.r.nRows.Load(), Rejected: c.r.nRejected.Load(), Ticks: c.r.nTicks.Load(),
		Sorted: true, UnknownHosts: unknown, HostsKnown: max(known, 0)}
}

// Samples is how many samples were read from Prometheus.
func (c *Connector) Samples() int64 { return c.r.nSamples.Load() }

// Close implements connectors.Connector. Idempotent.
func (c *Connector) Close() error {
	c.closeOnce.Do(func() {
		// The sink first: a webhook post in progress gives up, then the
		// moves file is closed.
		c.closeErr = errors.Join(c.sink.Close(), c.sub.Close(), c.moves.Close(), c.rejects.Close())
	})
	return c.closeErr
}

// historyConnector is a Connector whose source ends (connectors.Finite);
// live mode's does not, so it must not have Done.
type historyConnector struct{ *Connector }

// Done implements connectors.Finite.
func (h historyConnector) Done() <-chan struct{} { return h.sub.done }

// Err implements connectors.Finite.
func (h historyConnector) Err() error { return h.sub.Err() }

// Open builds the connector of a mode: history mode is Finite.
func Open(env connectors.Env, a Args) (connectors.Connector, error) {
	c, err := New(env, a)
	if err != nil {
		return nil, err
	}
	if a.Live {
		return c, nil
	}
	return historyConnector{c}, nil
}

// messageSpec is one message the source sends.
type messageSpec struct {
	kind   string
	tick   int64
	domain string // without a domain label: the one domain
	batch  *codecs.RawBatch
}

// subscriber delivers the messages of run one at a time, each acked
// before the next (a nack resends it), as the file connector's does.
type subscriber struct {
	run       func(ctx context.Context, send func(*messageSpec) error) error
	once      sync.Once
	closing   chan struct{}
	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
	failMu    sync.Mutex
	failErr   error
	err       error
}

func newSubscriber(run func(context.Context, func(*messageSpec) error) error) *subscriber {
	return &subscriber{run: run, closing: make(chan struct{}), done: make(chan struct{})}
}

var errClosed = errors.New("prometheus source closed")

// Subscribe implements message.Subscriber (once).
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	started := false
	s.once.Do(func() {
		started = true
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer close(out)
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go func() {
				select {
				case <-s.closing:
					cancel()
				case <-ctx.Done():
				}
			}()
			seq := 0
			err := s.run(ctx, func(spec *messageSpec) error {
				seq++
				return s.send(ctx, out, s.message(topic, seq, spec))
			})
			switch f := s.failure(); {
			case f != nil:
				err = f
			case err != nil && ctx.Err() != nil:
				err = fmt.Errorf("%w before the end of the range", errClosed)
			}
			s.err = err
			close(s.done)
			select {
			case <-s.closing:
			case <-ctx.Done():
			}
		}()
	})
	if !started {
		return nil, errors.New("prometheus subscriber: Subscribe called twice")
	}
	return out, nil
}

func (s *subscriber) message(topic string, seq int, spec *messageSpec) *message.Message {
	var payload []byte
	if spec.batch != nil {
		payload, _ = spec.batch.MarshalBinary()
	}
	m := message.NewMessage(fmt.Sprintf("%s:%d:%s:%d", topic, spec.tick, spec.kind, seq), payload)
	m.Metadata.Set(codecs.MetaKind, spec.kind)
	m.Metadata.Set(codecs.MetaTick, strconv.FormatInt(spec.tick, 10))
	m.Metadata.Set(codecs.MetaSource, topic)
	if spec.domain != "" {
		m.Metadata.Set(codecs.MetaDomain, spec.domain)
	}
	if spec.batch != nil && len(spec.batch.Rows) > 0 {
		m.Metadata.Set(codecs.MetaFirstLine, strconv.FormatInt(spec.batch.Rows[0].Line, 10))
	}
	return m
}

func (s *subscriber) send(ctx context.Context, out chan<- *message.Message, m *message.Message) error {
	for {
		msg := m.Copy()
		select {
		case out <- msg:
		case <-ctx.Done():
			return errClosed
		}
		select {
		case <-msg.Acked():
			return nil
		case <-msg.Nacked():
		case <-ctx.Done():
			return errClosed
		}
	}
}

func (s *subscriber) fail(err error) {
	s.failMu.Lock()
	if s.failErr == nil {
		s.failErr = err
	}
	s.failMu.Unlock()
	s.closeOnce.Do(func() { close(s.closing) })
}

func (s *subscriber) failure() error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	return s.failErr
}

// Err is why the source stopped early (nil after a full history replay).
func (s *subscriber) Err() error { return s.err }

// Close implements message.Subscriber.
func (s *subscriber) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	s.wg.Wait()
	return nil
}

// NaturalCompare orders names with their digit runs as numbers
// (n_2 < n_10), then as strings: the order Initial gives hosts in.
func NaturalCompare(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if isDigit(a[i]) && isDigit(b[j]) {
			x, y := i, j
			for x < len(a) && isDigit(a[x]) {
				x++
			}
			for y < len(b) && isDigit(b[y]) {
				y++
			}
			na, nb := strings.TrimLeft(a[i:x], "0"), strings.TrimLeft(b[j:y], "0")
			if c := cmp.Or(cmp.Compare(len(na), len(nb)), strings.Compare(na, nb)); c != 0 {
				return c
			}
			i, j = x, y
			continue
		}
		if a[i] != b[j] {
			return cmp.Compare(a[i], b[j])
		}
		i, j = i+1, j+1
	}
	return cmp.Or(cmp.Compare(len(a)-i, len(b)-j), strings.Compare(a, b))
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
