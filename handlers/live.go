package handlers

import (
	"slices"
	"time"
)

// LivePolicy decides when ticks close in live mode, from sample arrival
// times that the caller passes in (no clock inside, so it is testable and
// replayable). Per domain, tick t closes when a sample of a later tick u
// arrived at least Lateness ago, or when no sample at all arrived for
// IdleTimeout (then every open tick closes). Samples for a closed tick
// are late: Observe says so and the caller drops them.
type LivePolicy struct {
	Lateness    time.Duration
	IdleTimeout time.Duration // 0: never close on idleness
	domains     map[string]*liveDomain
	late        int64
}

type liveDomain struct {
	firstSeen   map[int64]time.Time // open ticks: first arrival
	lastArrival time.Time
	closed      int64
	hasClosed   bool
}

// Close is a decision to close every open tick ≤ UpTo of Domain.
type Close struct {
	Domain string
	UpTo   int64
}

// NewLivePolicy returns a policy.
func NewLivePolicy(lateness, idle time.Duration) *LivePolicy {
	return &LivePolicy{Lateness: lateness, IdleTimeout: idle, domains: map[string]*liveDomain{}}
}

// Observe records a sample of tick arriving at now. It returns false when
// the tick is already closed: the sample is late and must be dropped.
func (p *LivePolicy) Observe(domain string, tick int64, now time.Time) bool {
	d := p.domains[domain]
	if d == nil {
		d = &liveDomain{firstSeen: map[int64]time.Time{}}
		p.domains[domain] = d
	}
	if d.hasClosed && tick <= d.closed {
		p.late++
		return false
	}
	if _, ok := d.firstSeen[tick]; !ok {
		d.firstSeen[tick] = now
	}
	if now.After(d.lastArrival) {
		d.lastArrival = now
	}
	return true
}

// Late is the number of late samples observed.
func (p *LivePolicy) Late() int64 { return p.late }

// Due returns the closes that are due at now, domains in name order, and
// marks those ticks closed.
func (p *LivePolicy) Due(now time.Time) []Close {
	names := make([]string, 0, len(p.domains))
	for n := range p.domains {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []Close
	for _, n := range names {
		d := p.domains[n]
		if len(d.firstSeen) == 0 {
			continue
		}
		open := make([]int64, 0, len(d.firstSeen))
		for t := range d.firstSeen {
			open = append(open, t)
		}
		slices.Sort(open)
		upTo, any := int64(0), false
		if p.IdleTimeout > 0 && now.Sub(d.lastArrival) >= p.IdleTimeout {
			upTo, any = open[len(open)-1], true
		} else {
			// The latest tick u whose first sample is at least Lateness
			// old closes every open tick before it.
			for i := len(open) - 1; i > 0; i-- {
				if now.Sub(d.firstSeen[open[i]]) >= p.Lateness {
					upTo, any = open[i-1], true
					break
				}
			}
		}
		if !any {
			continue
		}
		for _, t := range open {
			if t <= upTo {
				delete(d.firstSeen, t)
			}
		}
		d.closed, d.hasClosed = upTo, true
		out = append(out, Close{Domain: n, UpTo: upTo})
	}
	return out
}
