package pipeline

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"hots/handlers"
	"hots/placement"
)

// Service is a long-running run's face to its operators: Prometheus
// metrics on their own registry (so that a test or an embedding program
// can run several), /healthz, /readyz, and readiness.
type Service struct {
	reg            *prometheus.Registry
	samples        prometheus.Counter
	ticks          prometheus.Counter
	loops          prometheus.Counter
	moves          prometheus.Counter
	poison         prometheus.Counter
	late           prometheus.Counter
	lagGauge       *prometheus.GaugeVec
	loopLatency    prometheus.Histogram
	closeToPublish prometheus.Histogram
	checkpointB    prometheus.Histogram
	checkpointS    prometheus.Histogram
	retries        *prometheus.CounterVec
	rebalances     prometheus.Counter
	partitions     prometheus.Gauge
	domains        atomic.Int64
	closed         atomic.Int64
	ready          atomic.Bool
	srv            *http.Server
	addr           string

	// Health: a service is stalled when its input has lag and no tick
	// closed for stallAfter, or when the connector stopped reporting its
	// partitions' ends (broker unreachable) for that long.
	stallAfter time.Duration
	lastClose  atomic.Int64 // unix ns of the last tick close (or of readiness)
	lastEnd    atomic.Int64 // unix ns of the last end fetched; 0: the connector reports none
	lagMu      sync.Mutex
	lagBy      map[string]int64
}

// ServiceOptions say where and what the service serves.
type ServiceOptions struct {
	// Addr: with it empty the metrics are kept but nothing is served.
	Addr string
	// StallAfter is how long a service with input lag may close no tick
	// before readiness fails (0 = 60 s); /healthz fails after three times
	// that.
	StallAfter time.Duration
	// Pprof also serves Go's profiler under /debug/pprof/: off by default,
	// since a profile is a heavy request anyone reaching the port can make.
	Pprof bool
}

