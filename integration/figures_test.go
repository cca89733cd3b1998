package integration

import (
	"os"
	"testing"
	"time"
)

// TestKafkaFigures measures, with the embedded broker, one domain of 1,000
// containers: samples/s from the usage topic to closed ticks, tick close
// to moves published, and heap per domain. It only logs (no timed
// assertion); run it with HOTSIT_FIGURES=1 go test -run Figures -v ./integration.
func TestKafkaFigures(t *testing.T) {
	if os.Getenv("HOTSIT_FIGURES") == "" {
		t.Skip("figures only: set HOTSIT_FIGURES=1")
	}
	for _, batch := range []string{"1", "500"} {
		t.Run("batch="+batch, func(t *testing.T) { kafkaFigures(t, batch) })
	}
}

// kafkaFigures runs one measurement, with batch samples per message.
func kafkaFigures(t *testing.T, batch string) {
	const ticks = 30
	tr := genTrace(t, 1, 1000, 40, ticks)
	b := startBroker(t, 0, "")
	defer b.Close()
	addr := b.Addrs()[0]
	cfg := writeConfig(t, t.TempDir(), tr, addr, "", "")
	heapBefore := 0.0
	svc := startService(t, cfg, "svc", true)
	heapBefore = svc.metric("go_memstats_heap_inuse_bytes")
	produce(t, cfg, tr, addr, 0, "--batch", batch)
	start := time.Now()
	waitFor(t, 300*time.Second, "all but the last tick closed", func() bool { return svc.metric("hots_ticks_closed_total") >= ticks-1 })
	el := time.Since(start)
	samples := svc.metric("hots_samples_in_total")
	sum, cnt := svc.metric("hots_tick_close_to_publish_seconds_sum"), svc.metric("hots_tick_close_to_publish_seconds_count")
	lsum, lcnt := svc.metric("hots_loop_latency_seconds_sum"), svc.metric("hots_loop_latency_seconds_count")
	t.Logf("%s samples per message; 1 domain x 1000 containers x %d ticks: %.0f samples in %.2fs = %.0f samples/s to closed ticks", batch, ticks, samples, el.Seconds(), samples/el.Seconds())
	t.Logf("tick close -> moves published (engine + publish): mean %.1f ms over %.0f ticks; engine loop mean %.1f ms over %.0f loops; moves %.0f",
		1000*sum/cnt, cnt, 1000*lsum/lcnt, lcnt, svc.metric("hots_moves_total"))
	t.Logf("heap in use: %.1f MB before, %.1f MB holding the domain", heapBefore/1e6, svc.metric("go_memstats_heap_inuse_bytes")/1e6)
}
