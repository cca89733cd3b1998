package integration

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKafkaFigures measures, with the embedded broker, one domain of 5,000
// containers and 6 domains of 1,000, one record per sample and batches of
// 500: samples/s end to end (from the producer's start, and from the
// service's first sample, to every tick but the last closed in every
// domain), tick close to moves published, engine
// loop time, checkpoint time and size, heap. It only logs (no timed
// assertion); run it with HOTSIT_FIGURES=1 go test -run Figures -v ./integration.
// HOTSIT_PROFILE=dir also writes the service's CPU profile of each case
// there; HOTSIT_FIGURES_TICKS sets the trace's length (96 ticks).
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
	// Long enough that what every run pays once (the producer process
	// starting, the group joining, the first loops) does not make the
	// figure: at 24 ticks a batch run is over in under 2 s, most of it the
	// producer's start.
	ticks := 96
	if v, err := strconv.Atoi(os.Getenv("HOTSIT_FIGURES_TICKS")); err == nil && v > 2 {
		ticks = v
	}
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
	heapBefore, cpuBefore := svc.metric("go_memstats_heap_inuse_bytes"), svc.metric("process_cpu_seconds_total")
	stopProfile := svc.cpuProfile(t, os.Getenv("HOTSIT_PROFILE"))
	start := time.Now()
	// The producer reads the whole CSV before it sends anything (seconds
	// at 500,000 rows): the service's own rate runs from its first sample.
	firstIn := make(chan time.Time, 1)
	go func() {
		for svc.metric("hots_samples_in_total") == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		firstIn <- time.Now()
	}()
	produce(t, cfg, tr, addr, 0, "--batch", batch)
	produced := time.Since(start)
	want := float64(domains * (ticks - 1))
	waitFor(t, 600*time.Second, "all but the last tick closed", func() bool { return svc.metric("hots_ticks_closed_total") >= want })
	end := time.Now()
	el := end.Sub(start)
	stopProfile()
	samples := svc.metric("hots_samples_in_total")
	since := end.Sub(<-firstIn)
	sum, cnt := svc.metric("hots_tick_close_to_publish_seconds_sum"), svc.metric("hots_tick_close_to_publish_seconds_count")
	lsum, lcnt := svc.metric("hots_loop_latency_seconds_sum"), svc.metric("hots_loop_latency_seconds_count")
	csum, ccnt := svc.metric("hots_checkpoint_seconds_sum"), svc.metric("hots_checkpoint_seconds_count")
	bsum := svc.metric("hots_checkpoint_bytes_sum")
	t.Logf("%s samples per message; %d domain(s) x %d containers x %d ticks: %.0f samples in %.2fs (produced in %.2fs) = %.0f samples/s end to end; %.0f samples/s from the first sample in (%.2fs)",
		batch, domains, containers, ticks, samples, el.Seconds(), produced.Seconds(), samples/el.Seconds(), samples/since.Seconds(), since.Seconds())
	t.Logf("tick close -> moves published (engine + publish): mean %.1f ms over %.0f ticks; engine loop mean %.1f ms over %.0f loops; moves %.0f",
		1000*sum/cnt, cnt, 1000*lsum/lcnt, lcnt, svc.metric("hots_moves_total"))
	t.Logf("checkpoints: %.0f, mean %.1f ms, mean %.0f KB; wall time in checkpoints %.2fs",
		ccnt, 1000*csum/ccnt, bsum/ccnt/1e3, csum)
	cpu := svc.metric("process_cpu_seconds_total") - cpuBefore
	t.Logf("service CPU: %.2fs (%.0f%% of one core over the run), %.1f µs per sample", cpu, 100*cpu/el.Seconds(), 1e6*cpu/samples)
	t.Logf("heap in use: %.1f MB before, %.1f MB holding the domains", heapBefore/1e6, svc.metric("go_memstats_heap_inuse_bytes")/1e6)
}

// cpuProfile starts a CPU profile of the service's first seconds under
// load (dir empty: none) and returns what waits for it and writes it to
// dir/<test>.pprof: pprof's endpoint profiles for a fixed time only.
func (s *service) cpuProfile(t *testing.T, dir string) func() {
	if dir == "" {
		return func() {}
	}
	secs := cmp.Or(os.Getenv("HOTSIT_PROFILE_SECONDS"), "3")
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get("http://" + s.http + "/debug/pprof/profile?seconds=" + secs)
		if err != nil {
			t.Errorf("profile: %v", err)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %s", resp.Status, body)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".pprof"), body, 0o644)
		}
		if err != nil {
			t.Errorf("profile: %v", err)
		}
	}()
	return func() { <-done }
}
