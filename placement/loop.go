package placement

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"hots/placement/capacity"
	"hots/placement/clustering"
)

// evaluation is the working set of one evaluation: the view, features,
// host loads projected from the current placement, and the moves so far.
type evaluation struct {
	s     *state
	v     *windowView
	feat  [][]float64
	w     int // window length in ticks (the last w columns of the span)
	loads []capacity.Series
	moves []Move
	tick  int64
	// knownHost: every capacity of the host is declared (> 0).
	knownHost []bool
	// slacks and lows cache per-host room and per-container minimum demand
	// for bestTarget's pre-filter; a move invalidates its two hosts.
	slacks []hostSlack
	lows   [][]float64
	open   []int32 // see openHosts
	// initialRejected: the initial heuristic's placement was not better
	// than the observed one on the analysis period, so it was not applied.
	initialRejected bool
	// Operator limits: moves off and onto each host in this evaluation,
	// and the decided moves a limit refused.
	srcMoves, dstMoves map[int32]int
	heldBack           map[string]int
}

func (s *state) newEvaluation(span []closedTick) *evaluation {
	v := buildView(s.e, span, s.hostOf)
	ev := &evaluation{s: s, v: v, w: min(s.e.p.WindowDuration, len(span)), tick: span[len(span)-1].tick,
		srcMoves: map[int32]int{}, dstMoves: map[int32]int{}}
	ev.feat = s.features(v, ev.w)
	ev.knownHost = make([]bool, len(s.e.hosts))
	for h := range s.e.hosts {
		ev.knownHost[h] = hostKnown(s.e.hosts[h])
	}
	ev.slacks = make([]hostSlack, len(s.e.hosts))
	ev.lows = make([][]float64, len(v.ids))
	ev.loads = make([]capacity.Series, len(s.e.hosts))
	for h := range ev.loads {
		ev.loads[h] = capacity.NewSeries(len(s.e.p.Metrics), len(v.ticks))
	}
	for i := range v.ids {
		ev.loads[v.hosts[i]].Add(v.series[i])
	}
	return ev
}

// analyse ends the analysis period: first clustering on every analysis
// tick, optional initial placement, and the first "previous" costs.
func (s *state) analyse() (*Decision, error) {
	e := s.e
	ev := s.newEvaluation(s.ticks)
	all := s.features(ev.v, len(ev.v.ticks))
	labels, err := s.cluster(all)
	if err != nil {
		return nil, err
	}
	for i, id := range ev.v.ids {
		s.labels[id] = labels[i]
	}
	d := &Decision{Domain: e.domain, Tick: ev.tick, Kind: "initial"}
	if e.p.InitialPlacement && e.pol == nil {
		if err := ev.initialPlacement(); err != nil {
			return nil, err
		}
	}
	// Upstream's pre-loop costs cover the whole analysis period; ours use
	// the window length so that they compare like with like in loop 1.
	costFeat := ev.feat
	if e.p.Upstream {
		costFeat = all
	}
	s.prevClust = s.clusterCosts(ev.v, costFeat, nil)
	s.prevPlace = s.placementCosts(ev.v, costFeat)
	d.Moves = ev.moves
	d.Loop = ev.report(nil, nil, 0, 0, 0)
	d.Loop.InitialRejected = ev.initialRejected
	d.Loop.WindowStart = ev.v.ticks[0]
	return d, nil
}

func (s *state) cluster(x [][]float64) ([]int, error) {
	args := s.e.p.Clustering
	alg, err := clustering.New(args)
	if err != nil {
		return nil, err
	}
	if len(x) == 0 {
		return nil, nil
	}
	labels, err := alg.Cluster(x, args.K)
	if err != nil {
		return nil, fmt.Errorf("clustering %d containers: %w", len(x), err)
	}
	return labels, nil
}

