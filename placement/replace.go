package placement

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"hots/placement/capacity"
	"hots/placement/initial"
)

// mayMove: not moved in this evaluation and out of its cool-down.
func (ev *evaluation) mayMove(i int) bool {
	id := ev.v.ids[i]
	if t, ok := ev.s.movedAt[id]; ok && ev.tick < t+ev.s.e.p.cooldown() {
		return false
	}
	return !ev.s.pinned(id)
}

func (ev *evaluation) known(h int32) bool { return ev.knownHost[h] }

func hostKnown(h Host) bool {
	for _, c := range h.Capacity {
		if !(c > 0) {
			return false
		}
	}
	return true
}

// bestTarget returns the feasible host where the container costs least
// energy (Σ (load/capacity)², the two hosts together), then the lowest
// peak, then node_meta order, or -1. Energy rather than flatness ranks
// targets because it counts both level and covariance: a target whose
// profile complements the container's (the HOTS idea) and that has room
// scores best, and a nearly full one scores badly even if flat.
//
// Feasible means within Headroom×capacity on every metric at every tick of
// the span, counting the moves already decided in this evaluation (they are
// in ev.loads), with a safety margin learnt from the combined series
// (capacity.AssessMargin, Params.Margin): on pl_20110322 targets filled to
// their history's peak overloaded again within a loop (45 of 746 moves
// landed on a host overloaded within tick_increment ticks, 0 with the
// margin).
//
// limited says that a host at its target limit (MaxMovesPerTargetHost)
// would have been chosen: the caller counts it if it acts on the answer.
func (ev *evaluation) bestTarget(i int) (best int32, limited bool) {
	e := ev.s.e
	x := ev.v.series[i]
	from := ev.v.hosts[i]
	best, bestCost, bestPeak := int32(-1), math.Inf(1), math.Inf(1)
	fullCost, fullPeak := math.Inf(1), math.Inf(1) // the best host at its target limit
	better := func(c, p, bc, bp float64) bool {
		return c < bc-1e-12 || (math.Abs(c-bc) <= 1e-12 && p < bp-1e-12)
	}
	low := ev.lows[i]
	if low == nil {
		low = make([]float64, len(x))
		for m := range x {
			low[m] = math.Inf(1)
			for _, v := range x[m] {
				low[m] = math.Min(low[m], v)
			}
		}
		ev.lows[i] = low
	}
	back, guarded := ev.s.leftHost(ev.v.ids[i], ev.tick)
	cf := capOr1(e.hosts[from].Capacity)
	for _, h32 := range ev.openHosts() {
		h := int(h32)
		if h32 == from || (guarded && h32 == back) || !ev.roomFor(h32, low) {
			continue
		}
		fits, _, pk := capacity.AssessMargin(ev.loads[h], x, e.hosts[h].Capacity, e.p.Headroom, e.p.Margin)
		if !fits {
			continue
		}
		cost := -moveEnergyGain(ev.loads[from], ev.loads[h], x, cf, e.hosts[h].Capacity)
		if ev.targetFull(h32) {
			if better(cost, pk, fullCost, fullPeak) {
				fullCost, fullPeak = cost, pk
			}
			continue
		}
		if better(cost, pk, bestCost, bestPeak) {
			best, bestCost, bestPeak = h32, cost, pk
		}
	}
	// A host at its target limit would have won: best is the next best.
	return best, !math.IsInf(fullCost, 1) && (best < 0 || better(fullCost, fullPeak, bestCost, bestPeak))
}

// roomFor is a cheap necessary condition for a host to receive a container
// whose smallest demand per metric is low: the host must have some tick
// with at least that much room, and no tick already over its limit (a
// demand is never negative, so an overloaded tick stays overloaded). In a
// saturated domain it spares the full per-tick check for most hosts.
func (ev *evaluation) roomFor(h int32, low []float64) bool {
	sl := ev.slack(h)
	for m := range low {
		if sl.min[m] < 0 || sl.max[m] < low[m] {
			return false
		}
	}
	return true
}

