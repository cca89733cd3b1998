package pipeline

import (
	"sync"

	"hots/placement"
)

// NopObserver ignores everything.
type NopObserver struct{}

func (NopObserver) TickClosed(string, int64, map[string][]float64, map[string][]float64) {}
func (NopObserver) Decided(LoopRecord, []placement.Move)                                 {}
func (NopObserver) Rejected(Reject)                                                      {}
func (NopObserver) Progress(int64, int64)                                                {}

// TickLoads is one TickClosed call, maps copied.
type TickLoads struct {
	Domain           string
	Tick             int64
	Actual, Baseline map[string][]float64
}

// Recorder keeps everything it observes (tests, small runs).
type Recorder struct {
	mu       sync.Mutex
	Ticks    []TickLoads
	Loops    []LoopRecord
	Moves    []placement.Move
	Rejects  []Reject
	Done     int64
	Total    int64
	progress int
}

func copyLoads(m map[string][]float64) map[string][]float64 {
	out := make(map[string][]float64, len(m))
	for k, v := range m {
		out[k] = append([]float64(nil), v...)
	}
	return out
}

func (r *Recorder) TickClosed(domain string, tick int64, actual, baseline map[string][]float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Ticks = append(r.Ticks, TickLoads{domain, tick, copyLoads(actual), copyLoads(baseline)})
}

func (r *Recorder) Decided(rec LoopRecord, moves []placement.Move) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Loops = append(r.Loops, rec)
	r.Moves = append(r.Moves, moves...)
}

func (r *Recorder) Rejected(x Reject) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Rejects = append(r.Rejects, x)
}

func (r *Recorder) Progress(done, total int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Done, r.Total = done, total
	r.progress++
}

// Sizes are the closed ticks and rejects seen so far (safe while the run
// goes on).
func (r *Recorder) Sizes() (ticks, rejects int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.Ticks), len(r.Rejects)
}
