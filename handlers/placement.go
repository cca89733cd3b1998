package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
	"hots/placement"
)

// Placer is stage 3: one placement.Engine per domain, created on first
// sight with the domain's hosts; each closed tick goes to its engine, and a
// decision goes on to the publish stage. Which hosts are a domain's is the
// rule in placer_domains.go: a move never leaves its domain.
type Placer struct {
	Params placement.Params
	// Hosts are the hosts with a known capacity (node_meta's, in its
	// order, then the nodes topic's).
	Hosts []placement.Host
	// Declared are the hosts' declared domains (node_meta's domain column).
	Declared map[string]codecs.HostDomain
	// DefaultDomain is the domain of samples naming none
	// (placement.DefaultDomain if empty): it gets the undeclared hosts no
	// sample named.
	DefaultDomain string
	// OnConflict, if set, gets each host named in a domain it does not
	// belong to, once per host and domain.
	OnConflict func(HostConflict)
	// OnDecision, if set, gets each decision and the wall time of the
	// engine call (measured here: the engine has no clock).
	OnDecision func(d *placement.Decision, seconds float64)
	// Now is the clock for that measurement (time.Now if nil).
	Now func() time.Time

	// mu guards the maps, Hosts and the host-domain bookkeeping: ticks of
	// different domains close at the same time (one placement shard
	// each), while the window restores and drops engines. An engine's
	// CloseTick runs outside it: engines are independent, and one domain
	// has one tick in flight at a time. A leaf lock: nothing is taken
	// under it (OnConflict runs under it and must not call back).
	mu         sync.Mutex
	engines    map[string]*placement.Engine
	late       atomic.Int64
	loops      atomic.Int64
	owners     map[string]hostOwner // host -> its domain
	conflicts  map[[2]string]bool   // (host, other domain) reported
	nConflicts int64
}

// Engine returns the domain's engine, creating it.
func (p *Placer) Engine(domain string) (*placement.Engine, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.engine(domain)
}

func (p *Placer) engine(domain string) (*placement.Engine, error) {
	if e, ok := p.engines[domain]; ok {
		return e, nil
	}
	e, err := p.newEngine(domain)
	if err != nil {
		return nil, fmt.Errorf("domain %s: %w", domain, err)
	}
	if p.engines == nil {
		p.engines = map[string]*placement.Engine{}
	}
	p.engines[domain] = e
	return e, nil
}

// Domains returns the engines by domain (a copy).
func (p *Placer) Domains() map[string]*placement.Engine {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.engines)
}

// Late is the number of ticks the engines refused as already closed.
func (p *Placer) Late() int64 { return p.late.Load() }

// Loops is the number of decisions.
func (p *Placer) Loops() int64 { return p.loops.Load() }

// CloseTick feeds one closed tick to its engine. Ticks of different
// domains may close concurrently; those of one domain must not.
func (p *Placer) CloseTick(b placement.TickBatch) (*placement.Decision, error) {
	e, err := p.engineFor(b)
	if err != nil {
		return nil, err
	}
	now := p.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	d, err := e.CloseTick(b)
	secs := now().Sub(start).Seconds()
	if errors.Is(err, placement.ErrLateTick) {
		p.late.Add(1) // a redelivered tick: already applied, never twice
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("domain %s tick %d: %w", b.Domain, b.Tick, err)
	}
	if d != nil {
		p.loops.Add(1)
		if p.OnDecision != nil {
			p.OnDecision(d, secs)
		}
	}
	return d, nil
}

// engineFor returns the batch's engine once the hosts its samples name
// have their domains.
func (p *Placer) engineFor(b placement.TickBatch) (*placement.Engine, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, err := p.engine(b.Domain)
	if err != nil {
		return nil, err
	}
	if err := p.claim(e, b); err != nil {
		return nil, fmt.Errorf("domain %s tick %d: %w", b.Domain, b.Tick, err)
	}
	return e, nil
}

// Handle is the handler func: "tick" messages in, "decision" messages out.
func (p *Placer) Handle(msg *message.Message) ([]*message.Message, error) {
	if k := msg.Metadata.Get(codecs.MetaKind); k != codecs.KindTick {
		return nil, Permanent(fmt.Errorf("placement: unexpected message kind %q", k))
	}
	tick, err := strconv.ParseInt(msg.Metadata.Get(codecs.MetaTick), 10, 64)
	if err != nil {
		return nil, Permanent(fmt.Errorf("tick message: %w", err))
	}
	ss, err := codecs.DecodeSamples(msg.Payload)
	if err != nil {
		return nil, Permanent(err)
	}
	d, err := p.CloseTick(placement.TickBatch{Domain: msg.Metadata.Get(codecs.MetaDomain), Tick: tick, Samples: ss})
	if err != nil || d == nil || len(d.Moves) == 0 {
		// Engine errors are deterministic in their input: retrying is useless.
		return nil, Permanent(err)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, Permanent(err)
	}
	out := message.NewMessage(msg.UUID+"/decision", b)
	out.Metadata.Set(codecs.MetaKind, codecs.KindDecision)
	out.Metadata.Set(codecs.MetaDomain, d.Domain)
	out.Metadata.Set(codecs.MetaTick, strconv.FormatInt(d.Tick, 10))
	out.Metadata.Set(codecs.MetaKey, d.Domain)
	return []*message.Message{out}, nil
}

// PublishMoves is stage 4: a decision becomes one move message per move,
// keyed by domain (the Kafka partition key) with the move id as UUID so
// that duplicates from redelivery can be dropped downstream.
func PublishMoves(msg *message.Message) ([]*message.Message, error) {
	if k := msg.Metadata.Get(codecs.MetaKind); k != codecs.KindDecision {
		return nil, Permanent(fmt.Errorf("publish: unexpected message kind %q", k))
	}
	var d placement.Decision
	if err := json.Unmarshal(msg.Payload, &d); err != nil {
		return nil, Permanent(fmt.Errorf("decision: %w", err))
	}
	out := make([]*message.Message, 0, len(d.Moves))
	for _, mv := range d.Moves {
		b, err := codecs.EncodeMove(mv)
		if err != nil {
			return nil, Permanent(err)
		}
		m := message.NewMessage(mv.ID, b)
		m.Metadata.Set(codecs.MetaKind, codecs.KindMove)
		m.Metadata.Set(codecs.MetaDomain, mv.Domain)
		m.Metadata.Set(codecs.MetaTick, strconv.FormatInt(mv.Tick, 10))
		m.Metadata.Set(codecs.MetaKey, mv.Domain)
		out = append(out, m)
	}
	return out, nil
}
