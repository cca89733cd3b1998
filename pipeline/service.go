package pipeline

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
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
	ready          atomic.Bool
	srv            *http.Server
	addr           string
}

// NewService returns the metrics; with a non-empty addr it also serves
// them, with health and readiness, until Close.
func NewService(addr string, log *slog.Logger) (*Service, error) {
	s := &Service{
		reg:     prometheus.NewRegistry(),
		samples: prometheus.NewCounter(prometheus.CounterOpts{Name: "hots_samples_in_total", Help: "Usage samples received (decoded)."}),
		ticks:   prometheus.NewCounter(prometheus.CounterOpts{Name: "hots_ticks_closed_total", Help: "(domain, tick) pairs closed."}),
		loops:   prometheus.NewCounter(prometheus.CounterOpts{Name: "hots_loops_total", Help: "Engine decisions (initial and loops)."}),
		moves:   prometheus.NewCounter(prometheus.CounterOpts{Name: "hots_moves_total", Help: "Moves decided."}),
		poison:  prometheus.NewCounter(prometheus.CounterOpts{Name: "hots_poison_total", Help: "Records set aside (poison sink or rejects)."}),
		late:    prometheus.NewCounter(prometheus.CounterOpts{Name: "hots_late_samples_total", Help: "Samples for an already closed tick, dropped."}),
		lagGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hots_consumer_lag",
			Help: "High-water mark minus the next offset this instance will handle, per usage partition it has read."}, []string{"topic", "partition"}),
		loopLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hots_loop_latency_seconds",
			Help: "Engine time per decision.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		closeToPublish: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hots_tick_close_to_publish_seconds",
			Help: "From a tick's close to its moves published (placement included).", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	// Go runtime figures (heap in use per domain held is what operators size by).
	s.reg.MustRegister(collectors.NewGoCollector())
	s.reg.MustRegister(s.samples, s.ticks, s.loops, s.moves, s.poison, s.late, s.lagGauge, s.loopLatency, s.closeToPublish)
	if addr == "" {
		return s, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
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

// Ready reports whether every stage and source is subscribed and the run
// is not stopping.
func (s *Service) Ready() bool { return s.ready.Load() }

func (s *Service) setReady(b bool) {
	if s != nil {
		s.ready.Store(b)
	}
}

func (s *Service) lag(topic string, partition int32, n int64) {
	if s != nil {
		s.lagGauge.WithLabelValues(topic, strconv.Itoa(int(partition))).Set(float64(n))
	}
}

// bind hooks the stages' counts to the metrics.
func (s *Service) bind(w *handlers.Window, p *handlers.Placer) {
	w.OnSamples = func(n int) { s.samples.Add(float64(n)) }
	w.OnLate = func(n int) { s.late.Add(float64(n)) }
	w.OnClosed = func(_ string, _ int64, secs float64) {
		s.ticks.Inc()
		s.closeToPublish.Observe(secs)
	}
	decided := p.OnDecision
	p.OnDecision = func(d *placement.Decision, secs float64) {
		s.loops.Inc()
		s.moves.Add(float64(len(d.Moves)))
		s.loopLatency.Observe(secs)
		decided(d, secs)
	}
}
