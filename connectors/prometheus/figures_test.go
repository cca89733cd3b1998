package prometheus_test

import (
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"hots/connectors/connectortest"
	"hots/connectors/file/sample"
	"hots/pipeline"
)

// TestFigures (opt-in: HOTS_PROM_FIGURES=1) measures history mode at
// 5,000 containers over a day of 5-minute ticks (288 ticks, cpu and mem:
// 2.9 M samples): load time, samples read per second, peak heap. The
// analysis period covers the whole day, so no loop runs: the figure is
// the connector and the decode/window stages, not the engine.
func TestFigures(t *testing.T) {
	if os.Getenv("HOTS_PROM_FIGURES") == "" {
		t.Skip("figures: set HOTS_PROM_FIGURES=1")
	}
	const containers, ticks, figStep = 5000, 288, 5 * time.Minute
	tr, err := sample.Generate(sample.Params{Containers: containers, Hosts: 100, Ticks: ticks, Seed: 1, Period: 48})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := tr.Write(dir); err != nil {
		t.Fatal(err)
	}
	_, promtool := promBinaries(t)
	t0 := time.Now()
	storage, last := backfillTrace(t, promtool, loadTrace(t, dir), []string{"cpu", "mem"}, figStep)
	t.Logf("backfill (promtool): %v", time.Since(t0).Round(time.Millisecond))
	s := newPromServer(t, storage, "", time.Minute)
	s.Start()

	cfg := connectortest.Config()
	cfg.Connector.Parameters.Metrics = []string{"cpu", "mem"}
	cfg.Connector.Parameters.SepTime = ticks + 1
	env := pipeline.Env(cfg, nil)
	env.RunDir = t.TempDir()
	conn := openHistory(t, s.URL(), cfg.Connector.Parameters.Metrics, last, env, map[string]any{"step": figStep.String(),
		"end": base.Add(time.Duration(last) * figStep).Format(time.RFC3339)})
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	runtime.GC()
	start := time.Now()
	res, err := pipeline.Run(ctxTimeout(t, 10*time.Minute), cfg, conn, pipeline.Options{})
	el := time.Since(start)
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	read := conn.(interface{ Samples() int64 }).Samples()
	t.Logf("history mode, %d containers × %d ticks × 2 metrics: %d samples read from Prometheus, %d usage rows, load %v, %.0f samples/s, peak heap %.0f MiB",
		containers, ticks, read, res.Samples, el.Round(time.Millisecond), float64(read)/el.Seconds(), float64(peak.Load())/(1<<20))
}
