package placement_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"hots/placement"
)

// genTrace makes a domain of n containers on m hosts over ticks ticks with
// two metrics: cpu follows one of four phase-shifted daily waves, memory is
// flatter; hosts start with same-phase blocks (the situation HOTS is for).
func genTrace(n, m, ticks int, seed uint64) ([]placement.Host, []placement.TickBatch) {
	r := rand.New(rand.NewPCG(seed, 1))
	type ctr struct {
		name, host   string
		level, amp   float64
		phase, noise float64
		mem          float64
	}
	cs := make([]ctr, n)
	for i := range cs {
		g := i % 4
		cs[i] = ctr{
			name:  fmt.Sprintf("c_%d", i),
			host:  fmt.Sprintf("h_%d", (i*m)/n),
			level: 1 + r.Float64(), amp: 0.5 + r.Float64()*0.5,
			phase: 2*math.Pi*float64(g)/4 + r.Float64()*0.3, noise: 0.08,
			mem: 0.5 + r.Float64(),
		}
	}
	perHost := float64(n) / float64(m)
	hosts := make([]placement.Host, m)
	for h := range hosts {
		hosts[h] = placement.Host{Name: fmt.Sprintf("h_%d", h), Capacity: []float64{perHost * 1.5 / 0.6, perHost * 1.0 / 0.6}}
	}
	out := make([]placement.TickBatch, ticks)
	for t := range out {
		tb := placement.TickBatch{Tick: int64(t), Samples: make([]placement.Sample, n)}
		for i, c := range cs {
			cpu := math.Max(0, c.level+c.amp*math.Sin(2*math.Pi*float64(t)/24+c.phase)+c.noise*r.NormFloat64())
			mem := math.Max(0, c.mem+0.05*r.NormFloat64())
			tb.Samples[i] = placement.Sample{Tick: int64(t), Container: c.name, Host: c.host, Values: []float64{cpu, mem}}
		}
		out[t] = tb
	}
	return hosts, out
}

// BenchmarkLoop times one loop (newcomer labelling, clustering conflicts
// and re-clustering, placement conflicts, overload relief, re-placement)
// with 12-tick windows and 2 metrics, from a restored snapshot each time.
func BenchmarkLoop(b *testing.B) {
	for _, size := range []struct{ n, m int }{{100, 10}, {1000, 100}, {10000, 1000}} {
		b.Run(fmt.Sprintf("containers=%d/hosts=%d", size.n, size.m), func(b *testing.B) {
			p := placement.Params{Metrics: []string{"cpu", "mem"}, SepTime: 47, WindowDuration: 12, TickIncrement: 6, Tol: 0.1, TolMove: 0.1}
			hosts, ticks := genTrace(size.n, size.m, 61, 7)
			e, err := placement.New("bench", p, hosts)
			if err != nil {
				b.Fatal(err)
			}
			// Run to just before a loop tick (analysis at 47, loops at 53, 59).
			for _, tb := range ticks[:59] {
				if _, err := e.CloseTick(tb); err != nil {
					b.Fatal(err)
				}
			}
			snap, err := e.Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			moves := 0
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				e, err := placement.Restore(snap)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				d, err := e.CloseTick(ticks[59])
				if err != nil || d == nil {
					b.Fatalf("no loop at tick 59: %v", err)
				}
				moves = len(d.Moves)
			}
			b.ReportMetric(float64(moves), "moves/loop")
		})
	}
}