// NewService returns the metrics; with an address it also serves them,
// with health and readiness, until Close.
func NewService(o ServiceOptions, log *slog.Logger) (*Service, error) {
	addr, stallAfter := o.Addr, o.StallAfter
	if stallAfter <= 0 {
		stallAfter = time.Minute
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Service{stallAfter: stallAfter, lagBy: map[string]int64{},
		checkpointB: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hots_checkpoint_bytes",
			Help: "Size of each domain checkpoint (all its chunks).", Buckets: prometheus.ExponentialBuckets(1<<10, 4, 12)}),
		checkpointS: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hots_checkpoint_seconds",
			Help: "Time to write a domain checkpoint, retries included.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hots_retries_total",
			Help: "Retries of infrastructure operations (checkpoint, load, catch-up, publish of a closed tick)."}, []string{"what"}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{Name: "hots_rebalances_total", Help: "Partition assignments received."}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hots_partitions_owned", Help: "Input partitions this instance owns."}),
		reg:        prometheus.NewRegistry(),
		samples:    prometheus.NewCounter(prometheus.CounterOpts{Name: "hots_samples_in_total", Help: "Usage samples received (decoded)."}),
		ticks:      prometheus.NewCounter(prometheus.CounterOpts{Name: "hots_ticks_closed_total", Help: "(domain, tick) pairs closed."}),
		loops:      prometheus.NewCounter(prometheus.CounterOpts{Name: "hots_loops_total", Help: "Engine decisions (initial and loops)."}),
		moves:      prometheus.NewCounter(prometheus.CounterOpts{Name: "hots_moves_total", Help: "Moves decided."}),
		poison:     prometheus.NewCounter(prometheus.CounterOpts{Name: "hots_poison_total", Help: "Records set aside (poison sink or rejects)."}),
		late:       prometheus.NewCounter(prometheus.CounterOpts{Name: "hots_late_samples_total", Help: "Samples for an already closed tick, dropped."}),
		lagGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hots_consumer_lag",
			Help: "High-water mark minus the next offset this instance will handle, per usage partition it has read."}, []string{"topic", "partition"}),
		loopLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hots_loop_latency_seconds",
			Help: "Engine time per decision.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		closeToPublish: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hots_tick_close_to_publish_seconds",
			Help: "From a tick's close to its moves published (placement included).", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	// Go runtime and process figures (heap and RSS per domain held are
	// what operators size by).
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.reg.MustRegister(s.samples, s.ticks, s.loops, s.moves, s.poison, s.late, s.lagGauge, s.loopLatency, s.closeToPublish,
		s.checkpointB, s.checkpointS, s.retries, s.rebalances, s.partitions,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hots_domains_held", Help: "Domains held in memory by this instance."},
			func() float64 { return float64(s.domains.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hots_last_tick_close_age_seconds", Help: "Seconds since this instance last closed a tick."},
			func() float64 { return time.Since(time.Unix(0, s.lastClose.Load())).Seconds() }))
	s.lastClose.Store(time.Now().UnixNano())
	if addr == "" {
		return s, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if why := s.stalled(3 * s.stallAfter); why != "" {
			http.Error(w, "stuck: "+why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		if why := s.stalled(s.stallAfter); why != "" {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	if o.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("service.http_addr: %w", err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	log.Info("http: /healthz /readyz /metrics", "addr", s.addr)
	return s, nil
}

// Addr is the address served ("" if none).
func (s *Service) Addr() string { return s.addr }

// Close stops serving.
func (s *Service) Close() error {
	if s == nil || s.srv == nil {
		return nil
	}
	return s.srv.Close()
}

// Closed is the number of (domain, tick) pairs closed and through every
// stage (their moves published).
func (s *Service) Closed() int64 { return s.closed.Load() }

// Ready reports whether every stage and source is subscribed and the run
// is not stopping.
func (s *Service) Ready() bool { return s.ready.Load() }

func (s *Service) setReady(b bool) {
	if s != nil {
		if b {
			s.lastClose.Store(time.Now().UnixNano()) // the stall clock starts at readiness
		}
		s.ready.Store(b)
	}
}

func (s *Service) lag(topic string, partition int32, n int64) {
	if s == nil {
		return
	}
	p := strconv.Itoa(int(partition))
	s.lagGauge.WithLabelValues(topic, p).Set(float64(n))
	s.lagMu.Lock()
	s.lagBy[topic+"/"+p] = n
	s.lagMu.Unlock()
}

func (s *Service) endFetched() {
	if s != nil {
		s.lastEnd.Store(time.Now().UnixNano())
	}
}

// stalled says why the service is stuck for longer than d ("" if not): a
// tick should have closed, or the connector's ends stopped coming.
func (s *Service) stalled(d time.Duration) string {
	if !s.ready.Load() {
		return ""
	}
	if e := s.lastEnd.Load(); e != 0 && time.Since(time.Unix(0, e)) > d {
		return fmt.Sprintf("no partition end fetched for %s (broker unreachable?)", time.Since(time.Unix(0, e)).Round(time.Second))
	}
	s.lagMu.Lock()
	var lag int64
	for _, n := range s.lagBy {
		lag += n
	}
	s.lagMu.Unlock()
	if since := time.Since(time.Unix(0, s.lastClose.Load())); lag > 0 && since > d {
		return fmt.Sprintf("input lag %d but no tick closed for %s", lag, since.Round(time.Second))
	}
	return ""
}

// bind hooks the stages' counts to the metrics.
func (s *Service) bind(w *handlers.Window, p *handlers.Placer) {
	w.OnSamples = func(n int) { s.samples.Add(float64(n)) }
	w.OnLate = func(n int) { s.late.Add(float64(n)) }
	w.OnClosed = func(_ string, _ int64, secs float64) {
		s.ticks.Inc()
		s.closeToPublish.Observe(secs)
		s.lastClose.Store(time.Now().UnixNano())
		s.closed.Add(1)
	}
	w.OnCheckpoint = func(_ string, n int, secs float64) {
		s.checkpointB.Observe(float64(n))
		s.checkpointS.Observe(secs)
	}
	w.OnRetry = func(what string) { s.retries.WithLabelValues(what).Inc() }
	w.OnOwnership = func(partitions, domains int) {
		s.rebalances.Inc()
		s.partitions.Set(float64(partitions))
		s.domains.Store(int64(domains))
	}
	w.OnDomains = func(n int) { s.domains.Store(int64(n)) }
	decided := p.OnDecision
	p.OnDecision = func(d *placement.Decision, secs float64) {
		s.loops.Inc()
		s.moves.Add(float64(len(d.Moves)))
		s.loopLatency.Observe(secs)
		decided(d, secs)
	}
}
