package pipeline

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"hots/codecs"
	"hots/handlers"
)

// liveMetrics are the service's Prometheus metrics, on their own registry
// so that a test or an embedding program can run several services.
type liveMetrics struct {
	reg            *prometheus.Registry
	samples        prometheus.Counter
	ticks          prometheus.Counter
	loops          prometheus.Counter
	moves          prometheus.Counter
	poison         prometheus.Counter
	late           prometheus.Counter
	lag            *prometheus.GaugeVec
	loopLatency    prometheus.Histogram
	closeToPublish prometheus.Histogram
}

func newLiveMetrics() *liveMetrics {
	m := &liveMetrics{
		reg:     prometheus.NewRegistry(),
		samples: prometheus.NewCounter(prometheus.CounterOpts{Name: "hots_samples_in_total", Help: "Usage samples received (decoded)."}),
		ticks:   prometheus.NewCounter(prometheus.CounterOpts{Name: "hots_ticks_closed_total", Help: "(domain, tick) pairs closed."}),
		loops:   prometheus.NewCounter(prometheus.CounterOpts{Name: "hots_loops_total", Help: "Engine decisions (initial and loops)."}),
		moves:   prometheus.NewCounter(prometheus.CounterOpts{Name: "hots_moves_total", Help: "Moves decided."}),
		poison:  prometheus.NewCounter(prometheus.CounterOpts{Name: "hots_poison_total", Help: "Messages sent to the poison topic."}),
		late:    prometheus.NewCounter(prometheus.CounterOpts{Name: "hots_late_samples_total", Help: "Samples for an already closed tick, dropped."}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hots_consumer_lag",
			Help: "High-water mark minus the next offset this instance will handle, per usage partition it has read."}, []string{"topic", "partition"}),
		loopLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hots_loop_latency_seconds",
			Help: "Engine time per decision.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		closeToPublish: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hots_tick_close_to_publish_seconds",
			Help: "From a tick's close to its moves published (placement included).", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	// Go runtime figures (heap in use per domain held is what operators size by).
	m.reg.MustRegister(collectors.NewGoCollector())
	m.reg.MustRegister(m.samples, m.ticks, m.loops, m.moves, m.poison, m.late, m.lag, m.loopLatency, m.closeToPublish)
	return m
}

func (m *liveMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// watchEnds fetches every usage partition's high-water mark every
// interval: the window needs it before an idle close (see
// LiveWindow.SetEnd), and the lag gauge is computed from it.
func watchEnds(ctx context.Context, client sarama.Client, topics []string, lw *handlers.LiveWindow, m *liveMetrics, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next := lw.Next()
		for _, topic := range topics {
			parts, err := client.Partitions(topic)
			if err != nil {
				continue
			}
			for _, p := range parts {
				at := time.Now()
				hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
				if err != nil {
					continue
				}
				lw.SetEnd(topic, p, hwm, at)
				if n, ok := next[topic][p]; ok {
					m.lag.WithLabelValues(topic, strconv.Itoa(int(p))).Set(float64(max(hwm-n, 0)))
				}
			}
		}
	}
}

// followNodes reads the compacted nodes topic from the oldest record and
// follows it: each record (host -> capacities) updates every engine.
func followNodes(ctx context.Context, client sarama.Client, topic string, metrics []string, lw *handlers.LiveWindow, p *handlers.Placer, log *slog.Logger) {
	parts, err := client.Partitions(topic)
	if err != nil {
		log.Warn("nodes topic: not followed", "topic", topic, "err", err)
		return
	}
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		log.Warn("nodes topic: not followed", "topic", topic, "err", err)
		return
	}
	defer cons.Close()
	var wg sync.WaitGroup
	for _, part := range parts {
		pc, err := cons.ConsumePartition(topic, part, sarama.OffsetOldest)
		if err != nil {
			log.Warn("nodes topic: partition not followed", "topic", topic, "partition", part, "err", err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.Close()
			for {
				select {
				case <-ctx.Done():
					return
				case km := <-pc.Messages():
					if km == nil || km.Value == nil {
						continue // a tombstone: the capacity stays as last known
					}
					_, h, err := codecs.DecodeNode(km.Value, codecs.Position{Source: topic, Partition: km.Partition, Offset: km.Offset}, metrics)
					if err != nil {
						log.Warn("nodes topic: bad record skipped", "err", err)
						continue
					}
					lw.WithLock(func() {
						if err := p.SetHost(h); err != nil {
							log.Warn("nodes topic: capacity not applied", "host", h.Name, "err", err)
						}
					})
				}
			}
		}()
	}
	wg.Wait()
}
