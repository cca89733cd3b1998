package placement

import (
	"fmt"
	"math"
	"path"
	"regexp"
	"strings"
)

// Controls are the operator's say over the engine's decisions, as the
// Kubernetes descheduler gives it: what never moves, where nothing goes,
// what must be emptied, and how much may move. The zero value changes
// nothing.
type Controls struct {
	// Pin: containers that never move. Each pattern is a name, a glob
	// (path.Match: *, ?, [a-z]) or a regular expression between slashes
	// (/^web-.*$/). The input pins too: a container whose newest sample
	// has Sample.Pinned is held exactly as if a pattern named it, until a
	// later sample of it comes without the mark.
	Pin []string `json:"pin,omitempty"`
	// ExcludeHosts are never a move target (cordoned, maintenance), same
	// patterns. A Host with Cordoned set is excluded too.
	ExcludeHosts []string `json:"exclude_hosts,omitempty"`
	// DrainHosts are emptied: every loop moves what may move off them
	// (within every budget and limit), and they are never a target.
	DrainHosts []string `json:"drain_hosts,omitempty"`
	// DryRun: the moves are decided, published and written marked dry_run,
	// and never applied to later samples.
	DryRun bool `json:"dry_run,omitempty"`
	// TickSeconds is how long a tick lasts, which turns the per-hour and
	// per-day limits into ticks (0: unknown; those limits then need it).
	TickSeconds float64 `json:"tick_seconds,omitempty"`
	// Limits; 0 means no limit.
	MaxMovesPerLoop            int `json:"max_moves_per_loop,omitempty"`
	MaxMovesPerSourceHost      int `json:"max_moves_per_source_host,omitempty"`
	MaxMovesPerTargetHost      int `json:"max_moves_per_target_host,omitempty"`
	MaxMovesPerDomainPerHour   int `json:"max_moves_per_domain_per_hour,omitempty"`
	MinAgeTicks                int `json:"min_age_ticks,omitempty"`
	MaxMovesPerContainerPerDay int `json:"max_moves_per_container_per_day,omitempty"`
}

// Limit names, as LoopReport.HeldBack, metrics.csv and the summary count
// them (the configuration keys' last segment).
const (
	LimitPerLoop            = "max_moves_per_loop"
	LimitPerSourceHost      = "max_moves_per_source_host"
	LimitPerTargetHost      = "max_moves_per_target_host"
	LimitPerDomainPerHour   = "max_moves_per_domain_per_hour"
	LimitMinAge             = "min_age_ticks"
	LimitPerContainerPerDay = "max_moves_per_container_per_day"
)

// Limits lists the limit names in report order.
var Limits = []string{LimitPerLoop, LimitPerSourceHost, LimitPerTargetHost, LimitPerDomainPerHour, LimitMinAge, LimitPerContainerPerDay}

// hourTicks and dayTicks are the rolling spans of the per-hour and per-day
// limits in ticks (at least one tick).
func (c Controls) hourTicks() int64 { return spanTicks(3600, c.TickSeconds) }
func (c Controls) dayTicks() int64  { return spanTicks(86400, c.TickSeconds) }

func spanTicks(seconds, tick float64) int64 {
	if !(tick > 0) {
		return 1
	}
	return max(1, int64(math.Ceil(seconds/tick-1e-9)))
}

func (c Controls) validate() error {
	for _, f := range []struct {
		name string
		pats []string
	}{{"controls.pin", c.Pin}, {"controls.exclude_hosts", c.ExcludeHosts}, {"controls.drain_hosts", c.DrainHosts}} {
		if _, err := newMatcher(f.pats); err != nil {
			return &FieldError{f.name, f.pats, err.Error()}
		}
	}
	switch {
	case c.TickSeconds < 0 || math.IsNaN(c.TickSeconds) || math.IsInf(c.TickSeconds, 0):
		return &FieldError{"controls.tick_seconds", c.TickSeconds, "must be a finite number of seconds >= 0"}
	case c.MaxMovesPerLoop < 0:
		return &FieldError{"controls.limits." + LimitPerLoop, c.MaxMovesPerLoop, "must be >= 0 (0 = no limit)"}
	case c.MaxMovesPerSourceHost < 0:
		return &FieldError{"controls.limits." + LimitPerSourceHost, c.MaxMovesPerSourceHost, "must be >= 0 (0 = no limit)"}
	case c.MaxMovesPerTargetHost < 0:
		return &FieldError{"controls.limits." + LimitPerTargetHost, c.MaxMovesPerTargetHost, "must be >= 0 (0 = no limit)"}
	case c.MaxMovesPerDomainPerHour < 0:
		return &FieldError{"controls.limits." + LimitPerDomainPerHour, c.MaxMovesPerDomainPerHour, "must be >= 0 (0 = no limit)"}
	case c.MinAgeTicks < 0:
		return &FieldError{"controls.limits." + LimitMinAge, c.MinAgeTicks, "must be >= 0 ticks (0 = no minimum)"}
	case c.MaxMovesPerContainerPerDay < 0:
		return &FieldError{"controls.limits." + LimitPerContainerPerDay, c.MaxMovesPerContainerPerDay, "must be >= 0 (0 = no limit)"}
	case c.MaxMovesPerDomainPerHour > 0 && !(c.TickSeconds > 0):
		return &FieldError{"controls.limits." + LimitPerDomainPerHour, c.MaxMovesPerDomainPerHour, "needs controls.tick_seconds (how long a tick lasts) to count an hour in ticks"}
	case c.MaxMovesPerContainerPerDay > 0 && !(c.TickSeconds > 0):
		return &FieldError{"controls.limits." + LimitPerContainerPerDay, c.MaxMovesPerContainerPerDay, "needs controls.tick_seconds (how long a tick lasts) to count a day in ticks"}
	}
	return nil
}

