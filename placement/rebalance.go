package placement

import (
	"fmt"

	"hots/placement/capacity"
	"hots/placement/policy"
)

// rebalance is a loop decided by a baseline policy instead of the HOTS
// method: same schedule, budget and cool-down, over the last window only
// (a baseline sees what a descheduler sees). The engine still refuses what
// no policy may do: moving a container in its cool-down or twice in a
// loop, a no-op move, and a move onto a host the window already shows over
// capacity. Whether the target stays within capacity after the move is the
// policy's own judgement, so a baseline is measured as it would run.
func (s *state) rebalance() (*Decision, error) {
	e := s.e
	span := s.ticks[max(0, len(s.ticks)-e.p.WindowDuration):]
	ev := s.newEvaluation(span)
	v := ev.v
	n := len(v.ids)
	budget := ceilBudget(n, e.p.TolMove)
	for len(s.memory) < len(e.hosts) {
		s.memory = append(s.memory, 0)
	}
	p := &policy.Problem{Budget: budget, Memory: s.memory, Hosts: make([]policy.Host, len(e.hosts)), Containers: make([]policy.Container, n)}
	for h, host := range e.hosts {
		p.Hosts[h] = policy.Host{Name: host.Name, Capacity: host.Capacity, Known: ev.known(int32(h))}
	}
	for i := range v.ids {
		p.Containers[i] = policy.Container{ID: v.names[i], Host: int(v.hosts[i]), Usage: v.series[i], Movable: ev.mayMove(i)}
	}
	overBefore := ev.windowOverloads()
	for _, mv := range e.pol.Rebalance(p) {
		if len(ev.moves) >= budget {
			break
		}
		i, to := mv.Container, int32(mv.To)
		if i < 0 || i >= n || to < 0 || int(to) >= len(e.hosts) || to == v.hosts[i] || !ev.mayMove(i) ||
			!ev.known(to) || e.excluded(to) || capacity.Overloaded(ev.loads[to], e.hosts[to].Capacity) {
			continue
		}
		if ev.targetFull(to) {
			ev.hold(LimitPerTargetHost)
			continue
		}
		if lim := ev.admit(i); lim != "" {
			ev.hold(lim)
			if globalLimit(lim) {
				break
			}
			continue
		}
		from := v.hosts[i]
		why := fmt.Sprintf("policy %s moved %s off %s", e.p.Policy.Name, v.names[i], e.hosts[from].Name)
		if ev.known(from) {
			why += fmt.Sprintf(" (window mean utilisation %.2f)", meanUtil(ev.loads[from], e.hosts[from].Capacity, ev.w))
		}
		ev.move(i, to, ReasonRebalance, why)
	}
	d := &Decision{Domain: e.domain, Tick: ev.tick, Kind: "loop", Moves: ev.moves}
	d.Loop = ev.report(nil, nil, 0, len(ev.moves), 0)
	d.Loop.WindowOverloadsBefore, d.Loop.WindowOverloadsAfter = overBefore, ev.windowOverloads()
	return d, nil
}

// meanUtil is a host's highest per-metric mean utilisation over the last w
// ticks.
func meanUtil(l capacity.Series, cp []float64, w int) float64 {
	var u float64
	for m, x := range l {
		mean, _ := meanSD(x[len(x)-w:])
		u = max(u, mean/cp[m])
	}
	return u
}