// loop is one evaluation (spec 6.2 in our version).
func (s *state) loop() (*Decision, error) {
	e := s.e
	span := s.ticks[max(0, len(s.ticks)-e.p.history()):]
	ev := s.newEvaluation(span)
	v := ev.v
	n := len(v.ids)

	// Newcomers join the nearest existing profile and stay where they run.
	if err := ev.labelNewcomers(); err != nil {
		return nil, err
	}
	labelsOf := func() []int {
		l := make([]int, n)
		for i, id := range v.ids {
			l[i] = s.labels[id]
		}
		return l
	}
	before := labelsOf()

	// Clustering conflicts and re-clustering.
	curClust := s.clusterCosts(v, ev.feat, nil)
	cg := newConflictGraph(n, conflictEdges(v, curClust, s.prevClust, e.p.tolClust()))
	budget := ceilBudget(n, e.p.TolMove)
	cent := clustering.Centroids(ev.feat, before)
	far := func(c, p int) int {
		if dist(ev.feat[c], cent[before[c]]) > dist(ev.feat[p], cent[before[p]]) {
			return c
		}
		return p
	}
	movers := selectMovers(cg, budget, far, func(int) bool { return true })
	changes := ev.recluster(movers, before)
	if changes == 0 {
		s.prevClust = curClust
	} else {
		var oldLabels []int
		if e.p.Upstream {
			oldLabels = before // HEAD rebuilds w with the labels of build time
		}
		s.prevClust = s.clusterCostsReusing(v, ev.feat, oldLabels, curClust, before)
	}

	// Placement conflicts.
	curPlace := s.placementCosts(v, ev.feat)
	pg := newConflictGraph(n, conflictEdges(v, curPlace, s.prevPlace, e.p.tolPlace()))
	toMove := func(c, p int) int {
		h := v.hosts[c]
		cp := e.hosts[h].Capacity
		if capacity.FlatnessWithout(ev.loads[h], v.series[c], capOr1(cp)) < capacity.FlatnessWithout(ev.loads[h], v.series[p], capOr1(cp)) {
			return c
		}
		return p
	}
	eligible := func(i int) bool { return ev.mayMove(i) }
	placeMovers := selectMovers(pg, budget, toMove, eligible)

	overBefore := ev.windowOverloads()
	relief := ev.relieve(budget)
	ev.replace(placeMovers, budget, pg)
	overAfter := ev.windowOverloads()

	s.prevPlace = s.placementCosts(v, ev.feat)
	d := &Decision{Domain: e.domain, Tick: ev.tick, Kind: "loop", Moves: ev.moves}
	d.Loop = ev.report(&cg.stats, &pg.stats, changes, len(movers)+len(placeMovers), relief)
	d.Loop.WindowOverloadsBefore, d.Loop.WindowOverloadsAfter = overBefore, overAfter
	return d, nil
}

func capOr1(c []float64) []float64 {
	for _, x := range c {
		if !(x > 0) {
			out := slices.Clone(c)
			for m := range out {
				if !(out[m] > 0) {
					out[m] = 1
				}
			}
			return out
		}
	}
	return c
}

func (ev *evaluation) report(cg, pg *GraphStats, changes, selected, relief int) LoopReport {
	v := ev.v
	r := LoopReport{
		WindowStart:      v.ticks[len(v.ticks)-ev.w],
		WindowEnd:        ev.tick,
		Containers:       len(v.ids),
		ClusterChanges:   changes,
		Selected:         selected,
		OverloadSelected: relief,
		Moves:            len(ev.moves),
		HeldBack:         ev.heldBack,
	}
	hosts := map[int32]bool{}
	for _, h := range v.hosts {
		hosts[h] = true
	}
	r.Hosts = len(hosts)
	labels := map[int]bool{}
	for _, id := range v.ids {
		labels[ev.s.labels[id]] = true
	}
	r.Clusters = len(labels)
	if cg != nil {
		r.ClusterGraph = *cg
	}
	if pg != nil {
		r.PlacementGraph = *pg
	}
	return r
}

