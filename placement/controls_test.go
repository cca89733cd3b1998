package placement_test

import (
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"hots/placement"
	"hots/placement/internal/testtrace"
)

// replayControls replays syn_n200 with the synthetic configuration and
// the given controls.
func replayControls(t *testing.T, tr *testtrace.Trace, c placement.Controls) *placement.ReplayResult {
	t.Helper()
	p := synthetic()
	p.Controls = c
	res, err := placement.Replay("", p, tr.Hosts, tr.Ticks)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestControlsHold: each operator control, on a shared trace, holds in
// every decision, and the limits that cut a decision are counted.
func TestControlsHold(t *testing.T) {
	tr := testtrace.Load(t, filepath.Join(testtrace.DataDir(t), "synthetic/syn_n200"), fields("cpu"))
	free := replayControls(t, tr, placement.Controls{})
	if len(free.Moves) < 10 {
		t.Fatalf("syn_n200 without controls: %d moves, too few to test controls", len(free.Moves))
	}
	// The busiest target and source of the free run: excluding them must
	// change something.
	targets, sources := map[string]int{}, map[string]int{}
	for _, m := range free.Moves {
		targets[m.NewHost]++
		sources[m.OldHost]++
	}
	top := func(c map[string]int) string {
		best := ""
		for h, n := range c {
			if best == "" || n > c[best] || (n == c[best] && h < best) {
				best = h
			}
		}
		return best
	}
	busyTarget, busySource := top(targets), top(sources)
	firstSeen := map[string]int64{}
	for _, tb := range tr.Ticks {
		for _, s := range tb.Samples {
			if _, ok := firstSeen[s.Container]; !ok {
				firstSeen[s.Container] = tb.Tick
			}
		}
	}
	pinned := []string{free.Moves[0].Container, "c_1?", "/^c_2[0-9]$/"}
	pinMatch := func(c string) bool {
		ok, _ := filepath.Match("c_1?", c)
		return ok || c == free.Moves[0].Container || (len(c) == 4 && strings.HasPrefix(c, "c_2"))
	}

	tests := []struct {
		name  string
		c     placement.Controls
		limit string // a limit that must have held something back
		check func(t *testing.T, res *placement.ReplayResult)
	}{
		{"pin by name, glob and regexp", placement.Controls{Pin: pinned}, "", func(t *testing.T, res *placement.ReplayResult) {
			for _, m := range res.Moves {
				if pinMatch(m.Container) {
					t.Errorf("pinned %s moved: %+v", m.Container, m)
				}
			}
		}},
		{"exclude hosts", placement.Controls{ExcludeHosts: []string{busyTarget, "n_1?"}}, "", func(t *testing.T, res *placement.ReplayResult) {
			for _, m := range res.Moves {
				if ok, _ := filepath.Match("n_1?", m.NewHost); ok || m.NewHost == busyTarget {
					t.Errorf("move onto excluded host: %+v", m)
				}
			}
		}},
		{"drain a host", placement.Controls{DrainHosts: []string{busySource}}, "", func(t *testing.T, res *placement.ReplayResult) {
			drained := 0
			for _, m := range res.Moves {
				if m.NewHost == busySource {
					t.Errorf("move onto a drained host: %+v", m)
				}
				if m.Reason == placement.ReasonDrain {
					drained++
					if m.OldHost != busySource {
						t.Errorf("drain move off another host: %+v", m)
					}
				}
			}
			if drained == 0 {
				t.Error("nothing drained")
			}
			last := res.Ticks[len(res.Ticks)-1]
			before, after := 0, 0
			for _, s := range last.Samples {
				if s.Host == busySource {
					after++
				}
				if s.TraceHost == busySource || (s.TraceHost == "" && s.Host == busySource) {
					before++
				}
			}
			if after >= before {
				t.Errorf("%s runs %d containers at the end, %d without moves", busySource, after, before)
			}
		}},
		{"max moves per loop", placement.Controls{MaxMovesPerLoop: 2}, placement.LimitPerLoop, func(t *testing.T, res *placement.ReplayResult) {
			for _, d := range res.Decisions {
				if len(d.Moves) > 2 {
					t.Errorf("tick %d: %d moves", d.Tick, len(d.Moves))
				}
			}
		}},
		{"max moves per source host", placement.Controls{MaxMovesPerSourceHost: 1}, placement.LimitPerSourceHost, func(t *testing.T, res *placement.ReplayResult) {
			for _, d := range res.Decisions {
				n := map[string]int{}
				for _, m := range d.Moves {
					if n[m.OldHost]++; n[m.OldHost] > 1 {
						t.Errorf("tick %d: %d moves off %s", d.Tick, n[m.OldHost], m.OldHost)
					}
				}
			}
		}},
		{"max moves per target host", placement.Controls{MaxMovesPerTargetHost: 1}, placement.LimitPerTargetHost, func(t *testing.T, res *placement.ReplayResult) {
			for _, d := range res.Decisions {
				n := map[string]int{}
				for _, m := range d.Moves {
					if n[m.NewHost]++; n[m.NewHost] > 1 {
						t.Errorf("tick %d: %d moves onto %s", d.Tick, n[m.NewHost], m.NewHost)
					}
				}
			}
		}},
		// 600 s ticks: an hour is 6 ticks.
		{"max moves per domain per rolling hour", placement.Controls{TickSeconds: 600, MaxMovesPerDomainPerHour: 3}, placement.LimitPerDomainPerHour, func(t *testing.T, res *placement.ReplayResult) {
			for _, m := range res.Moves {
				n := 0
				for _, o := range res.Moves {
					if o.Tick > m.Tick-6 && o.Tick <= m.Tick {
						n++
					}
				}
				if n > 3 {
					t.Errorf("%d moves in the hour up to tick %d", n, m.Tick)
				}
			}
		}},
		{"minimum age", placement.Controls{MinAgeTicks: 60}, placement.LimitMinAge, func(t *testing.T, res *placement.ReplayResult) {
			for _, m := range res.Moves {
				if m.Tick-firstSeen[m.Container] < 60 {
					t.Errorf("%s moved at tick %d, first seen at %d", m.Container, m.Tick, firstSeen[m.Container])
				}
			}
		}},
		// One-hour ticks: a day is 24 ticks.
		{"max moves per container per day", placement.Controls{TickSeconds: 3600, MaxMovesPerContainerPerDay: 1}, placement.LimitPerContainerPerDay, func(t *testing.T, res *placement.ReplayResult) {
			last := map[string]int64{}
			for _, m := range res.Moves {
				if l, ok := last[m.Container]; ok && m.Tick-l < 24 {
					t.Errorf("%s moved at ticks %d and %d", m.Container, l, m.Tick)
				}
				last[m.Container] = m.Tick
			}
		}},
		{"dry run", placement.Controls{DryRun: true}, "", func(t *testing.T, res *placement.ReplayResult) {
			if len(res.Moves) == 0 {
				t.Fatal("a dry run decided nothing")
			}
			for _, m := range res.Moves {
				if !m.DryRun {
					t.Errorf("move not marked dry_run: %+v", m)
				}
			}
			for _, tb := range res.Ticks {
				for _, s := range tb.Samples {
					if s.TraceHost != "" {
						t.Fatalf("tick %d: %s re-attributed from %s to %s in a dry run", tb.Tick, s.Container, s.TraceHost, s.Host)
					}
				}
			}
			if a, b := overloads(res.Ticks, tr.Hosts, false, 0), overloads(res.Ticks, tr.Hosts, true, 0); !reflect.DeepEqual(a, b) {
				t.Errorf("dry-run overloads %v, baseline %v", a, b)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := replayControls(t, tr, tc.c)
			tc.check(t, res)
			held := map[string]int{}
			for _, d := range res.Decisions {
				for k, n := range d.Loop.HeldBack {
					held[k] += n
				}
			}
			if tc.limit != "" && held[tc.limit] == 0 {
				t.Errorf("%s held nothing back (held %v; %d moves against %d free)", tc.limit, held, len(res.Moves), len(free.Moves))
			}
			for k := range held {
				if k != tc.limit {
					t.Errorf("held back by %s, which is not set", k)
				}
			}
			for _, m := range res.Moves {
				if m.Why == "" {
					t.Errorf("move without why: %+v", m)
				}
			}
			if again := replayControls(t, tr, tc.c); !reflect.DeepEqual(again.Moves, res.Moves) {
				t.Error("not deterministic")
			}
		})
	}
}

// TestCordonedHost: a host given with Cordoned (a nodes record with
// schedulable: false) is never a target, even when it is set mid-run.
func TestCordonedHost(t *testing.T) {
	tr := testtrace.Load(t, filepath.Join(testtrace.DataDir(t), "synthetic/syn_n200"), fields("cpu"))
	free := replayControls(t, tr, placement.Controls{})
	counts := map[string]int{}
	for _, m := range free.Moves {
		counts[m.NewHost]++
	}
	hosts := make([]string, 0, len(counts))
	for h := range counts {
		hosts = append(hosts, h)
	}
	sort.Slice(hosts, func(i, j int) bool {
		return counts[hosts[i]] > counts[hosts[j]] || (counts[hosts[i]] == counts[hosts[j]] && hosts[i] < hosts[j])
	})
	cordon := hosts[0]
	r, err := placement.NewReplayer("", synthetic(), tr.Hosts)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tr.Ticks {
		if tb.Tick == 40 {
			for _, h := range tr.Hosts {
				if h.Name == cordon {
					h.Cordoned = true
					if err := r.Engine().SetHost(h); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if _, _, err := r.Step(tb); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range r.Result().Moves {
		if m.NewHost == cordon && m.Tick >= 40 {
			t.Errorf("move onto cordoned %s: %+v", cordon, m)
		}
	}
}

func TestControlsValidate(t *testing.T) {
	for _, tc := range []struct {
		c     placement.Controls
		field string
	}{
		{placement.Controls{Pin: []string{"/[/"}}, "controls.pin"},
		{placement.Controls{ExcludeHosts: []string{"n_[1"}}, "controls.exclude_hosts"},
		{placement.Controls{MaxMovesPerDomainPerHour: 2}, "controls.limits.max_moves_per_domain_per_hour"},
		{placement.Controls{MaxMovesPerContainerPerDay: 2}, "controls.limits.max_moves_per_container_per_day"},
		{placement.Controls{MaxMovesPerLoop: -1}, "controls.limits.max_moves_per_loop"},
		{placement.Controls{TickSeconds: -1}, "controls.tick_seconds"},
	} {
		p := synthetic()
		p.Controls = tc.c
		_, err := placement.New("", p, nil)
		fe, ok := err.(*placement.FieldError)
		if !ok || fe.Field != tc.field {
			t.Errorf("%+v: error %v, want one on %s", tc.c, err, tc.field)
		}
	}
}

// withPins copies ticks, marking pinned the samples pin says.
func withPins(ticks []placement.TickBatch, pin func(tick int64, container string) bool) []placement.TickBatch {
	out := make([]placement.TickBatch, len(ticks))
	for i, tb := range ticks {
		tb.Samples = slices.Clone(tb.Samples)
		for k := range tb.Samples {
			tb.Samples[k].Pinned = pin(tb.Tick, tb.Samples[k].Container)
		}
		out[i] = tb
	}
	return out
}

// TestPinnedSamples: a container whose newest sample is Pinned never
// moves, the same as controls.pin naming it; a later unpinned sample lets
// it move again; all-false marks change nothing.
func TestPinnedSamples(t *testing.T) {
	tr := testtrace.Load(t, filepath.Join(testtrace.DataDir(t), "synthetic/syn_n200"), fields("cpu"))
	free := replayControls(t, tr, placement.Controls{})
	movers := map[string]bool{}
	var names []string
	for _, m := range free.Moves {
		if !movers[m.Container] {
			movers[m.Container] = true
			names = append(names, m.Container)
		}
	}
	if len(names) < 3 {
		t.Fatalf("syn_n200 moved %d containers, too few", len(names))
	}
	replay := func(ticks []placement.TickBatch, c placement.Controls) *placement.ReplayResult {
		t.Helper()
		p := synthetic()
		p.Controls = c
		res, err := placement.Replay("", p, tr.Hosts, ticks)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	t.Run("unmarked and all false equal the free run", func(t *testing.T) {
		res := replay(withPins(tr.Ticks, func(int64, string) bool { return false }), placement.Controls{})
		if !reflect.DeepEqual(res.Moves, free.Moves) {
			t.Errorf("all-false pins: %d moves, free run %d", len(res.Moves), len(free.Moves))
		}
	})
	t.Run("pinned throughout never moves, as controls.pin", func(t *testing.T) {
		res := replay(withPins(tr.Ticks, func(_ int64, c string) bool { return movers[c] }), placement.Controls{})
		for _, m := range res.Moves {
			if movers[m.Container] {
				t.Errorf("pinned %s moved: %+v", m.Container, m)
			}
		}
		if len(res.Moves) == 0 {
			t.Log("nothing else moved")
		}
		byConfig := replay(tr.Ticks, placement.Controls{Pin: names})
		if !reflect.DeepEqual(res.Moves, byConfig.Moves) {
			t.Errorf("pinned by the input: %d moves; by controls.pin: %d", len(res.Moves), len(byConfig.Moves))
		}
		if again := replay(withPins(tr.Ticks, func(_ int64, c string) bool { return movers[c] }), placement.Controls{}); !reflect.DeepEqual(again.Moves, res.Moves) {
			t.Error("not deterministic")
		}
	})
	t.Run("the newest sample decides: unpinned later, moves again", func(t *testing.T) {
		// Pinned up to the middle of the loops, unpinned after.
		until := free.Decisions[len(free.Decisions)/2].Tick
		res := replay(withPins(tr.Ticks, func(tick int64, c string) bool { return movers[c] && tick <= until }), placement.Controls{})
		later := 0
		for _, m := range res.Moves {
			if movers[m.Container] {
				if m.Tick <= until {
					t.Errorf("%s moved at tick %d while pinned (up to %d)", m.Container, m.Tick, until)
				}
				later++
			}
		}
		if later == 0 {
			t.Errorf("none of the %d containers moved after they were unpinned at tick %d", len(names), until)
		}
		// Pinned only at one loop tick: that loop leaves them alone, the
		// next ones do not.
		at := free.Moves[0].Tick
		res = replay(withPins(tr.Ticks, func(tick int64, c string) bool { return movers[c] && tick == at }), placement.Controls{})
		for _, m := range res.Moves {
			if movers[m.Container] && m.Tick == at {
				t.Errorf("%s moved at tick %d, its pinned tick", m.Container, at)
			}
		}
	})
}
