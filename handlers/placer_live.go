package handlers

import "hots/placement"

// SetEngine installs a domain's engine, replacing any it had: live mode
// restores engines from checkpoints, and a domain that came back to this
// instance after another owned it must not keep its stale engine.
func (p *Placer) SetEngine(domain string, e *placement.Engine) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.engines == nil {
		p.engines = map[string]*placement.Engine{}
	}
	p.engines[domain] = e
}

// DropEngine forgets a domain's engine (its state is owned elsewhere now).
func (p *Placer) DropEngine(domain string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.engines, domain)
}
