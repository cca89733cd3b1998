package placement

import (
	"errors"
	"fmt"

	"hots/placement/policy"
)

// ErrLateTick is returned by CloseTick for a tick at or before the last
// closed one: the caller counts it as late and drops it, so that a tick is
// never applied twice (at-least-once delivery underneath).
var ErrLateTick = errors.New("tick already closed")

// Engine runs the method for one domain. It is not safe for concurrent use:
// one domain is owned by one goroutine (and one instance) at a time.
type Engine struct {
	domain string
	p      Params
	hosts  []Host
	hostIx map[string]int
	st     *state
	// pol is the baseline policy deciding the loops, nil for the HOTS
	// method.
	pol policy.Policy
	ctl controls
}

// New returns an engine for one domain. hosts is node_meta in file order;
// hosts first seen in samples are added without capacity (they can be
// relieved but never chosen as targets until SetHost gives them one).
func New(domain string, p Params, hosts []Host) (*Engine, error) {
	SetDefaults(&p)
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if domain == "" {
		domain = DefaultDomain
	}
	e := &Engine{domain: domain, p: p, hostIx: map[string]int{}}
	pol, err := policy.New(p.Policy)
	if err != nil {
		return nil, err
	}
	e.pol = pol
	if e.ctl, err = compileControls(p.Controls); err != nil {
		return nil, err
	}
	for _, h := range hosts {
		if err := e.SetHost(h); err != nil {
			return nil, err
		}
	}
	e.st = newState(e)
	return e, nil
}

// Params returns the effective parameters (defaults filled).
func (e *Engine) Params() Params { return e.p }

// Domain returns the domain name.
func (e *Engine) Domain() string { return e.domain }

// SetHost adds a host or updates its capacity.
func (e *Engine) SetHost(h Host) error {
	if h.Name == "" {
		return errors.New("host with empty name")
	}
	if len(h.Capacity) != len(e.p.Metrics) {
		return fmt.Errorf("host %s: %d capacities for %d metrics %v", h.Name, len(h.Capacity), len(e.p.Metrics), e.p.Metrics)
	}
	h.Capacity = append([]float64(nil), h.Capacity...)
	if i, ok := e.hostIx[h.Name]; ok {
		e.hosts[i] = h
		return nil
	}
	e.hostIx[h.Name] = len(e.hosts)
	e.hosts = append(e.hosts, h)
	return nil
}

// Hosts returns the known hosts, node_meta order first.
func (e *Engine) Hosts() []Host { return append([]Host(nil), e.hosts...) }
