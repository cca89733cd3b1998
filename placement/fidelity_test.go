package placement

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"hots/placement/internal/tracedata"
)

// TestClosedFormEqualsUpstreamDuals replays upstream HEAD's reference run on
// thesis_ex_10 (spec 9.3) and checks, for every LP solve it traced, that the
// closed-form marginal costs of the same window, labels and hosts give the
// same pairs and values as GLPK's must-link duals (spec 5.4), and that our
// conflict graphs have the same edges as upstream's.
//
// What is taken from the trace: the initial labels (MiniBatchKMeans is not
// portable) and the partition after each re-clustering (it depends on
// upstream's hash-ordered ties, spec 6.4). Everything else (features,
// label-term distances, cluster pair variances, co-location from HEAD's
// read order and moves) is computed here.
func TestClosedFormEqualsUpstreamDuals(t *testing.T) {
	data := tracedata.Dir(t)
	ref := filepath.Join(data, "upstream/reference_runs/head_v2.0.2_thesis_ex_10")
	raw, err := os.ReadFile(filepath.Join(ref, "lp_duals_trace.json"))
	if err != nil {
		t.Skipf("reference run not found: %v", err)
	}
	var entries []struct {
		InitialLabels map[string]int     `json:"initial_labels"`
		Pb            int                `json:"pb"`
		Duals         map[string]float64 `json:"duals"`
		ConflictEdges [][2]string        `json:"conflict_edges"`
	}
	if err := json.Unmarshal(raw, &entries); err != nil {
		t.Fatal(err)
	}
	rows, err := tracedata.ReadUsage(filepath.Join(data, "upstream/thesis_ex_10/container_usage.csv"), "timestamp", "container_id", "machine_id", []string{"cpu"})
	if err != nil {
		t.Fatal(err)
	}
	byTick := map[int64][]Sample{}
	var tickList []int64
	for _, r := range rows {
		if byTick[r.Tick] == nil {
			tickList = append(tickList, r.Tick)
		}
		byTick[r.Tick] = append(byTick[r.Tick], Sample{Tick: r.Tick, Container: r.Container, Host: r.Host, Values: r.Values})
	}
	sort.Slice(tickList, func(i, j int) bool { return tickList[i] < tickList[j] })
	hosts := []Host{{Name: "n_1", Capacity: []float64{6}}, {Name: "n_2", Capacity: []float64{6}}}
	moves := readRefMoves(t, filepath.Join(ref, "moves.jsonl"))

	e, err := New("default", Params{Metrics: []string{"cpu"}, SepTime: 3, TickIncrement: 2, WindowDuration: 3, Upstream: true}, hosts)
	if err != nil {
		t.Fatal(err)
	}
	s := e.st
	// HEAD reads ticks <= 3, then (3,5], (5,7], ... one batch per loop; a
	// move stamped m applies to rows read after it with tick >= m (spec 2.1).
	batchOf := func(tick int64) int { // 0 = analysis, k = read at loop k
		if tick <= 3 {
			return 0
		}
		return int((tick - 2) / 2)
	}
	hostAt := func(c string, tick int64, trace string) string {
		h := trace
		for _, m := range moves {
			loopOfMove := int((m.time - 3) / 2)
			if batchOf(tick) > loopOfMove && tick >= m.time && m.container == c {
				h = m.newHost
			}
		}
		return h
	}
	span := func(from, to int64) ([]closedTick, map[int32]int32) {
		var out []closedTick
		hostOf := map[int32]int32{}
		for _, tick := range tickList {
			tb := TickBatch{Tick: tick, Samples: byTick[tick]}
			if tb.Tick < from || tb.Tick > to {
				continue
			}
			ct := closedTick{tick: tb.Tick}
			smp := append([]Sample(nil), tb.Samples...)
			for i := range smp {
				s.reg.id(smp[i].Container)
			}
			sort.Slice(smp, func(i, j int) bool { return s.reg.ids[smp[i].Container] < s.reg.ids[smp[j].Container] })
			for _, x := range smp {
				id := s.reg.ids[x.Container]
				h := e.hostIndex(hostAt(x.Container, tb.Tick, x.Host))
				ct.cont = append(ct.cont, id)
				ct.host = append(ct.host, h)
				ct.vals = append(ct.vals, x.Values...)
				if tb.Tick == from { // HEAD: host of the oldest row in the window
					hostOf[id] = h
				}
			}
			out = append(out, ct)
		}
		return out, hostOf
	}
	setLabels := func(byName map[string]int) {
		for name, l := range byName {
			s.labels[s.reg.id(name)] = l
		}
	}
	check := func(what string, got *pairTable, v *windowView, want map[string]float64) {
		t.Helper()
		gotMap := map[string]float64{}
		for g := range got.groups {
			got.each(g, func(a, b int32, val float64) {
				if math.Abs(val) < 1e-12 {
					return // the trace lists non-zero duals only
				}
				gotMap[pairKey(s.reg.names[a], s.reg.names[b])] = val
			})
		}
		if len(gotMap) != len(want) {
			t.Errorf("%s: %d pairs, upstream %d\n ours %v\n upstream %v", what, len(gotMap), len(want), gotMap, want)
		}
		for k, w := range want {
			g, ok := gotMap[k]
			if !ok {
				t.Errorf("%s: pair %s missing (upstream dual %v)", what, k, w)
				continue
			}
			if math.Abs(g-w) > 1e-6+5e-7 { // the trace is rounded to 6 decimals
				t.Errorf("%s: pair %s = %.7f, upstream dual %.7f", what, k, g, w)
			}
		}
	}
	checkEdges := func(what string, v *windowView, cur, prev *pairTable, want [][2]string) {
		t.Helper()
		var got []string
		for _, e := range conflictEdges(v, cur, prev, 0.1) {
			got = append(got, pairKey(v.names[e[0]], v.names[e[1]]))
		}
		var w []string
		for _, p := range want {
			w = append(w, pairKey(p[0], p[1]))
		}
		sort.Strings(got)
		sort.Strings(w)
		if len(got) != len(w) {
			t.Errorf("%s: edges %v, upstream %v", what, got, w)
			return
		}
		for i := range got {
			if got[i] != w[i] {
				t.Errorf("%s: edges %v, upstream %v", what, got, w)
				return
			}
		}
	}

	// Pre-loop: analysis ticks 0..3, initial labels, observed hosts.
	setLabels(entries[0].InitialLabels)
	sp, hostOf := span(0, 3)
	s.hostOf = hostOf
	v := buildView(e, sp, hostOf)
	feat := s.features(v, len(v.ticks))
	prevClust := s.clusterCosts(v, feat, nil)
	check("pre-loop clustering", prevClust, v, entries[1].Duals)
	prevPlace := s.placementCosts(v, feat)
	check("pre-loop placement", prevPlace, v, entries[2].Duals)

	labels := copyLabels(entries[0].InitialLabels)
	for k := 1; k <= 4; k++ {
		base := 3 + 6*(k-1)
		tmax := int64(3 + 2*k)
		sp, hostOf := span(tmax-2, tmax)
		s.hostOf = hostOf
		v := buildView(e, sp, hostOf)
		feat := s.features(v, len(v.ticks))
		setLabels(labels)
		cur := s.clusterCosts(v, feat, nil)
		check("loop "+strconv.Itoa(k)+" clustering", cur, v, entries[base].Duals)
		checkEdges("loop "+strconv.Itoa(k)+" clustering conflicts", v, cur, prevClust, entries[base+1].ConflictEdges)

		// Re-clustering as upstream did it; w keeps the labels of build time.
		old := make([]int, len(v.ids))
		for i, id := range v.ids {
			old[i] = s.labels[id]
		}
		labels = relabel(entries[base+2].Duals, labels)
		setLabels(labels)
		prevClust = s.clusterCosts(v, feat, old)
		check("loop "+strconv.Itoa(k)+" clustering after re-clustering", prevClust, v, entries[base+2].Duals)

		curPlace := s.placementCosts(v, feat)
		check("loop "+strconv.Itoa(k)+" placement", curPlace, v, entries[base+3].Duals)
		checkEdges("loop "+strconv.Itoa(k)+" placement conflicts", v, curPlace, prevPlace, entries[base+4].ConflictEdges)
		// HEAD re-solves with the unchanged window: same duals (spec 6.2.12).
		check("loop "+strconv.Itoa(k)+" placement after moves", curPlace, v, entries[base+5].Duals)
		prevPlace = curPlace
	}
}

