package handlers

import "hots/placement"

// SetEngine installs a domain's engine, replacing any it had: live mode
// restores engines from checkpoints, and a domain that came back to this
// instance after another owned it must not keep its stale engine.
func (p *Placer) SetEngine(domain string, e *placement.Engine) {
	if p.engines == nil {
		p.engines = map[string]*placement.Engine{}
	}
	p.engines[domain] = e
}

// DropEngine forgets a domain's engine (its state is owned elsewhere now).
func (p *Placer) DropEngine(domain string) { delete(p.engines, domain) }

// SetHost gives every current engine, and every engine created later, a
// host's capacity (live mode follows a compacted nodes topic). The caller
// must make sure no CloseTick runs concurrently.
func (p *Placer) SetHost(h placement.Host) error {
	found := false
	for i := range p.Hosts {
		if p.Hosts[i].Name == h.Name {
			p.Hosts[i], found = h, true
		}
	}
	if !found {
		p.Hosts = append(p.Hosts, h)
	}
	for _, e := range p.engines {
		if err := e.SetHost(h); err != nil {
			return err
		}
	}
	return nil
}
