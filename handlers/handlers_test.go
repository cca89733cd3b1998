package handlers

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
	"hots/placement"
)

func rowsMsg(t *testing.T, rows ...codecs.RawRow) *message.Message {
	t.Helper()
	b := codecs.RawBatch{Source: "u.csv", Header: []string{"timestamp", "container_id", "machine_id", "cpu"}, Rows: rows}
	p, _ := b.MarshalBinary()
	m := message.NewMessage("b", p)
	m.Metadata.Set(codecs.MetaKind, codecs.KindRows)
	m.Metadata.Set(codecs.MetaTick, "0")
	return m
}

func TestDecoderKeepsGoodRowsAndRejectsBadOnes(t *testing.T) {
	var rejects []*codecs.RowError
	d := &Decoder{Reject: func(e *codecs.RowError) { rejects = append(rejects, e) }}
	out, err := d.Handle(rowsMsg(t,
		codecs.RawRow{Line: 2, Fields: []string{"0", "c_1", "n_1", "1.5"}},
		codecs.RawRow{Line: 3, Fields: []string{"0", "c_2", "n_1", "-1"}, TraceHost: "n_2"},
		codecs.RawRow{Line: 4, Fields: []string{"0", "c_3", "n_1", "2"}, TraceHost: "n_2"}))
	if err != nil || len(out) != 1 {
		t.Fatalf("out %v err %v", out, err)
	}
	ss, _ := codecs.DecodeSamples(out[0].Payload)
	want := []placement.Sample{{Domain: "default", Tick: 0, Container: "c_1", Host: "n_1", Values: []float64{1.5}},
		{Domain: "default", Tick: 0, Container: "c_3", Host: "n_1", Values: []float64{2}, TraceHost: "n_2"}}
	if !reflect.DeepEqual(ss, want) {
		t.Errorf("samples %+v, want %+v", ss, want)
	}
	if len(rejects) != 1 || rejects[0].Line != 3 || rejects[0].Field != "cpu" || rejects[0].Raw != "0,c_2,n_2,-1" {
		t.Errorf("rejects %+v, want line 3 cpu with the trace's host in raw", rejects)
	}
	if out[0].Metadata.Get(codecs.MetaKind) != codecs.KindSamples || d.Decoded() != 2 {
		t.Errorf("kind %q decoded %d", out[0].Metadata.Get(codecs.MetaKind), d.Decoded())
	}
}

func TestDecoderPermanentErrors(t *testing.T) {
	d := &Decoder{Reject: func(*codecs.RowError) {}}
	bad := []*message.Message{message.NewMessage("j", []byte(`{"timestamp":1,"container_id":"c","machine_id":"n"}`))}
	corrupt := message.NewMessage("r", []byte{9, 9, 9})
	corrupt.Metadata.Set(codecs.MetaKind, codecs.KindRows)
	bad = append(bad, corrupt)
	for _, m := range bad {
		if _, err := d.Handle(m); !IsPermanent(err) {
			t.Errorf("%s: err = %v, want a permanent error", m.UUID, err)
		}
	}
	good := message.NewMessage("j", []byte(`{"timestamp":1,"container_id":"c","machine_id":"n","cpu":2}`))
	good.Metadata.Set(codecs.MetaKey, "pool")
	out, err := d.Handle(good)
	if err != nil || len(out) != 1 {
		t.Fatal(err)
	}
	ss, _ := codecs.DecodeSamples(out[0].Payload)
	if len(ss) != 1 || ss[0].Domain != "pool" || ss[0].Values[0] != 2 {
		t.Errorf("samples %+v", ss)
	}
	wm := message.NewMessage("w", nil)
	wm.Metadata.Set(codecs.MetaKind, codecs.KindWatermark)
	wm.Metadata.Set(codecs.MetaTick, "4")
	out, err = d.Handle(wm)
	if err != nil || len(out) != 1 || out[0].Metadata.Get(codecs.MetaTick) != "4" || out[0].Metadata.Get(codecs.MetaKind) != codecs.KindWatermark {
		t.Errorf("watermark must pass through: %v %v", out, err)
	}
}

func sample(dom string, tick int64, c, h, trace string, v float64) placement.Sample {
	return placement.Sample{Domain: dom, Tick: tick, Container: c, Host: h, TraceHost: trace, Values: []float64{v}}
}