func pairKey(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return a + "|" + b
}

func copyLabels(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// relabel derives the partition from a clustering solve's pairs (they are
// exactly the co-clustered pairs) and numbers each block with the label most
// of its members had (HEAD moves a container into an existing cluster).
func relabel(duals map[string]float64, old map[string]int) map[string]int {
	parent := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		if p, ok := parent[x]; ok && p != x {
			r := find(p)
			parent[x] = r
			return r
		}
		parent[x] = x
		return x
	}
	for k := range duals {
		var a, b string
		for i := range k {
			if k[i] == '|' {
				a, b = k[:i], k[i+1:]
			}
		}
		parent[find(a)] = find(b)
	}
	blocks := map[string][]string{}
	for c := range old {
		r := find(c)
		blocks[r] = append(blocks[r], c)
	}
	out := map[string]int{}
	for _, members := range blocks {
		count := map[int]int{}
		for _, c := range members {
			count[old[c]]++
		}
		best, bestN := 0, -1
		for l, n := range count {
			if n > bestN || (n == bestN && l < best) {
				best, bestN = l, n
			}
		}
		for _, c := range members {
			out[c] = best
		}
	}
	return out
}

type refMove struct {
	container, newHost string
	time               int64
}

func readRefMoves(t *testing.T, path string) []refMove {
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []refMove
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		var m struct {
			Container string `json:"container_name"`
			NewHost   string `json:"new_host"`
			Time      string `json:"time"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		tm, _ := strconv.ParseInt(m.Time, 10, 64)
		out = append(out, refMove{m.Container, m.NewHost, tm})
	}
	return out
}