// openHosts lists, in host order, the hosts with known capacity and room at
// every tick: the only possible targets. Built once per evaluation and kept
// current on moves, it is what keeps a saturated domain (thousands of hosts
// already over capacity) from costing hosts × candidates.
func (ev *evaluation) openHosts() []int32 {
	if ev.open == nil {
		ev.open = []int32{}
		for h := range ev.s.e.hosts {
			if ev.isOpen(int32(h)) {
				ev.open = append(ev.open, int32(h))
			}
		}
	}
	return ev.open
}

func (ev *evaluation) isOpen(h int32) bool {
	if !ev.known(h) || ev.s.e.excluded(h) {
		return false
	}
	for _, r := range ev.slack(h).min {
		if r < 0 {
			return false
		}
	}
	return true
}

// refreshOpen updates one host's membership after its load changed.
func (ev *evaluation) refreshOpen(h int32) {
	if ev.open == nil {
		return
	}
	i, found := slices.BinarySearch(ev.open, h)
	switch open := ev.isOpen(h); {
	case open && !found:
		ev.open = slices.Insert(ev.open, i, h)
	case !open && found:
		ev.open = slices.Delete(ev.open, i, i+1)
	}
}

// hostSlack is min and max over ticks of (capacity·headroom − load).
type hostSlack struct{ min, max []float64 }

func (ev *evaluation) slack(h int32) hostSlack {
	if sl := ev.slacks[h]; sl.min != nil {
		return sl
	}
	cp := ev.s.e.hosts[h].Capacity
	l := ev.loads[h]
	sl := hostSlack{make([]float64, len(l)), make([]float64, len(l))}
	for m := range l {
		sl.min[m], sl.max[m] = math.Inf(1), math.Inf(-1)
		limit := cp[m] * ev.s.e.p.Headroom
		for _, v := range l[m] {
			r := limit - v
			sl.min[m] = math.Min(sl.min[m], r)
			sl.max[m] = math.Max(sl.max[m], r)
		}
	}
	ev.slacks[h] = sl
	return sl
}

// move applies a decision to the evaluation and records it. why says, in
// words, why the container leaves its host; move adds what the target and
// the source look like with the move.
func (ev *evaluation) move(i int, to int32, reason, why string) {
	e := ev.s.e
	v := ev.v
	from := v.hosts[i]
	x := v.series[i]
	m := Move{
		ID:        MoveID(e.domain, ev.tick, v.names[i]),
		Domain:    e.domain,
		Tick:      ev.tick,
		Container: v.names[i],
		OldHost:   e.hosts[from].Name,
		NewHost:   e.hosts[to].Name,
		Reason:    reason,
		DryRun:    e.p.Controls.DryRun,
	}
	m.TargetPeakBefore = round6(capacity.PeakUtil(ev.loads[to], nil, e.hosts[to].Capacity))
	m.TargetPeakAfter = round6(capacity.PeakUtil(ev.loads[to], x, e.hosts[to].Capacity))
	if ev.known(from) {
		m.SourcePeakBefore = round6(capacity.PeakUtil(ev.loads[from], nil, e.hosts[from].Capacity))
	}
	ev.loads[from].Sub(x)
	ev.loads[to].Add(x)
	ev.slacks[from], ev.slacks[to] = hostSlack{}, hostSlack{}
	ev.refreshOpen(from)
	ev.refreshOpen(to)
	if ev.known(from) {
		m.SourcePeakAfter = round6(capacity.PeakUtil(ev.loads[from], nil, e.hosts[from].Capacity))
	}
	m.Why = why + ev.targetWhy(m, x, to)
	v.hosts[i] = to
	s := ev.s
	id := v.ids[i]
	s.hostOf[id] = to
	s.movedAt[id] = ev.tick
	s.left[id] = departure{host: from, tick: ev.tick}
	ev.srcMoves[from]++
	ev.dstMoves[to]++
	c := e.p.Controls
	if c.MaxMovesPerDomainPerHour > 0 {
		s.domainMoves = append(s.domainMoves, ev.tick)
	}
	if c.MaxMovesPerContainerPerDay > 0 {
		s.ctrMoves[id] = append(trimRecent(s.ctrMoves[id], ev.tick, c.dayTicks()), ev.tick)
	}
	ev.moves = append(ev.moves, m)
}

func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