func TestWindowClosesTicksAndReportsLoads(t *testing.T) {
	type closed struct {
		dom              string
		tick             int64
		actual, baseline map[string][]float64
	}
	var got []closed
	var dropped []string
	w := &Window{Metrics: 1,
		OnTickClosed: func(d string, tk int64, a, b map[string][]float64) { got = append(got, closed{d, tk, a, b}) },
		OnDropped: func(s placement.Sample, late bool) {
			dropped = append(dropped, map[bool]string{true: "late ", false: "dup "}[late]+s.Container)
		}}
	w.Add([]placement.Sample{sample("b", 0, "c1", "n1", "", 1), sample("a", 0, "c1", "n1", "", 2), sample("a", 0, "c2", "n1", "n2", 3),
		sample("a", 0, "c1", "n1", "", 9), sample("a", 1, "c1", "n1", "", 4)})
	bs := w.CloseAllUpTo(0)
	if len(bs) != 2 || bs[0].Domain != "a" || bs[1].Domain != "b" || len(bs[0].Samples) != 2 {
		t.Fatalf("closed %+v", bs)
	}
	w.Add([]placement.Sample{sample("a", 0, "c3", "n1", "", 1)})
	want := []closed{
		{"a", 0, map[string][]float64{"n1": {5}}, map[string][]float64{"n1": {2}, "n2": {3}}},
		{"b", 0, map[string][]float64{"n1": {1}}, map[string][]float64{"n1": {1}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("loads %+v, want %+v", got, want)
	}
	if !reflect.DeepEqual(dropped, []string{"dup c1", "late c3"}) {
		t.Errorf("dropped %v", dropped)
	}
	st := w.Stats()
	if st != (WindowStats{Samples: 4, Late: 1, Duplicates: 1, Ticks: 2}) {
		t.Errorf("stats %+v", st)
	}
	wm := message.NewMessage("w", nil)
	wm.Metadata.Set(codecs.MetaKind, codecs.KindWatermark)
	wm.Metadata.Set(codecs.MetaTick, "1")
	out, err := w.Handle(wm)
	if err != nil || len(out) != 1 || out[0].Metadata.Get(codecs.MetaDomain) != "a" || out[0].Metadata.Get(codecs.MetaTick) != "1" {
		t.Fatalf("watermark 1: %v %v", out, err)
	}
}

func TestLivePolicy(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type step struct {
		observe *struct {
			dom  string
			tick int64
		}
		at       float64
		wantOK   bool
		wantDue  []Close
		dueCheck bool
	}
	obs := func(dom string, tick int64, s float64, ok bool) step {
		return step{observe: &struct {
			dom  string
			tick int64
		}{dom, tick}, at: s, wantOK: ok}
	}
	due := func(s float64, c ...Close) step { return step{at: s, wantDue: c, dueCheck: true} }
	steps := []step{
		obs("d", 0, 0, true),
		obs("d", 0, 0.5, true),
		due(1, nil...),          // nothing later arrived yet
		obs("d", 1, 2, true),    // tick 1 starts: tick 0 closes after lateness
		due(2.9),                // lateness (1s) not yet passed
		obs("d", 0, 2.95, true), // still in time
		due(3, Close{Domain: "d", UpTo: 0}),
		obs("d", 0, 3.1, false), // late: dropped
		obs("e", 5, 3.2, true),
		due(8.5, Close{Domain: "d", UpTo: 1}, Close{Domain: "e", UpTo: 5}), // idle 5s closes all open ticks
		due(20),
	}
	p := NewLivePolicy(time.Second, 5*time.Second)
	for i, s := range steps {
		if s.observe != nil {
			if ok := p.Observe(s.observe.dom, s.observe.tick, at(s.at)); ok != s.wantOK {
				t.Errorf("step %d: Observe(%s, %d) = %v, want %v", i, s.observe.dom, s.observe.tick, ok, s.wantOK)
			}
			continue
		}
		if got := p.Due(at(s.at)); !reflect.DeepEqual(got, s.wantDue) {
			t.Errorf("step %d: Due(%v) = %v, want %v", i, s.at, got, s.wantDue)
		}
	}
	if p.Late() != 1 {
		t.Errorf("late = %d, want 1", p.Late())
	}
}

func TestPlacerCountsLateTicksAndPublishSplitsMoves(t *testing.T) {
	p := &Placer{Params: placement.Params{Metrics: []string{"cpu"}}, Hosts: []placement.Host{{Name: "n1", Capacity: []float64{4}}}}
	for _, tick := range []int64{3, 3, 2} {
		if _, err := p.CloseTick(placement.TickBatch{Domain: "d", Tick: tick, Samples: []placement.Sample{sample("d", tick, "c", "n1", "", 1)}}); err != nil {
			t.Fatal(err)
		}
	}
	if p.Late() != 2 || len(p.Domains()) != 1 {
		t.Errorf("late %d domains %d, want 2 late ticks and 1 engine", p.Late(), len(p.Domains()))
	}
	d := placement.Decision{Domain: "d", Tick: 5, Kind: "loop", Moves: []placement.Move{
		{ID: placement.MoveID("d", 5, "c1"), Domain: "d", Tick: 5, Container: "c1", OldHost: "a", NewHost: "b"},
		{ID: placement.MoveID("d", 5, "c2"), Domain: "d", Tick: 5, Container: "c2", OldHost: "b", NewHost: "a"}}}
	b, _ := json.Marshal(d)
	m := message.NewMessage("x", b)
	m.Metadata.Set(codecs.MetaKind, codecs.KindDecision)
	out, err := PublishMoves(m)
	if err != nil || len(out) != 2 {
		t.Fatalf("%v %v", out, err)
	}
	for i, o := range out {
		mv, err := codecs.DecodeMove(o.Payload)
		if err != nil || mv != d.Moves[i] || o.UUID != mv.ID || o.Metadata.Get(codecs.MetaKey) != "d" {
			t.Errorf("move %d: %+v %v uuid %s", i, mv, err, o.UUID)
		}
	}
}

// The window's per-tick duplicate check is a bitset over interned container
// ids, reused from tick to tick: check it over more than one word and over
// reuse, and that accepted samples carry the same names and values.
func TestWindowDuplicatesOverManyContainersAndTicks(t *testing.T) {
	var dups []string
	w := &Window{Metrics: 1, OnDropped: func(s placement.Sample, late bool) {
		if !late {
			dups = append(dups, s.Container)
		}
	}}
	name := func(i int) string { return "c" + string(rune('a'+i%26)) + string(rune('a'+i/26)) }
	var want []string
	for tick := range int64(3) {
		var ss []placement.Sample
		for i := range 200 {
			if (i+int(tick))%7 == 0 {
				continue // a container absent from this tick
			}
			ss = append(ss, sample("d", tick, name(i), "h"+name(i%5), "", float64(i)))
			if i%50 == int(tick) {
				ss = append(ss, sample("d", tick, name(i), "hx", "", -1))
				want = append(want, name(i))
			}
		}
		w.Add(ss)
		bs := w.CloseAllUpTo(tick)
		if len(bs) != 1 {
			t.Fatalf("tick %d: %d batches", tick, len(bs))
		}
		n := 0
		for i := range 200 {
			if (i+int(tick))%7 == 0 {
				continue
			}
			s := bs[0].Samples[n]
			if s.Container != name(i) || s.Host != "h"+name(i%5) || s.Values[0] != float64(i) || s.Tick != tick || s.Domain != "d" {
				t.Fatalf("tick %d sample %d = %+v", tick, n, s)
			}
			n++
		}
		if n != len(bs[0].Samples) {
			t.Fatalf("tick %d: %d samples, want %d", tick, len(bs[0].Samples), n)
		}
	}
	if !reflect.DeepEqual(dups, want) {
		t.Errorf("duplicates %v, want %v", dups, want)
	}
	if d, c, h := w.Seen(); d != 1 || c != 200 || h != 5 {
		t.Errorf("seen %d domains %d containers %d hosts, want 1 200 5", d, c, h)
	}
}

// Handle reads sample payloads without copying them first: what the window
// keeps, or hands to OnDropped, must not depend on the payload afterwards.
func TestWindowHandleKeepsNoPayloadViews(t *testing.T) {
	var dropped []placement.Sample
	w := &Window{Metrics: 1, OnDropped: func(s placement.Sample, late bool) { dropped = append(dropped, s) }}
	msg := func(ss ...placement.Sample) *message.Message {
		m := message.NewMessage("s", codecs.EncodeSamples(ss))
		m.Metadata.Set(codecs.MetaKind, codecs.KindSamples)
		return m
	}
	m1 := msg(sample("d", 0, "c1", "n1", "t1", 1), sample("d", 0, "c2", "n2", "", 2), sample("d", 0, "c1", "n3", "", 3))
	if _, err := w.Handle(m1); err != nil {
		t.Fatal(err)
	}
	bs := w.CloseAllUpTo(0)
	m2 := msg(sample("d", 0, "late", "n9", "", 4))
	if _, err := w.Handle(m2); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*message.Message{m1, m2} {
		for i := range m.Payload {
			m.Payload[i] = 'X'
		}
	}
	// The reader's value buffer is reused by the next payload.
	w.Handle(msg(sample("e", 0, "z1", "n1", "", 7), sample("e", 0, "z2", "n1", "", 7), sample("e", 0, "z3", "n1", "", 7)))
	want := []placement.Sample{sample("d", 0, "c1", "n1", "t1", 1), sample("d", 0, "c2", "n2", "", 2)}
	if len(bs) != 1 || !reflect.DeepEqual(bs[0].Samples, want) {
		t.Errorf("closed %+v, want %+v", bs, want)
	}
	if want := []placement.Sample{sample("d", 0, "c1", "n3", "", 3), sample("d", 0, "late", "n9", "", 4)}; !reflect.DeepEqual(dropped, want) {
		t.Errorf("dropped %+v, want %+v", dropped, want)
	}
	// A malformed payload is refused whole.
	bad := msg(sample("d", 1, "c1", "n1", "", 1), sample("d", 1, "c2", "n1", "", 1))
	bad.Payload = bad.Payload[:len(bad.Payload)-3]
	if _, err := w.Handle(bad); !IsPermanent(err) {
		t.Errorf("truncated payload: err = %v", err)
	}
	if st := w.Stats(); st.Samples != 5 {
		t.Errorf("samples %d, want 5 (nothing from the bad payload)", st.Samples)
	}
}
