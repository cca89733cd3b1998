package file

import (
	"sync"
	"sync/atomic"

	"hots/placement"
)

// Relocations is where containers run after the replay's own moves: a move
// decided at tick t re-attributes the container's rows of ticks > t. The
// moves Publisher writes it, the Subscriber reads it, from two goroutines.
type Relocations struct {
	mu sync.RWMutex
	m  map[string]map[string]relocation // domain -> container
	n  atomic.Int64                     // written under mu, read without it
}

type relocation struct {
	host  string
	after int64
}

// NewRelocations returns an empty table.
func NewRelocations() *Relocations { return &Relocations{m: map[string]map[string]relocation{}} }

// Apply records a move. Moves arrive in tick order, so the latest wins,
// as upstream's file connector does (spec 2.1).
func (r *Relocations) Apply(m placement.Move) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.m[m.Domain]
	if d == nil {
		d = map[string]relocation{}
		r.m[m.Domain] = d
	}
	if _, ok := d[m.Container]; !ok {
		r.n.Add(1)
	}
	d[m.Container] = relocation{host: m.NewHost, after: m.Tick}
}

// Lookup returns the container's host at tick if a move re-attributed it.
func (r *Relocations) Lookup(domain, container string, tick int64) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rl, ok := r.m[domain][container]
	if !ok || tick <= rl.after {
		return "", false
	}
	return rl.host, true
}

// Len is the number of containers that were moved at least once. It takes
// no lock: the Subscriber checks it on every row.
func (r *Relocations) Len() int { return int(r.n.Load()) }