// replace re-places the containers the placement conflict graph selected,
// largest first. A conflict edge says a co-location is no longer what it
// was, not which end of it should go: for each selected container the
// candidates are itself and its conflict neighbours on the same host. Each
// goes to its best feasible target (bestTarget), and the candidate whose
// move lowers the two hosts' energy most wins. A move is made only if it
// lowers that energy at all: a conflict is a reason to look, not a reason
// to move.
//
// Energy (Σ (load/capacity)² over metrics and ticks) rather than variance
// decides whether to move because variance ignores level: moving a
// container always shifts both hosts' levels, and a move that flattens the
// projected series while piling load on one host makes the realised load
// both higher and more uneven over time (measured on thesis_ex_10: 1.18 ->
// 1.60 host-load variance with a variance test, 1.18 -> 1.02 with energy).
func (ev *evaluation) replace(movers []int, budget int, g *conflictGraph) {
	e := ev.s.e
	v := ev.v
	if !e.p.ConflictMoves {
		return
	}
	order := append([]int(nil), movers...)
	pk := make(map[int]float64, len(order))
	for _, i := range order {
		pk[i] = ev.scaledPeak(i)
	}
	sort.SliceStable(order, func(a, b int) bool {
		if pk[order[a]] != pk[order[b]] {
			return pk[order[a]] > pk[order[b]]
		}
		return order[a] < order[b]
	})
	for _, c := range order {
		if len(ev.moves) >= budget {
			return
		}
		cands := []int{c}
		for _, nb := range g.adj[g.start[c]:g.start[c+1]] {
			if v.hosts[nb] == v.hosts[c] {
				cands = append(cands, int(nb))
			}
		}
		bestI, bestTo, bestGain, bestLimited := -1, int32(-1), 1e-12, false
		for _, i := range cands {
			if !ev.mayMove(i) {
				continue
			}
			to, limited := ev.bestTarget(i)
			if to < 0 {
				continue
			}
			from := v.hosts[i]
			x := v.series[i]
			gain := moveEnergyGain(ev.loads[from], ev.loads[to], x, capOr1(e.hosts[from].Capacity), e.hosts[to].Capacity)
			if gain > bestGain {
				bestI, bestTo, bestGain, bestLimited = i, to, gain, limited
			}
		}
		if bestI < 0 {
			continue
		}
		if bestLimited {
			ev.hold(LimitPerTargetHost)
		}
		if lim := ev.admit(bestI); lim != "" {
			ev.hold(lim)
			if globalLimit(lim) {
				return
			}
			continue
		}
		partner := c
		if bestI == c {
			for _, i := range cands[1:] {
				partner = i
				break
			}
		}
		why := fmt.Sprintf("placement conflict on %s: the marginal cost of %s next to %s changed by more than tol_place %.2f since the last loop; %s (cluster %d) is the one whose move lowers the two hosts' energy most (by %.3f)",
			e.hosts[v.hosts[bestI]].Name, v.names[c], v.names[partner], e.p.tolPlace(), v.names[bestI], ev.s.labels[v.ids[bestI]], bestGain)
		if partner == c {
			why = fmt.Sprintf("placement conflict on %s: the marginal costs of %s (cluster %d) changed by more than tol_place %.2f since the last loop; its move lowers the two hosts' energy by %.3f",
				e.hosts[v.hosts[bestI]].Name, v.names[c], ev.s.labels[v.ids[bestI]], e.p.tolPlace(), bestGain)
		}
		ev.move(bestI, bestTo, ReasonConflict, why)
	}
}

// energy is Σ_t Σ_m (load/cap)²: it grows with both unevenness over time
// and a high level, so lowering it flattens hosts without piling load on
// one of them.
func energy(l capacity.Series, cp []float64) float64 {
	var e float64
	for m := range l {
		for _, v := range l[m] {
			u := v / cp[m]
			e += u * u
		}
	}
	return e
}

// moveEnergyGain is how much moving x from a host with load lf to one with
// load lt lowers the two hosts' energy.
func moveEnergyGain(lf, lt, x capacity.Series, cf, ct []float64) float64 {
	var d float64
	for m := range x {
		a, b := cf[m]*cf[m], ct[m]*ct[m]
		for t, v := range x[m] {
			d += (2*lt[m][t]*v+v*v)/b + (-2*lf[m][t]*v+v*v)/a
		}
	}
	return -d
}