// matcher matches names against exact names, globs and /regexps/.
type matcher struct {
	exact map[string]bool
	globs []string
	res   []*regexp.Regexp
}

func newMatcher(pats []string) (*matcher, error) {
	m := &matcher{exact: map[string]bool{}}
	for _, p := range pats {
		switch {
		case len(p) >= 2 && strings.HasPrefix(p, "/") && strings.HasSuffix(p, "/"):
			re, err := regexp.Compile(p[1 : len(p)-1])
			if err != nil {
				return nil, fmt.Errorf("pattern %q: %v", p, err)
			}
			m.res = append(m.res, re)
		case strings.ContainsAny(p, "*?["):
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("glob %q: %v", p, err)
			}
			m.globs = append(m.globs, p)
		case p != "":
			m.exact[p] = true
		}
	}
	return m, nil
}

func (m *matcher) match(name string) bool {
	if m == nil {
		return false
	}
	if m.exact[name] {
		return true
	}
	for _, g := range m.globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	for _, re := range m.res {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// controls is the engine's compiled form of Params.Controls.
type controls struct {
	pin, exclude, drain *matcher
}

func compileControls(c Controls) (controls, error) {
	var out controls
	var err error
	if out.pin, err = newMatcher(c.Pin); err != nil {
		return out, err
	}
	if out.exclude, err = newMatcher(c.ExcludeHosts); err != nil {
		return out, err
	}
	out.drain, err = newMatcher(c.DrainHosts)
	return out, err
}

// draining: the host is in Controls.DrainHosts.
func (e *Engine) draining(h int32) bool { return e.ctl.drain.match(e.hosts[h].Name) }

// excluded: the host may not receive a container (cordoned, excluded or
// being drained).
func (e *Engine) excluded(h int32) bool {
	host := e.hosts[h]
	return host.Cordoned || e.ctl.exclude.match(host.Name) || e.ctl.drain.match(host.Name)
}

// pinned: the container never moves, because controls.pin names it or
// because its newest sample says so (Sample.Pinned).
func (s *state) pinned(id int32) bool {
	if s.inputPin[id] {
		return true
	}
	if len(s.e.p.Controls.Pin) == 0 {
		return false
	}
	p, ok := s.pinCache[id]
	if !ok {
		p = s.e.ctl.pin.match(s.reg.names[id])
		s.pinCache[id] = p
	}
	return p
}

// recentCount is how many of ticks (ascending) are after tick-span.
func recentCount(ticks []int64, tick, span int64) int {
	n := 0
	for k := len(ticks) - 1; k >= 0 && ticks[k] > tick-span; k-- {
		n++
	}
	return n
}

// trimRecent drops the ticks at or before tick-span.
func trimRecent(ticks []int64, tick, span int64) []int64 {
	k := 0
	for k < len(ticks) && ticks[k] <= tick-span {
		k++
	}
	return ticks[k:]
}

// admit is the operator's limits on a move the engine decided: the name of
// the limit that refuses moving container i at this evaluation, or "".
// Target host limits are bestTarget's (a full target is skipped for the
// next best).
func (ev *evaluation) admit(i int) string {
	c := ev.s.e.p.Controls
	s := ev.s
	id := ev.v.ids[i]
	switch {
	case c.MaxMovesPerLoop > 0 && len(ev.moves) >= c.MaxMovesPerLoop:
		return LimitPerLoop
	case c.MaxMovesPerDomainPerHour > 0 && recentCount(s.domainMoves, ev.tick, c.hourTicks()) >= c.MaxMovesPerDomainPerHour:
		return LimitPerDomainPerHour
	case c.MaxMovesPerSourceHost > 0 && ev.srcMoves[ev.v.hosts[i]] >= c.MaxMovesPerSourceHost:
		return LimitPerSourceHost
	case c.MinAgeTicks > 0 && ev.tick-s.firstSeen[id] < int64(c.MinAgeTicks):
		return LimitMinAge
	case c.MaxMovesPerContainerPerDay > 0 && recentCount(s.ctrMoves[id], ev.tick, c.dayTicks()) >= c.MaxMovesPerContainerPerDay:
		return LimitPerContainerPerDay
	}
	return ""
}

// targetFull: the host received its limit of moves in this evaluation.
func (ev *evaluation) targetFull(h int32) bool {
	m := ev.s.e.p.Controls.MaxMovesPerTargetHost
	return m > 0 && ev.dstMoves[h] >= m
}

// hold counts a decided move a limit refused.
func (ev *evaluation) hold(limit string) {
	if ev.heldBack == nil {
		ev.heldBack = map[string]int{}
	}
	ev.heldBack[limit]++
}

// globalLimit: once hit, no other move of this evaluation may pass.
func globalLimit(limit string) bool { return limit == LimitPerLoop || limit == LimitPerDomainPerHour }
