package handlers

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

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
		codecs.RawRow{Line: 3, Fields: []string{"0", "c_2", "n_2", "-1"}},
		codecs.RawRow{Line: 4, Fields: []string{"0", "c_3", "n_1", "2"}}))
	if err != nil || len(out) != 1 {
		t.Fatalf("out %v err %v", out, err)
	}
	ss, _ := codecs.DecodeSamples(out[0].Payload)
	want := []placement.Sample{{Domain: "default", Tick: 0, Container: "c_1", Host: "n_1", Values: []float64{1.5}},
		{Domain: "default", Tick: 0, Container: "c_3", Host: "n_1", Values: []float64{2}}}
	if !reflect.DeepEqual(ss, want) {
		t.Errorf("samples %+v, want %+v", ss, want)
	}
	if len(rejects) != 1 || rejects[0].Line != 3 || rejects[0].Field != "cpu" || rejects[0].Raw != "0,c_2,n_2,-1" {
		t.Errorf("rejects %+v, want line 3 cpu with the row in raw", rejects)
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

// replayWindow is a Window under the watermark rule whose Emit records
// the closed ticks (decoded, so that nothing aliases the window's buffers)
// and can feed moves back, as the placement stage's OnDecision does.
type replayWindow struct {
	*Window
	closed []placement.TickBatch
	decide func(b placement.TickBatch) []placement.Move
}

func newReplayWindow() *replayWindow {
	r := &replayWindow{Window: &Window{Fields: codecs.UsageFields{Metrics: []string{"cpu"}}, Rule: TickRule{Watermarks: true}}}
	r.Emit = func(msgs []*message.Message) error {
		for _, m := range msgs {
			ss, err := codecs.DecodeSamples(m.Payload)
			if err != nil {
				return err
			}
			tick, _ := strconv.ParseInt(m.Metadata.Get(codecs.MetaTick), 10, 64)
			b := placement.TickBatch{Domain: m.Metadata.Get(codecs.MetaDomain), Tick: tick, Samples: ss}
			r.closed = append(r.closed, b)
			if r.decide != nil {
				if mv := r.decide(b); len(mv) > 0 {
					r.Decided(&placement.Decision{Domain: b.Domain, Tick: tick, Moves: mv})
				}
			}
		}
		return nil
	}
	return r
}

func watermark(tick int64) *message.Message {
	m := message.NewMessage("w", nil)
	m.Metadata.Set(codecs.MetaKind, codecs.KindWatermark)
	m.Metadata.Set(codecs.MetaTick, strconv.FormatInt(tick, 10))
	return m
}

func (r *replayWindow) watermark(t *testing.T, tick int64) []placement.TickBatch {
	t.Helper()
	n := len(r.closed)
	if err := r.Handle(watermark(tick)); err != nil {
		t.Fatal(err)
	}
	return r.closed[n:]
}

func TestWindowClosesTicksAndReportsLoads(t *testing.T) {
	type closed struct {
		dom              string
		tick             int64
		actual, baseline map[string][]float64
	}
	var got []closed
	w := newReplayWindow()
	w.OnTickClosed = func(d string, tk int64, a, b map[string][]float64) { got = append(got, closed{d, tk, a, b}) }
	w.Add([]placement.Sample{sample("b", 0, "c1", "n1", "", 1), sample("a", 0, "c1", "n1", "", 2), sample("a", 0, "c2", "n1", "n2", 3),
		sample("a", 0, "c1", "n1", "", 9), sample("a", 1, "c1", "n1", "", 4)})
	bs := w.watermark(t, 0)
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
	st := w.Stats()
	if st != (WindowStats{Samples: 4, Late: 1, Duplicates: 1, Ticks: 2}) {
		t.Errorf("stats %+v", st)
	}
	if bs := w.watermark(t, 1); len(bs) != 1 || bs[0].Domain != "a" || bs[0].Tick != 1 {
		t.Fatalf("watermark 1: %+v", bs)
	}
}

// The window is the one place a move reaches later samples: a move decided
// at tick t re-attributes the container's samples from tick t+1 on (the
// recorded host kept as TraceHost), and only the container's.
func TestWindowAppliesMovesFromTheNextTick(t *testing.T) {
	w := newReplayWindow()
	w.decide = func(b placement.TickBatch) []placement.Move {
		if b.Tick == 1 {
			return []placement.Move{{Domain: "d", Tick: 1, Container: "c1", OldHost: "n1", NewHost: "n2"}}
		}
		return nil
	}
	for tick := range int64(4) {
		w.Add([]placement.Sample{sample("d", tick, "c1", "n1", "", 1), sample("d", tick, "c2", "n1", "", 2)})
		w.watermark(t, tick)
	}
	var got []string
	for _, b := range w.closed {
		for _, s := range b.Samples {
			got = append(got, fmt.Sprintf("%d:%s:%s:%s", b.Tick, s.Container, s.Host, s.TraceHost))
		}
	}
	want := []string{"0:c1:n1:", "0:c2:n1:", "1:c1:n1:", "1:c2:n1:", "2:c1:n2:n1", "2:c2:n1:", "3:c1:n2:n1", "3:c2:n1:"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("closed samples (tick:container:host:trace)\n got %v\nwant %v", got, want)
	}
	if st := w.Stats(); st.Relocated != 2 {
		t.Errorf("relocated %d, want 2", st.Relocated)
	}
}

// Each stage refuses a message kind it is not listed for in the contract
// (codecs/batch.go) with a permanent error: poisoned, never dropped.
func TestStagesRefuseUnknownKinds(t *testing.T) {
	msg := func(kind string) *message.Message {
		m := message.NewMessage("x", []byte("{}"))
		m.Metadata.Set(codecs.MetaKind, kind)
		return m
	}
	d := &Decoder{Reject: func(*codecs.RowError) {}}
	p := &Placer{}
	w := newReplayWindow()
	for _, tt := range []struct {
		stage string
		run   func(*message.Message) error
		kind  string
	}{
		{"decode", func(m *message.Message) error { _, err := d.Handle(m); return err }, codecs.KindTick},
		{"window", w.Handle, codecs.KindRows},
		{"placement", func(m *message.Message) error { _, err := p.Handle(m); return err }, codecs.KindSamples},
		{"publish", func(m *message.Message) error { _, err := PublishMoves(m); return err }, codecs.KindTick},
		{"window", w.Handle, "gossip"},
	} {
		err := tt.run(msg(tt.kind))
		if !IsPermanent(err) || !strings.Contains(err.Error(), tt.kind) {
			t.Errorf("%s given %q: err = %v, want a permanent error naming the kind", tt.stage, tt.kind, err)
		}
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
	w := newReplayWindow()
	name := func(i int) string { return "c" + string(rune('a'+i%26)) + string(rune('a'+i/26)) }
	dups := 0
	for tick := range int64(3) {
		var ss []placement.Sample
		for i := range 200 {
			if (i+int(tick))%7 == 0 {
				continue // a container absent from this tick
			}
			ss = append(ss, sample("d", tick, name(i), "h"+name(i%5), "", float64(i)))
			if i%50 == int(tick) {
				ss = append(ss, sample("d", tick, name(i), "hx", "", -1))
				dups++
			}
		}
		w.Add(ss)
		bs := w.watermark(t, tick)
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
	if st := w.Stats(); st.Duplicates != int64(dups) {
		t.Errorf("duplicates %d, want %d", st.Duplicates, dups)
	}
	if d, c, h := w.Seen(); d != 1 || c != 200 || h != 5 {
		t.Errorf("seen %d domains %d containers %d hosts, want 1 200 5", d, c, h)
	}
}

// Handle reads sample payloads without copying them first: what the window
// keeps must not depend on the payload afterwards.
func TestWindowHandleKeepsNoPayloadViews(t *testing.T) {
	w := newReplayWindow()
	msg := func(ss ...placement.Sample) *message.Message {
		m := message.NewMessage("s", codecs.EncodeSamples(ss))
		m.Metadata.Set(codecs.MetaKind, codecs.KindSamples)
		return m
	}
	m1 := msg(sample("d", 0, "c1", "n1", "t1", 1), sample("d", 0, "c2", "n2", "", 2), sample("d", 0, "c1", "n3", "", 3))
	if err := w.Handle(m1); err != nil {
		t.Fatal(err)
	}
	for i := range m1.Payload {
		m1.Payload[i] = 'X'
	}
	// The reader's value buffer is reused by the next payload.
	if err := w.Handle(msg(sample("e", 0, "z1", "n1", "", 7), sample("e", 0, "z2", "n1", "", 7), sample("e", 0, "z3", "n1", "", 7))); err != nil {
		t.Fatal(err)
	}
	bs := w.watermark(t, 0)
	want := []placement.Sample{sample("d", 0, "c1", "n1", "t1", 1), sample("d", 0, "c2", "n2", "", 2)}
	if len(bs) != 2 || !reflect.DeepEqual(bs[0].Samples, want) {
		t.Errorf("closed %+v, want %+v first", bs, want)
	}
	if err := w.Handle(msg(sample("d", 0, "late", "n9", "", 4))); err != nil {
		t.Fatal(err)
	}
	// A malformed payload is refused whole.
	bad := msg(sample("d", 1, "c1", "n1", "", 1), sample("d", 1, "c2", "n1", "", 1))
	bad.Payload = bad.Payload[:len(bad.Payload)-3]
	if err := w.Handle(bad); !IsPermanent(err) {
		t.Errorf("truncated payload: err = %v", err)
	}
	if st := w.Stats(); st.Samples != 5 || st.Late != 1 || st.Duplicates != 1 {
		t.Errorf("stats %+v, want 5 samples (nothing from the bad payload), 1 late, 1 duplicate", st)
	}
}

// Pinned marks go from the input (a CSV pinned column, a JSON field) through
// the decoder's samples and the window's closed tick, re-attributed
// samples included.
func TestPinnedCarriedToTheClosedTick(t *testing.T) {
	d := &Decoder{Fields: codecs.UsageFields{Metrics: []string{"cpu"}}, Reject: func(e *codecs.RowError) { t.Errorf("reject %v", e) }}
	b := codecs.RawBatch{Source: "u.csv", Header: []string{"timestamp", "container_id", "machine_id", "cpu", "pinned"}, Rows: []codecs.RawRow{
		{Line: 2, Fields: []string{"1", "c_1", "n_1", "1", "true"}}, {Line: 3, Fields: []string{"1", "c_2", "n_1", "1", ""}}}}
	p, _ := b.MarshalBinary()
	rows := message.NewMessage("b", p)
	rows.Metadata.Set(codecs.MetaKind, codecs.KindRows)
	js := message.NewMessage("j", []byte(`{"timestamp":1,"container_id":"c_3","machine_id":"n_2","cpu":2,"pinned":true}`))
	w := newReplayWindow()
	w.decide = func(b placement.TickBatch) []placement.Move {
		if b.Tick == 1 {
			return []placement.Move{{Domain: "default", Tick: 1, Container: "c_1", OldHost: "n_1", NewHost: "n_2"}}
		}
		return nil
	}
	for _, m := range []*message.Message{rows, js} {
		out, err := d.Handle(m)
		if err != nil || len(out) != 1 {
			t.Fatalf("decode %s: %v %v", m.UUID, out, err)
		}
		if err := w.Handle(out[0]); err != nil {
			t.Fatal(err)
		}
	}
	got := w.watermark(t, 1)
	if len(got) != 1 || len(got[0].Samples) != 3 {
		t.Fatalf("closed %+v", got)
	}
	for _, s := range got[0].Samples {
		if s.Pinned != (s.Container != "c_2") {
			t.Errorf("%s: pinned %v", s.Container, s.Pinned)
		}
	}
	w.Add([]placement.Sample{{Domain: "default", Tick: 2, Container: "c_1", Host: "n_1", Values: []float64{1}, Pinned: true}})
	got = w.watermark(t, 2)
	if s := got[0].Samples[0]; !s.Pinned || s.Host != "n_2" || s.TraceHost != "n_1" {
		t.Errorf("re-attributed sample %+v, want pinned on n_2 (trace n_1)", s)
	}
}