// scaledPeak is a container's largest demand as a fraction of the largest
// capacity of each metric: the order "largest first" uses.
func (ev *evaluation) scaledPeak(i int) float64 {
	var p float64
	for m, s := range ev.v.series[i] {
		c := 1.0
		for _, h := range ev.s.e.hosts {
			c = math.Max(c, h.Capacity[m])
		}
		for _, x := range s {
			p = math.Max(p, x/c)
		}
	}
	return p
}

// relieve moves containers off hosts at risk, whatever the conflict graphs
// say. A host is at risk when the current placement would have overloaded
// it at ReliefTicks ticks of the span or more (a recurring peak: the
// synthetic daily waves), or when its forecast, window mean plus ForecastZ
// standard deviations, exceeds capacity (bursty real load, where
// one past burst says little about the next but a high, noisy level does).
// Hosts go most excess first; from each, the movable containers go biggest
// first (window usage as a fraction of the host's capacity) to their best
// target, until the span is within capacity and the forecast is clear.
// Biggest first buys the most room per move: on pl_20110322 the smallest
// container that cleared the past excess left the host at the edge, and
// it overloaded again a loop later. Returns how many containers it moved.
func (ev *evaluation) relieve(budget int) int {
	e := ev.s.e
	v := ev.v
	type over struct {
		h      int32
		excess float64
		drain  bool
	}
	members := make([][]int, len(e.hosts))
	for i, h := range v.hosts {
		members[h] = append(members[h], i)
	}
	var hosts []over
	for h := range e.hosts {
		h32 := int32(h)
		cp := e.hosts[h].Capacity
		if e.draining(h32) {
			if len(members[h]) > 0 {
				hosts = append(hosts, over{h: h32, drain: true})
			}
			continue
		}
		if !ev.known(h32) || (overloadedTicks(ev.loads[h], cp) < e.p.ReliefTicks && !ev.forecastRisk(h32)) {
			continue
		}
		hosts = append(hosts, over{h32, scaledSum(capacity.Excess(ev.loads[h], cp), cp), false})
	}
	// Drained hosts first (operator's order: host order), then most excess.
	sort.Slice(hosts, func(a, b int) bool {
		if hosts[a].drain != hosts[b].drain {
			return hosts[a].drain
		}
		if hosts[a].excess != hosts[b].excess {
			return hosts[a].excess > hosts[b].excess
		}
		return hosts[a].h < hosts[b].h
	})
	moved := 0
	for _, o := range hosts {
		cp := capOr1(e.hosts[o.h].Capacity)
		size := make(map[int]float64, len(members[o.h]))
		for _, i := range members[o.h] {
			for m, x := range v.series[i] {
				for _, y := range x[len(x)-ev.w:] {
					size[i] += y / cp[m]
				}
			}
			size[i] /= float64(ev.w * len(cp))
		}
		cands := slices.Clone(members[o.h])
		sort.SliceStable(cands, func(a, b int) bool { return size[cands[a]] > size[cands[b]] })
		reason, why, what := ReasonOverload, "", "its largest movable container"
		if o.drain {
			reason, why, what = ReasonDrain, e.hosts[o.h].Name+" is being drained (controls.drain_hosts)", "the largest container left on it that may move"
		} else {
			why = ev.riskWhy(o.h)
		}
		// Every failed attempt scans every host; a host that nothing can
		// leave (the whole domain is full) must not cost n×hosts.
		tries := 0
		for _, i := range cands {
			if len(ev.moves) >= budget || tries >= maxReliefAttempts ||
				(!o.drain && !capacity.Overloaded(ev.loads[o.h], e.hosts[o.h].Capacity) && !ev.forecastRisk(o.h)) {
				break
			}
			if !ev.mayMove(i) {
				continue
			}
			tries++
			to, limited := ev.bestTarget(i)
			if limited {
				ev.hold(LimitPerTargetHost)
			}
			if to < 0 {
				continue
			}
			if lim := ev.admit(i); lim != "" {
				ev.hold(lim)
				if globalLimit(lim) && len(ev.moves)+ev.heldBack[lim] >= budget {
					return moved // the method's own budget is used up too
				}
				if globalLimit(lim) || lim == LimitPerSourceHost {
					break
				}
				continue
			}
			ev.move(i, to, reason, why+ev.containerWhy(i, size[i], what))
			moved++
		}
	}
	return moved
}

