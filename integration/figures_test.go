package integration

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// TestKafkaFigures measures, with the embedded broker, one domain of 5,000
// containers and 6 domains of 1,000, one record per sample and batches of
// 500: samples/s end to end (from the producer's start to every tick but
// the last closed in every domain), tick close to moves published, engine
// loop time, checkpoint time and size, heap. It only logs (no timed
// assertion); run it with HOTSIT_FIGURES=1 go test -run Figures -v ./integration.
func TestKafkaFigures(t *testing.T) {
	if os.Getenv("HOTSIT_FIGURES") == "" {
		t.Skip("figures only: set HOTSIT_FIGURES=1")
	}
	for _, shape := range []struct{ domains, containers int }{{1, 5000}, {6, 1000}} {
		for _, batch := range []string{"1", "500"} {
			t.Run(fmt.Sprintf("%dx%d/batch=%s", shape.domains, shape.containers, batch), func(t *testing.T) {
				kafkaFigures(t, shape.domains, shape.containers, batch)
			})
		}
	}
}

// kafkaFigures runs one measurement, with batch samples per message.
func kafkaFigures(t *testing.T, domains, containers int, batch string) {
	const ticks = 24
	var tr trace
	if domains == 1 {
		tr = sampleTrace(t, containers, containers/50, ticks) // varied profiles
	} else {
		tr = genTrace(t, domains, containers, 40, ticks)
	}
	b := startBroker(t, 0, "")
	defer b.Close()
	addr := b.Addrs()[0]
	cfg := writeConfig(t, t.TempDir(), tr, addr, "", "")
	svc := startService(t, cfg, "svc", true)
	heapBefore := svc.metric("go_memstats_heap_inuse_bytes")
	start := time.Now()
	produce(t, cfg, tr, addr, 0, "--batch", batch)
	produced := time.Since(start)
	want := float64(domains * (ticks - 1))
	waitFor(t, 600*time.Second, "all but the last tick closed", func() bool { return svc.metric("hots_ticks_closed_total") >= want })
	el := time.Since(start)
	samples := svc.metric("hots_samples_in_total")
	sum, cnt := svc.metric("hots_tick_close_to_publish_seconds_sum"), svc.metric("hots_tick_close_to_publish_seconds_count")
	lsum, lcnt := svc.metric("hots_loop_latency_seconds_sum"), svc.metric("hots_loop_latency_seconds_count")
	csum, ccnt := svc.metric("hots_checkpoint_seconds_sum"), svc.metric("hots_checkpoint_seconds_count")
	bsum := svc.metric("hots_checkpoint_bytes_sum")
	t.Logf("%s samples per message; %d domain(s) x %d containers x %d ticks: %.0f samples in %.2fs (produced in %.2fs) = %.0f samples/s end to end",
		batch, domains, containers, ticks, samples, el.Seconds(), produced.Seconds(), samples/el.Seconds())
	t.Logf("tick close -> moves published (engine + publish): mean %.1f ms over %.0f ticks; engine loop mean %.1f ms over %.0f loops; moves %.0f",
		1000*sum/cnt, cnt, 1000*lsum/lcnt, lcnt, svc.metric("hots_moves_total"))
	t.Logf("checkpoints: %.0f, mean %.1f ms, mean %.0f KB; wall time in checkpoints %.2fs",
		ccnt, 1000*csum/ccnt, bsum/ccnt/1e3, csum)
	t.Logf("heap in use: %.1f MB before, %.1f MB holding the domains", heapBefore/1e6, svc.metric("go_memstats_heap_inuse_bytes")/1e6)
}
