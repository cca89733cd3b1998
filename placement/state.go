package placement

import (
	"fmt"
	"math"
	"sort"
)

// maxAnalysisTicks bounds what the engine retains before the analysis period
// ends, so a sep_time far in the future cannot grow memory without limit.
const maxAnalysisTicks = 4096

// state is the open state of one domain: everything a restart must restore.
type state struct {
	e       *Engine
	reg     registry
	ticks   []closedTick
	last    int64
	hasLast bool
	// hostOf is each active container's current host: the latest sample's,
	// or this engine's own move since then.
	hostOf   map[int32]int32
	labels   map[int32]int
	analysed bool
	nextLoop int64
	// previous marginal costs (spec 6.2 "prev"), per pair inside a group.
	prevClust *pairTable
	prevPlace *pairTable
	movedAt   map[int32]int64
	// left is the host each container's last move took it from: moving it
	// back within the guard (history_ticks) is refused, so that a burst
	// seen from both sides does not bounce a container between two hosts.
	left map[int32]departure
	// memory is the baseline policy's per-host counters (policy.Problem).
	memory []int
	// Operator limits (controls.go): the tick each active container was
	// first seen at, the ticks of the domain's recent moves and of each
	// container's, and which containers controls.pin names.
	firstSeen   map[int32]int64
	domainMoves []int64
	ctrMoves    map[int32][]int64
	pinCache    map[int32]bool
	// inputPin: the active containers whose newest sample is Pinned. It
	// is rebuilt from every closed tick (active containers are those of
	// the newest tick), so a snapshot need not hold it: decisions are
	// only made in CloseTick, after the tick's samples set it.
	inputPin map[int32]bool
}

func newState(e *Engine) *state {
	return &state{
		e:       e,
		reg:     registry{ids: map[string]int32{}},
		hostOf:  map[int32]int32{},
		labels:  map[int32]int{},
		movedAt: map[int32]int64{},
		left:    map[int32]departure{},

		firstSeen: map[int32]int64{},
		ctrMoves:  map[int32][]int64{},
		pinCache:  map[int32]bool{},
		inputPin:  map[int32]bool{},
	}
}

type departure struct {
	host int32
	tick int64
}

// leftHost returns the host container id last left and whether moving it
// back at tick is still within the guard.
func (s *state) leftHost(id int32, tick int64) (int32, bool) {
	d, ok := s.left[id]
	return d.host, ok && tick < d.tick+int64(s.e.p.history())
}

// hostIndex returns the index of a host, adding an unknown one with zero
// capacity: it can be relieved and reported but never chosen as a target.
func (e *Engine) hostIndex(name string) int32 {
	if i, ok := e.hostIx[name]; ok {
		return int32(i)
	}
	e.hostIx[name] = len(e.hosts)
	e.hosts = append(e.hosts, Host{Name: name, Capacity: make([]float64, len(e.p.Metrics))})
	return int32(len(e.hosts) - 1)
}

// CloseTick feeds one closed tick. It returns a Decision when the tick ends
// the analysis period ("initial") or is a loop tick ("loop"), nil otherwise.
// A tick at or before the last closed one returns ErrLateTick and changes
// nothing.
func (e *Engine) CloseTick(b TickBatch) (*Decision, error) {
	s := e.st
	if s.hasLast && b.Tick <= s.last {
		return nil, ErrLateTick
	}
	M := len(e.p.Metrics)
	ct := closedTick{tick: b.Tick}
	rows := make([]int, 0, len(b.Samples))
	for i := range b.Samples {
		if len(b.Samples[i].Values) != M {
			return nil, fmt.Errorf("tick %d container %s: %d values for %d metrics", b.Tick, b.Samples[i].Container, len(b.Samples[i].Values), M)
		}
		rows = append(rows, i)
	}
	ids := make([]int32, len(b.Samples))
	for i := range b.Samples {
		ids[i] = s.reg.id(b.Samples[i].Container)
	}
	sort.SliceStable(rows, func(a, c int) bool { return ids[rows[a]] < ids[rows[c]] })
	ct.cont = make([]int32, 0, len(rows))
	ct.host = make([]int32, 0, len(rows))
	ct.vals = make([]float64, 0, len(rows)*M)
	clear(s.inputPin) // the newest sample of each container decides
	for _, r := range rows {
		id := ids[r]
		if n := len(ct.cont); n > 0 && ct.cont[n-1] == id {
			continue // duplicate (tick, container): the first one counts
		}
		smp := &b.Samples[r]
		if smp.Pinned {
			s.inputPin[id] = true
		}
		ct.cont = append(ct.cont, id)
		ct.host = append(ct.host, e.hostIndex(smp.Host))
		ct.vals = append(ct.vals, smp.Values...)
	}
	s.last, s.hasLast = b.Tick, true
	s.ticks = append(s.ticks, ct)
	s.trim()

	// Active containers are those seen at the newest tick; the others left
	// and leave every structure (labels, placement, cool-down).
	present := make(map[int32]bool, len(ct.cont))
	for r, id := range ct.cont {
		present[id] = true
		s.hostOf[id] = ct.host[r]
		if _, ok := s.firstSeen[id]; !ok {
			s.firstSeen[id] = b.Tick
		}
	}
	if c := e.p.Controls; c.MaxMovesPerDomainPerHour > 0 {
		s.domainMoves = trimRecent(s.domainMoves, b.Tick, c.hourTicks())
	}
	for id := range s.hostOf {
		if !present[id] {
			delete(s.hostOf, id)
			delete(s.labels, id)
			delete(s.movedAt, id)
			delete(s.left, id)
			delete(s.firstSeen, id)
			delete(s.ctrMoves, id)
		}
	}
	if len(ct.cont) == 0 {
		return nil, nil
	}
	switch {
	case !s.analysed && b.Tick >= e.p.SepTime:
		d, err := s.analyse()
		s.analysed = true
		s.nextLoop = b.Tick + int64(e.p.TickIncrement)
		return d, err
	case s.analysed && b.Tick >= s.nextLoop:
		s.nextLoop = b.Tick + int64(e.p.TickIncrement)
		if e.pol != nil {
			return s.rebalance()
		}
		return s.loop()
	}
	return nil, nil
}

