package pipeline

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
	"hots/config"
	"hots/connectors/file"
	"hots/handlers"
)

// genTrace writes containers×ticks rows, grouped by container (unsorted)
// or by tick, with two metrics.
func genTrace(b *testing.B, containers, ticks int, sorted bool) string {
	p := filepath.Join(b.TempDir(), "container_usage.csv")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "timestamp,container_id,machine_id,cpu,mem")
	row := func(t, c int) { fmt.Fprintf(w, "%d,c_%d,m_%d,%d.%d,%d\n", t, c, c%50, (t*7+c)%97, c%10, (t+c)%100) }
	if sorted {
		for t := range ticks {
			for c := range containers {
				row(t, c)
			}
		}
	} else {
		for c := range containers {
			for t := range ticks {
				row(t, c)
			}
		}
	}
	w.Flush()
	f.Close()
	return p
}

// driveDecodeWindow replays path through the file Subscriber, the Decoder
// and the Window handler funcs (no router), acking as the router would,
// and returns the samples that reached the window and the peaks seen at
// tick ends of the heap (HeapAlloc: live data plus garbage not yet
// collected) and of the live heap (as marked by the last GC).
func driveDecodeWindow(b *testing.B, path string, fields codecs.UsageFields) (samples int64, peakHeap, peakLive uint64) {
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	rejects := func(e *codecs.RowError) { b.Fatalf("reject: %v", e) }
	sub, err := file.NewSubscriber(file.Config{UsagePath: path, Fields: fields, Reject: rejects})
	if err != nil {
		b.Fatal(err)
	}
	dec := &handlers.Decoder{Fields: fields, Reject: rejects}
	var ms runtime.MemStats
	win := &handlers.Window{Fields: fields, Rule: handlers.TickRule{Watermarks: true}}
	win.Emit = func([]*message.Message) error {
		runtime.ReadMemStats(&ms)
		peakHeap = max(peakHeap, ms.HeapAlloc)
		metrics.Read(live)
		if live[0].Value.Kind() == metrics.KindUint64 {
			peakLive = max(peakLive, live[0].Value.Uint64())
		}
		return nil
	}
	ch, err := sub.Subscribe(context.Background(), "usage")
	if err != nil {
		b.Fatal(err)
	}
	for {
		select {
		case m := <-ch:
			out, err := dec.Handle(m)
			if err != nil {
				b.Fatal(err)
			}
			for _, o := range out {
				if err := win.Handle(o); err != nil {
					b.Fatal(err)
				}
			}
			m.Ack()
		case <-sub.Done():
			if err := sub.Err(); err != nil {
				b.Fatal(err)
			}
			sub.Close()
			return win.Stats().Samples, peakHeap, peakLive
		}
	}
}

// benchDecodeWindow reports samples per wall-clock second and per second
// of CPU time used by the process (user + system, all threads, so GC
// workers count): with GOMAXPROCS=1 the latter is the one-core figure, and
// it does not move when another process shares the machine.
func benchDecodeWindow(b *testing.B, path string, fields codecs.UsageFields) {
	b.ReportAllocs()
	var total int64
	var peak, peakLive uint64
	start, cpu0 := time.Now(), cpuTime()
	for b.Loop() {
		n, p, l := driveDecodeWindow(b, path, fields)
		total += n
		peak, peakLive = max(peak, p), max(peakLive, l)
	}
	wall, cpu := time.Since(start), cpuTime()-cpu0
	b.ReportMetric(float64(total)/wall.Seconds(), "samples/s")
	if cpu > 0 {
		b.ReportMetric(float64(total)/cpu.Seconds(), "samples/cpu-s")
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(peakLive)/(1<<20), "peak-live-MB")
	b.ReportMetric(float64(total)/float64(b.N), "samples/op")
}

func BenchmarkDecodeWindowGenerated(b *testing.B) {
	f := codecs.UsageFields{Metrics: []string{"cpu", "mem"}}
	for _, sorted := range []bool{true, false} {
		b.Run(fmt.Sprintf("sorted=%v", sorted), func(b *testing.B) {
			benchDecodeWindow(b, genTrace(b, 2000, 100, sorted), f) // 200k rows
		})
	}
}

// BenchmarkDecodeWindowGeneratedLarge is 2M rows (20000 containers × 100
// ticks, about 60 MB): memory must stay bounded by the containers and one
// tick (plus the 24-byte row index when unsorted), not by the file.
func BenchmarkDecodeWindowGeneratedLarge(b *testing.B) {
	f := codecs.UsageFields{Metrics: []string{"cpu", "mem"}}
	for _, sorted := range []bool{true, false} {
		b.Run(fmt.Sprintf("sorted=%v", sorted), func(b *testing.B) {
			benchDecodeWindow(b, genTrace(b, 20000, 100, sorted), f)
		})
	}
}

func BenchmarkDecodeWindowAlibabaShort(b *testing.B) {
	dir := dataDir(b, "alibaba_short_time_interval")
	benchDecodeWindow(b, filepath.Join(dir, "container_usage.csv"), codecs.UsageFields{Metrics: []string{"cpu", "mem"}})
}

// BenchmarkReplayGenerated is the whole router (four stages, blocking
// acks, moves file) over a generated trace, engine included.
func BenchmarkReplayGenerated(b *testing.B) {
	path := genTrace(b, 2000, 100, false)
	dir := filepath.Dir(path)
	meta := "machine_id,cpu,mem\n"
	for h := range 50 {
		meta += fmt.Sprintf("m_%d,10000,10000\n", h)
	}
	os.WriteFile(filepath.Join(dir, "node_meta.csv"), []byte(meta), 0o644)
	// sep_time is past the trace on purpose (no loops): keep its warning
	// out of the figures' output.
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.DiscardHandler))
	var samples int64
	start := time.Now()
	for b.Loop() {
		var cfg = traceConfigFor(dir, b.TempDir())
		res, _, err := replayFile(context.Background(), cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		samples += res.Samples
	}
	b.ReportMetric(float64(samples)/time.Since(start).Seconds(), "samples/s")
}

func traceConfigFor(dataFolder, out string) config.Config {
	var cfg config.Config
	setParam(&cfg, "data_folder", dataFolder)
	setParam(&cfg, "outfile", filepath.Join(out, "moves.jsonl"))
	cp := &cfg.Connector.Parameters
	cp.Metrics = []string{"cpu", "mem"}
	cp.SepTime, cp.TickIncrement, cp.WindowDuration = 1000, 5, 10 // no loops: measures the data path
	return cfg
}
