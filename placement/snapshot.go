package placement

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"sort"
)

// snapshotVersion changes whenever the snapshot layout does, so a restore
// never misreads an older checkpoint.
const snapshotVersion = 3

type snapTick struct {
	Tick int64     `json:"t"`
	Cont []int32   `json:"c"`
	Host []int32   `json:"h"`
	Vals []float64 `json:"v"`
}

type snapGroup struct {
	Key     int32     `json:"k"`
	Members []int32   `json:"m"`
	Band    int32     `json:"b,omitempty"`
	Vals    []float64 `json:"v"`
}

type snapshot struct {
	Version   int         `json:"version"`
	Domain    string      `json:"domain"`
	Params    Params      `json:"params"`
	Hosts     []Host      `json:"hosts"`
	Names     []string    `json:"names"`
	Ticks     []snapTick  `json:"ticks"`
	Last      int64       `json:"last"`
	HasLast   bool        `json:"has_last"`
	HostOf    [][2]int32  `json:"host_of"`
	Labels    [][2]int32  `json:"labels"`
	Analysed  bool        `json:"analysed"`
	NextLoop  int64       `json:"next_loop"`
	PrevClust []snapGroup `json:"prev_clust"`
	PrevPlace []snapGroup `json:"prev_place"`
	MovedAt   [][2]int64  `json:"moved_at"`
	Memory    []int       `json:"memory"`
	Left      [][3]int64  `json:"left"`
	// Operator limits' state (absent from older snapshots: no history).
	FirstSeen   [][2]int64  `json:"first_seen"`
	DomainMoves []int64     `json:"domain_moves"`
	CtrMoves    []snapMoves `json:"ctr_moves"`
}

type snapMoves struct {
	ID    int32   `json:"id"`
	Ticks []int64 `json:"ticks"`
}

// Snapshot serialises everything a restarted engine needs to go on exactly
// where this one stands: retained ticks, labels, placement, previous costs
// and cool-downs. The encoding is gob over slices only (no maps), so equal
// states give equal bytes; gob rather than JSON because a domain's retained
// ticks and pair tables are mostly float64s, which JSON writes as long
// decimal strings (a 1,000-container domain: 5.7 MB and 73 ms as JSON).
func (e *Engine) Snapshot() ([]byte, error) {
	s := e.st
	sn := snapshot{
		Version: snapshotVersion, Domain: e.domain, Params: e.p, Hosts: e.hosts,
		Names: s.reg.names, Last: s.last, HasLast: s.hasLast,
		Analysed: s.analysed, NextLoop: s.nextLoop, Memory: s.memory,
	}
	for _, ct := range s.ticks {
		sn.Ticks = append(sn.Ticks, snapTick{ct.tick, ct.cont, ct.host, ct.vals})
	}
	for id, h := range s.hostOf {
		sn.HostOf = append(sn.HostOf, [2]int32{id, h})
	}
	for id, l := range s.labels {
		sn.Labels = append(sn.Labels, [2]int32{id, int32(l)})
	}
	for id, t := range s.movedAt {
		sn.MovedAt = append(sn.MovedAt, [2]int64{int64(id), t})
	}
	sort.Slice(sn.HostOf, func(i, j int) bool { return sn.HostOf[i][0] < sn.HostOf[j][0] })
	sort.Slice(sn.Labels, func(i, j int) bool { return sn.Labels[i][0] < sn.Labels[j][0] })
	for id, d := range s.left {
		sn.Left = append(sn.Left, [3]int64{int64(id), int64(d.host), d.tick})
	}
	sort.Slice(sn.Left, func(i, j int) bool { return sn.Left[i][0] < sn.Left[j][0] })
	sort.Slice(sn.MovedAt, func(i, j int) bool { return sn.MovedAt[i][0] < sn.MovedAt[j][0] })
	for id, t := range s.firstSeen {
		sn.FirstSeen = append(sn.FirstSeen, [2]int64{int64(id), t})
	}
	sort.Slice(sn.FirstSeen, func(i, j int) bool { return sn.FirstSeen[i][0] < sn.FirstSeen[j][0] })
	sn.DomainMoves = s.domainMoves
	for id, ts := range s.ctrMoves {
		sn.CtrMoves = append(sn.CtrMoves, snapMoves{id, ts})
	}
	sort.Slice(sn.CtrMoves, func(i, j int) bool { return sn.CtrMoves[i].ID < sn.CtrMoves[j].ID })
	sn.PrevClust = snapTable(s.prevClust)
	sn.PrevPlace = snapTable(s.prevPlace)
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(sn); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func snapTable(p *pairTable) []snapGroup {
	if p == nil {
		return nil
	}
	out := make([]snapGroup, 0, len(p.groups))
	for _, g := range p.groups {
		out = append(out, snapGroup{Key: g.key, Members: g.members, Band: g.band, Vals: g.vals})
	}
	return out
}

func restoreTable(groups []snapGroup, nIDs int) *pairTable {
	if groups == nil {
		return nil
	}
	p := &pairTable{gidx: make([]int32, nIDs), pos: make([]int32, nIDs)}
	for i := range p.gidx {
		p.gidx[i] = -1
	}
	for gi, g := range groups {
		p.groups = append(p.groups, pairGroup{key: g.Key, members: g.Members, vals: g.Vals, band: g.Band})
		for i, id := range g.Members {
			p.gidx[id] = int32(gi)
			p.pos[id] = int32(i)
		}
	}
	return p
}

// Restore rebuilds an engine from a Snapshot.
func Restore(data []byte) (*Engine, error) {
	var sn snapshot
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&sn); err != nil {
		return nil, fmt.Errorf("engine snapshot: %w", err)
	}
	if sn.Version != snapshotVersion {
		return nil, fmt.Errorf("engine snapshot version %d, this build reads %d", sn.Version, snapshotVersion)
	}
	e, err := New(sn.Domain, sn.Params, sn.Hosts)
	if err != nil {
		return nil, fmt.Errorf("engine snapshot: %w", err)
	}
	s := e.st
	for _, n := range sn.Names {
		s.reg.id(n)
	}
	for _, t := range sn.Ticks {
		s.ticks = append(s.ticks, closedTick{t.Tick, t.Cont, t.Host, t.Vals})
	}
	s.last, s.hasLast, s.analysed, s.nextLoop = sn.Last, sn.HasLast, sn.Analysed, sn.NextLoop
	for _, p := range sn.HostOf {
		s.hostOf[p[0]] = p[1]
	}
	for _, p := range sn.Labels {
		s.labels[p[0]] = int(p[1])
	}
	for _, p := range sn.MovedAt {
		s.movedAt[int32(p[0])] = p[1]
	}
	s.memory = sn.Memory
	for _, d := range sn.Left {
		s.left[int32(d[0])] = departure{host: int32(d[1]), tick: d[2]}
	}
	for _, p := range sn.FirstSeen {
		s.firstSeen[int32(p[0])] = p[1]
	}
	s.domainMoves = sn.DomainMoves
	for _, c := range sn.CtrMoves {
		s.ctrMoves[c.ID] = c.Ticks
	}
	s.prevClust = restoreTable(sn.PrevClust, len(sn.Names))
	s.prevPlace = restoreTable(sn.PrevPlace, len(sn.Names))
	return e, nil
}