// forecastRisk: on some metric, the host's window mean plus ForecastZ
// standard deviations of its load over the whole span exceeds capacity.
// The level comes from the window (it follows the trend), the spread from
// the span: twelve ticks of a bursty host give a noisy deviation, and on
// pl_20110322 the span's made the same cells cost fewer moves (75 cells
// with 83 moves against 81 with 88 at the window's).
func (ev *evaluation) forecastRisk(h int32) bool {
	cp := ev.s.e.hosts[h].Capacity
	for m, full := range ev.loads[h] {
		mean, _ := meanSD(full[len(full)-ev.w:])
		_, sd := meanSD(full)
		if mean+ev.s.e.p.ForecastZ*sd > cp[m] {
			return true
		}
	}
	return false
}

// meanSD returns the mean and population standard deviation of x.
func meanSD(x []float64) (float64, float64) {
	var sum, sq float64
	for _, v := range x {
		sum += v
		sq += v * v
	}
	n := float64(len(x))
	mean := sum / n
	return mean, math.Sqrt(math.Max(0, sq/n-mean*mean))
}

// overloadedTicks counts the ticks at which some metric is over capacity.
func overloadedTicks(l capacity.Series, cp []float64) int {
	n := 0
	for t := range l[0] {
		for m := range l {
			if capacity.CellOverloaded(l[m][t], cp[m]) {
				n++
				break
			}
		}
	}
	return n
}

// maxReliefAttempts bounds the containers tried per overloaded host.
const maxReliefAttempts = 16

func scaledSum(s capacity.Series, cp []float64) float64 {
	var t float64
	for m := range s {
		for _, x := range s[m] {
			t += x / cp[m]
		}
	}
	return t
}

// windowOverloads counts (host, tick) cells of the window over capacity on
// any metric, for hosts with known capacity.
func (ev *evaluation) windowOverloads() int {
	e := ev.s.e
	T := len(ev.v.ticks)
	n := 0
	for h := range e.hosts {
		if !ev.known(int32(h)) {
			continue
		}
		cp := e.hosts[h].Capacity
		for t := T - ev.w; t < T; t++ {
			for m := range cp {
				if ev.loads[h][m][t] > cp[m]*(1+1e-9) {
					n++
					break
				}
			}
		}
	}
	return n
}

// lowersEnergy reports whether placing every container on to[i] would
// lower the domain's energy (Σ (load/capacity)²) over the analysis period.
// The heuristics pack hosts to the analysis period's peaks; a placement
// that is not even better on the data it was fitted to is not worth its
// moves.
func (ev *evaluation) lowersEnergy(to []int) bool {
	e := ev.s.e
	now, next := make([]capacity.Series, len(e.hosts)), make([]capacity.Series, len(e.hosts))
	for h := range e.hosts {
		now[h] = capacity.NewSeries(len(e.p.Metrics), len(ev.v.ticks))
		next[h] = capacity.NewSeries(len(e.p.Metrics), len(ev.v.ticks))
	}
	for i := range ev.v.ids {
		now[ev.v.hosts[i]].Add(ev.v.series[i])
		h := ev.v.hosts[i]
		if to[i] >= 0 {
			h = int32(to[i])
		}
		next[h].Add(ev.v.series[i])
	}
	var a, b float64
	for h := range e.hosts {
		cp := capOr1(e.hosts[h].Capacity)
		a += energy(now[h], cp)
		b += energy(next[h], cp)
	}
	return b < a
}