// labelNewcomers gives active containers without a label the label of the
// nearest cluster profile of the labelled ones (clustering from scratch if
// none is labelled).
func (ev *evaluation) labelNewcomers() error {
	s, v := ev.s, ev.v
	var fresh []int
	known := make([]int, 0, len(v.ids))
	for i, id := range v.ids {
		if _, ok := s.labels[id]; ok {
			known = append(known, i)
		} else {
			fresh = append(fresh, i)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	if len(known) == 0 {
		labels, err := s.cluster(ev.feat)
		if err != nil {
			return err
		}
		for i, id := range v.ids {
			s.labels[id] = labels[i]
		}
		return nil
	}
	kx := make([][]float64, len(known))
	kl := make([]int, len(known))
	for k, i := range known {
		kx[k] = ev.feat[i]
		kl[k] = s.labels[v.ids[i]]
	}
	cent := clustering.Centroids(kx, kl)
	for _, i := range fresh {
		s.labels[v.ids[i]] = clustering.Nearest(cent, ev.feat[i])
	}
	return nil
}

// recluster moves each selected container to the nearest profile of the
// containers that were not selected (spec 3.5), without updating profiles
// between containers. It returns how many labels changed.
func (ev *evaluation) recluster(movers []int, labels []int) int {
	if len(movers) == 0 {
		return 0
	}
	s, v := ev.s, ev.v
	moving := make([]bool, len(v.ids))
	for _, i := range movers {
		moving[i] = true
	}
	var rx [][]float64
	var rl []int
	for i := range v.ids {
		if !moving[i] {
			rx = append(rx, ev.feat[i])
			rl = append(rl, labels[i])
		}
	}
	if len(rx) == 0 {
		return 0
	}
	cent := clustering.Centroids(rx, rl)
	changes := 0
	for _, i := range movers {
		l := clustering.Nearest(cent, ev.feat[i])
		if l != labels[i] {
			s.labels[v.ids[i]] = l
			changes++
		}
	}
	return changes
}

// clusterCosts: for co-clustered pairs the distance of their features
// (spec 5.4: the clustering must-link dual is w_ij). With oldLabels (upstream
// mode after a re-clustering) the distance also counts the label column as
// HEAD's w does (spec 3.3).
func (s *state) clusterCosts(v *windowView, feat [][]float64, oldLabels []int) *pairTable {
	groupOf := make([]int32, len(v.ids))
	for i, id := range v.ids {
		groupOf[i] = int32(s.labels[id])
	}
	return buildPairs(v, len(s.reg.names), groupOf, func(i, j int) float64 {
		d := dist(feat[i], feat[j])
		if oldLabels != nil && oldLabels[i] != oldLabels[j] {
			dl := float64(oldLabels[i] - oldLabels[j])
			d = math.Sqrt(d*d + dl*dl)
		}
		return d
	})
}

// clusterCostsReusing is clusterCosts after a re-clustering: a pair whose
// two labels did not change keeps the distance already computed in cur
// (the label term is zero for it too), so only pairs touching a moved
// container are computed again.
func (s *state) clusterCostsReusing(v *windowView, feat [][]float64, oldLabels []int, cur *pairTable, before []int) *pairTable {
	groupOf := make([]int32, len(v.ids))
	changed := make([]bool, len(v.ids))
	for i, id := range v.ids {
		groupOf[i] = int32(s.labels[id])
		changed[i] = s.labels[id] != before[i]
	}
	return buildPairs(v, len(s.reg.names), groupOf, func(i, j int) float64 {
		if !changed[i] && !changed[j] {
			if val, _, ok := cur.get(v.ids[i], v.ids[j]); ok {
				return val
			}
		}
		d := dist(feat[i], feat[j])
		if oldLabels != nil && oldLabels[i] != oldLabels[j] {
			dl := float64(oldLabels[i] - oldLabels[j])
			d = math.Sqrt(d*d + dl*dl)
		}
		return d
	})
}

// placementCosts: for co-located pairs, 1 inside a cluster, else the
// variance of the two clusters' summed mean profiles (spec 5.2, 5.4).
func (s *state) placementCosts(v *windowView, feat [][]float64) *pairTable {
	labels := make([]int, len(v.ids))
	groupOf := make([]int32, len(v.ids))
	for i, id := range v.ids {
		labels[i] = s.labels[id]
		groupOf[i] = s.hostOf[id]
	}
	S := pairVariance(feat, labels, s.segments(feat))
	return buildPairs(v, len(s.reg.names), groupOf, func(i, j int) float64 {
		if labels[i] == labels[j] {
			return 1
		}
		return S[[2]int{min(labels[i], labels[j]), max(labels[i], labels[j])}]
	})
}

// segments is how many metric blocks a feature vector holds.
func (s *state) segments(feat [][]float64) int {
	if s.e.p.Upstream {
		return 1
	}
	return len(s.e.p.Metrics)
}

// pairVariance returns S[a][b] = Σ_metrics Var_t(P_a(t) + P_b(t)) for every
// pair of labels present (a < b), with population variance.
func pairVariance(feat [][]float64, labels []int, segments int) map[[2]int]float64 {
	out := map[[2]int]float64{}
	if len(feat) == 0 {
		return out
	}
	cent := clustering.Centroids(feat, labels)
	keys := make([]int, 0, len(cent))
	for l := range cent {
		keys = append(keys, l)
	}
	sort.Ints(keys)
	d := len(feat[0])
	w := d / segments
	sum := make([]float64, w)
	for x, a := range keys {
		for _, b := range keys[x+1:] {
			var total float64
			for m := 0; m < segments; m++ {
				pa, pb := cent[a][m*w:(m+1)*w], cent[b][m*w:(m+1)*w]
				for t := range sum {
					sum[t] = pa[t] + pb[t]
				}
				total += capacity.Variance(sum)
			}
			out[[2]int{a, b}] = total
		}
	}
	return out
}
