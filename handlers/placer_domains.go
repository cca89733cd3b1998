package handlers

import (
	"fmt"
	"slices"

	"hots/codecs"
	"hots/placement"
)

// Domains of hosts. A host belongs to exactly one domain, and only that
// domain's engine knows its capacity, so no other engine can move a
// container onto it. A host gets its domain, first come first kept:
//
//  1. declared: node_meta's domain column (Placer.Declared) or a nodes
//     topic record's domain (SetHost);
//  2. else by the first sample naming it (at its tick's close, before the
//     engine sees the tick): an undeclared host joins that sample's domain;
//  3. else an undeclared host no sample named is the default domain's
//     (DefaultDomain, the domain of samples naming none) once that domain
//     has an engine: a run without domains keeps every host, as before.
//
// A conflict (a host declared in one domain and named by a sample or a
// declaration of another, or named by samples of two domains) is a
// warning, not an error: OnConflict gets it once per host and domain,
// naming the host, both domains and where each came from. The host stays
// in its first domain. The other domain's samples still count (the
// container runs there), but its engine has no capacity for the host, so
// it never chooses it as a target; it may move the container off it.
// An error would stop a replay or poison a live domain for one mislabelled
// row; the warning keeps both modes on the same answer.
//
// Limit: the ownership map is per instance. Instances of one consumer
// group agree on declared domains (everyone reads node_meta and the nodes
// topic) but not on claims by samples: with several instances, declare
// the domains.

// HostConflict is a host named in a domain it does not belong to.
type HostConflict struct {
	Host   string
	Domain string // the host's domain
	Origin string // how it got it: "node_meta.csv:4", "nodes[0]@12", "first sample of tick 3 (container c_1)"
	Other  string // the domain that named it too
	Where  string // where: "tick 7 (container c_9)", "nodes[0]@40"
}

func (c HostConflict) String() string {
	return fmt.Sprintf("host %q belongs to domain %q (%s) but domain %q names it at %s: it stays in %q and is never a target of %q",
		c.Host, c.Domain, c.Origin, c.Other, c.Where, c.Domain, c.Other)
}

type hostOwner struct {
	domain string
	origin string
}

// owner returns the host's domain, settling it from the declarations on
// first use.
func (p *Placer) ownerOf(host string) (hostOwner, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.initOwners()
	o, ok := p.owners[host]
	return o, ok
}

func (p *Placer) initOwners() {
	if p.owners != nil {
		return
	}
	p.owners = map[string]hostOwner{}
	p.conflicts = map[[2]string]bool{}
	for h, d := range p.Declared {
		if d.Domain != "" {
			p.owners[h] = hostOwner{domain: d.Domain, origin: "declared at " + d.Where.String()}
		}
	}
}

func (p *Placer) defaultDomain() string {
	if p.DefaultDomain == "" {
		return placement.DefaultDomain
	}
	return p.DefaultDomain
}

// HostsOf returns the hosts with a capacity that belong to domain, in
// Hosts order; for the default domain, the undeclared hosts nobody
// claimed yet become its own.
func (p *Placer) HostsOf(domain string) []placement.Host {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hostsOf(domain)
}

func (p *Placer) hostsOf(domain string) []placement.Host {
	p.initOwners()
	var out []placement.Host
	for _, h := range p.Hosts {
		o, ok := p.owners[h.Name]
		if !ok && domain == p.defaultDomain() {
			o, ok = hostOwner{domain: domain, origin: "undeclared, given to the default domain"}, true
			p.owners[h.Name] = o
		}
		if ok && o.domain == domain {
			out = append(out, h)
		}
	}
	return out
}

// newEngine creates a domain's engine with its hosts.
func (p *Placer) newEngine(domain string) (*placement.Engine, error) {
	return placement.New(domain, p.Params, p.hostsOf(domain))
}

// NewEngine creates a domain's engine with the domain's hosts (live mode
// installs it with SetEngine).
func (p *Placer) NewEngine(domain string) (*placement.Engine, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.newEngine(domain)
}