func (s *state) trim() {
	keep := max(s.e.p.history(), s.e.p.WindowDuration)
	if !s.analysed {
		keep = maxAnalysisTicks
	}
	if len(s.ticks) > keep {
		n := len(s.ticks) - keep
		copy(s.ticks, s.ticks[n:])
		for i := len(s.ticks) - n; i < len(s.ticks); i++ {
			s.ticks[i] = closedTick{}
		}
		s.ticks = s.ticks[:len(s.ticks)-n]
	}
}

// LastTick returns the last closed tick.
func (e *Engine) LastTick() (int64, bool) { return e.st.last, e.st.hasLast }

// Placement returns container -> current host for the active containers,
// including this engine's own moves.
func (e *Engine) Placement() map[string]string {
	m := make(map[string]string, len(e.st.hostOf))
	for id, h := range e.st.hostOf {
		m[e.st.reg.names[id]] = e.hosts[h].Name
	}
	return m
}

// Labels returns container -> cluster label for the active containers.
func (e *Engine) Labels() map[string]int {
	m := make(map[string]int, len(e.st.labels))
	for id, l := range e.st.labels {
		m[e.st.reg.names[id]] = l
	}
	return m
}

// features returns, per view position, the vector the method compares:
// the last W ticks of every metric, divided by that metric's scale. In
// upstream mode only the first metric, raw (spec 3.1).
func (s *state) features(v *windowView, w int) [][]float64 {
	e := s.e
	T := len(v.ticks)
	if w > T {
		w = T
	}
	metrics := len(e.p.Metrics)
	if e.p.Upstream {
		metrics = 1
	}
	scale := s.scales(v)
	out := make([][]float64, len(v.ids))
	buf := make([]float64, len(v.ids)*metrics*w)
	for i := range v.ids {
		f := buf[i*metrics*w : (i+1)*metrics*w : (i+1)*metrics*w]
		for m := 0; m < metrics; m++ {
			src := v.series[i][m][T-w:]
			for t, x := range src {
				f[m*w+t] = x / scale[m]
			}
		}
		out[i] = f
	}
	return out
}

// scales are what each metric is divided by before containers are compared:
// the largest declared capacity of that metric, so that one unit of every
// metric means "a whole host" and no metric dominates by its units. A
// metric without any declared capacity falls back to its largest observed
// value. Upstream mode compares raw values (scale 1).
func (s *state) scales(v *windowView) []float64 {
	e := s.e
	sc := make([]float64, len(e.p.Metrics))
	for m := range sc {
		sc[m] = 1
		if e.p.Upstream {
			continue
		}
		best := 0.0
		for _, h := range e.hosts {
			if c := h.Capacity[m]; c > best && !math.IsInf(c, 0) {
				best = c
			}
		}
		if best == 0 {
			for i := range v.series {
				for _, x := range v.series[i][m] {
					best = math.Max(best, x)
				}
			}
		}
		if best > 0 {
			sc[m] = best
		}
	}
	return sc
}

func dist(a, b []float64) float64 {
	var s float64
	for k := range a {
		d := a[k] - b[k]
		s += d * d
	}
	return math.Sqrt(s)
}

func ceilBudget(n int, frac float64) int {
	return int(math.Ceil(float64(n)*frac - 1e-9))
}