// initialPlacement runs the configured heuristic over the analysis period
// and turns its answer into moves.
func (ev *evaluation) initialPlacement() error {
	e := ev.s.e
	v := ev.v
	heur, err := initial.NewWithOptions(e.p.InitialMethod, initial.Options{Headroom: e.p.Headroom, SpreadAll: true})
	if err != nil {
		return err
	}
	var p initial.Problem
	for _, h := range e.hosts {
		p.Hosts = append(p.Hosts, initial.Host{Name: h.Name, Capacity: h.Capacity})
	}
	// The view is in name order, which is what heuristics expect.
	for i, id := range v.ids {
		p.Containers = append(p.Containers, initial.Container{ID: v.names[i], Label: ev.s.labels[id], Demand: v.series[i], Host: int(v.hosts[i])})
	}
	to, err := heur.Place(p)
	if err != nil {
		return err
	}
	if !ev.lowersEnergy(to) {
		ev.initialRejected = true
		return nil
	}
	// The heuristic's placement is one decision: intermediate states of
	// applying it container by container can be far over capacity, so each
	// move's expected peaks compare the observed placement with the final
	// one rather than with a half-applied one.
	before := make([]float64, len(e.hosts))
	for h := range e.hosts {
		before[h] = ev.peakOf(int32(h))
	}
	first := len(ev.moves)
	whys := ev.applyInitial(to)
	for k := first; k < len(ev.moves); k++ {
		m := &ev.moves[k]
		from, to := int32(e.hostIx[m.OldHost]), int32(e.hostIx[m.NewHost])
		m.TargetPeakBefore, m.TargetPeakAfter = round6(before[to]), round6(ev.peakOf(to))
		m.SourcePeakBefore, m.SourcePeakAfter = round6(before[from]), round6(ev.peakOf(from))
		m.Why = whys[k-first] + ev.targetWhy(*m, nil, to)
	}
	return nil
}

// peakOf is a host's peak utilisation over the span (0 for a host without
// declared capacity).
func (ev *evaluation) peakOf(h int32) float64 {
	if !ev.known(h) {
		return 0
	}
	return capacity.PeakUtil(ev.loads[h], nil, ev.s.e.hosts[h].Capacity)
}

// applyInitial applies at most the initial budget of the heuristic's
// placement (Params.InitialTolMove): its moves by decreasing energy gain
// on the observed placement, each only if its target still fits over the
// analysis period with the moves already applied. A packing moves nearly
// every container at once (the bundled sample: 35 of 40 at tick 23), more
// churn than any operator grants one decision; the loops carry on from the
// placement reached.
//
// It returns the why of each move made, without the targets' part (the
// caller adds it once every move is applied).
func (ev *evaluation) applyInitial(to []int) []string {
	e := ev.s.e
	v := ev.v
	type cand struct {
		i    int
		gain float64
	}
	var cands []cand
	for i, h := range to {
		if h < 0 || int32(h) == v.hosts[i] || !ev.mayMove(i) {
			continue
		}
		from := v.hosts[i]
		g := moveEnergyGain(ev.loads[from], ev.loads[h], v.series[i], capOr1(e.hosts[from].Capacity), capOr1(e.hosts[h].Capacity))
		cands = append(cands, cand{i, g})
	}
	sort.SliceStable(cands, func(a, b int) bool { return cands[a].gain > cands[b].gain })
	budget := ceilBudget(len(v.ids), e.p.initialTolMove())
	moved := 0
	var whys []string
	for _, c := range cands {
		if moved >= budget {
			return whys
		}
		h := int32(to[c.i])
		if !ev.known(h) || e.excluded(h) || !capacity.FitsScaled(ev.loads[h], v.series[c.i], e.hosts[h].Capacity, e.p.Headroom) {
			continue
		}
		if ev.targetFull(h) {
			ev.hold(LimitPerTargetHost)
			continue
		}
		if lim := ev.admit(c.i); lim != "" {
			ev.hold(lim)
			if globalLimit(lim) {
				return whys
			}
			continue
		}
		why := fmt.Sprintf("initial placement (%s over the %d ticks of the analysis period) puts %s (cluster %d) on %s; applied by energy gain, this move's is %.3f",
			e.p.InitialMethod, len(v.ticks), v.names[c.i], ev.s.labels[v.ids[c.i]], e.hosts[h].Name, c.gain)
		whys = append(whys, why)
		ev.move(c.i, h, ReasonInitial, why)
		moved++
	}
	return whys
}