// Adopt settles a restored engine's hosts: those it knows a capacity of
// become its domain's (when nobody has them yet), and the capacities
// learnt since its checkpoint (node_meta, the nodes topic) of the
// domain's hosts win.
func (p *Placer) Adopt(domain string, e *placement.Engine) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.initOwners()
	for _, h := range e.Hosts() {
		if slices.ContainsFunc(h.Capacity, func(v float64) bool { return !(v > 0) }) {
			continue // seen in samples only: no capacity, no claim
		}
		if o, ok := p.owners[h.Name]; !ok {
			p.owners[h.Name] = hostOwner{domain: domain, origin: "restored with domain " + domain + "'s checkpoint"}
		} else if o.domain != domain {
			p.conflict(HostConflict{Host: h.Name, Domain: o.domain, Origin: o.origin, Other: domain, Where: "its restored checkpoint"})
			// Unknown capacity again: never a target of this domain.
			if err := e.SetHost(placement.Host{Name: h.Name, Capacity: make([]float64, len(h.Capacity))}); err != nil {
				return err
			}
		}
	}
	for _, h := range p.hostsOf(domain) {
		if err := e.SetHost(h); err != nil {
			return err
		}
	}
	return nil
}

func (p *Placer) conflict(c HostConflict) {
	k := [2]string{c.Host, c.Other}
	if p.conflicts[k] {
		return
	}
	p.conflicts[k] = true
	p.nConflicts++
	if p.OnConflict != nil {
		p.OnConflict(c)
	}
}

// Conflicts is the number of (host, domain) conflicts reported.
func (p *Placer) Conflicts() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nConflicts
}

// claim (p.mu held) settles the domains of the hosts a tick's samples name, before
// the engine sees the tick: an unowned host joins the batch's domain (and
// its engine gets the capacity, if known); a host of another domain is a
// conflict.
func (p *Placer) claim(e *placement.Engine, b placement.TickBatch) error {
	p.initOwners()
	domain := e.Domain()
	var fresh []string
	last := ""
	for i := range b.Samples {
		s := &b.Samples[i]
		if s.Host == last {
			continue // samples come grouped by host often: one lookup per run
		}
		last = s.Host
		o, ok := p.owners[s.Host]
		switch {
		case !ok:
			p.owners[s.Host] = hostOwner{domain: domain, origin: fmt.Sprintf("first named by a sample at tick %d (container %s)", b.Tick, s.Container)}
			fresh = append(fresh, s.Host)
		case o.domain != domain:
			p.conflict(HostConflict{Host: s.Host, Domain: o.domain, Origin: o.origin, Other: domain,
				Where: fmt.Sprintf("tick %d (container %s)", b.Tick, s.Container)})
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	// By name: the engine's host order must not depend on sample order.
	slices.Sort(fresh)
	for _, name := range fresh {
		if i := p.hostIndex(name); i >= 0 {
			if err := e.SetHost(p.Hosts[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *Placer) hostIndex(name string) int {
	return slices.IndexFunc(p.Hosts, func(h placement.Host) bool { return h.Name == name })
}

// SetHost records a host's capacity and, with d.Domain, its declared
// domain, then gives the capacity to the engine of the host's domain (now
// or when it is created). Live mode follows a compacted nodes topic. A
// declaration that disagrees with the host's domain is a conflict: the
// capacity still applies, to the host's first domain. The caller must
// make sure no CloseTick of that domain runs concurrently (its engine is
// changed): live mode calls it under Window.WithLock.
func (p *Placer) SetHost(h placement.Host, d codecs.HostDomain) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.initOwners()
	if i := p.hostIndex(h.Name); i >= 0 {
		p.Hosts[i] = h
	} else {
		p.Hosts = append(p.Hosts, h)
	}
	o, ok := p.owners[h.Name]
	switch {
	case ok && d.Domain != "" && o.domain != d.Domain:
		p.conflict(HostConflict{Host: h.Name, Domain: o.domain, Origin: o.origin, Other: d.Domain, Where: "declared at " + d.Where.String()})
	case !ok && d.Domain != "":
		o, ok = hostOwner{domain: d.Domain, origin: "declared at " + d.Where.String()}, true
		p.owners[h.Name] = o
	case !ok:
		if _, has := p.engines[p.defaultDomain()]; !has {
			return nil // the first sample naming it, or the default domain's engine, will take it
		}
		o, ok = hostOwner{domain: p.defaultDomain(), origin: "undeclared, given to the default domain"}, true
		p.owners[h.Name] = o
	}
	if e, has := p.engines[o.domain]; has {
		return e.SetHost(h)
	}
	return nil
}
