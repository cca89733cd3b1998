package file

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
	"hots/placement"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type rejects struct {
	mu   sync.Mutex
	list []*codecs.RowError
}

func (r *rejects) add(e *codecs.RowError) { r.mu.Lock(); r.list = append(r.list, e); r.mu.Unlock() }

// got is what a replay emitted, as the pipeline would see it: every row
// "tick|line|container|host|trace_host", and "W<tick>" per watermark.
type got struct {
	events  []string
	batches int
}

// replay drains a Subscriber, acking every message; onTick runs before a
// watermark is acked (where the pipeline would publish moves).
func replay(t *testing.T, s *Subscriber, onTick func(tick int64)) got {
	t.Helper()
	ch, err := s.Subscribe(context.Background(), "usage")
	if err != nil {
		t.Fatal(err)
	}
	var g got
	h := s.Header()
	for {
		select {
		case m := <-ch:
			tick, _ := strconv.ParseInt(m.Metadata.Get(codecs.MetaTick), 10, 64)
			switch m.Metadata.Get(codecs.MetaKind) {
			case codecs.KindRows:
				g.batches++
				var b codecs.RawBatch
				if err := b.UnmarshalBinary(m.Payload); err != nil {
					t.Fatal(err)
				}
				if first := m.Metadata.Get(codecs.MetaFirstLine); first != strconv.FormatInt(b.Rows[0].Line, 10) {
					t.Errorf("first_line %s, first row line %d", first, b.Rows[0].Line)
				}
				for _, r := range b.Rows {
					g.events = append(g.events, strings.Join([]string{r.Fields[h.Tick], strconv.FormatInt(r.Line, 10), r.Fields[h.Container], r.Fields[h.Host]}, "|"))
				}
			case codecs.KindWatermark:
				if onTick != nil {
					onTick(tick)
				}
				g.events = append(g.events, "W"+strconv.FormatInt(tick, 10))
			default:
				t.Fatalf("unexpected message kind %q", m.Metadata.Get(codecs.MetaKind))
			}
			m.Ack()
		case <-s.Done():
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			s.Close()
			return g
		}
	}
}

func TestSubscriberEmitsInTickOrder(t *testing.T) {
	sorted := "timestamp,container_id,machine_id,cpu\n0,c_1,n_1,1\n0,c_2,n_2,2\n0,c_3,n_1,3\n1,c_1,n_1,1\n1,c_2,n_2,2\n2,c_1,n_1,1\n"
	grouped := "cpu,machine_id,container_id,timestamp\n1,n_1,c_1,2\n1,n_1,c_1,0\n1,n_1,c_1,1\n2,n_2,c_2,1\n2,n_2,c_2,0\n3,n_1,c_3,0" // no final newline
	tests := []struct {
		name, content string
		sorted        bool
		want          []string
	}{
		{"sorted", sorted, true, []string{"0|2|c_1|n_1", "0|3|c_2|n_2", "0|4|c_3|n_1", "W0", "1|5|c_1|n_1", "1|6|c_2|n_2", "W1", "2|7|c_1|n_1", "W2"}},
		{"grouped by container", grouped, false, []string{"0|3|c_1|n_1", "0|6|c_2|n_2", "0|7|c_3|n_1", "W0", "1|4|c_1|n_1", "1|5|c_2|n_2", "W1", "2|2|c_1|n_1", "W2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rj rejects
			s, err := NewSubscriber(Config{UsagePath: writeFile(t, "u.csv", tt.content), BatchRows: 2, Reject: rj.add})
			if err != nil {
				t.Fatal(err)
			}
			if s.Sorted() != tt.sorted {
				t.Errorf("Sorted() = %v, want %v", s.Sorted(), tt.sorted)
			}
			g := replay(t, s, nil)
			if !reflect.DeepEqual(g.events, tt.want) {
				t.Errorf("events\n got %v\nwant %v", g.events, tt.want)
			}
			if g.batches != 4 { // ticks of 3, 2, 1 rows in batches of 2
				t.Errorf("batches = %d, want 4", g.batches)
			}
			st := s.Stats()
			if st.Rows != 6 || st.Ticks != 3 || len(rj.list) != 0 {
				t.Errorf("stats %+v, rejects %v", st, rj.list)
			}
		})
	}
}

func TestSubscriberBadRows(t *testing.T) {
	for _, order := range []string{"sorted", "unsorted"} {
		t.Run(order, func(t *testing.T) {
			rows := []string{"0,c_1,n_1,1", "0,c_2,n_1", "x,c_3,n_1,1", "0,c_1,n_2,5", `0,"c_4,n_1,1`}
			if order == "unsorted" {
				rows = append([]string{"1,c_9,n_1,1"}, rows...)
			}
			content := "timestamp,container_id,machine_id,cpu\n" + strings.Join(rows, "\n") + "\n"
			var rj rejects
			s, err := NewSubscriber(Config{UsagePath: writeFile(t, "u.csv", content), Reject: rj.add})
			if err != nil {
				t.Fatal(err)
			}
			g := replay(t, s, nil)
			off := int64(0)
			if order == "unsorted" {
				off = 1
			}
			want := map[int64]string{
				3 + off: "has 3 fields, header has 4",
				4 + off: "tick is not an integer",
				5 + off: "duplicate (tick 0, container): first row (line " + strconv.FormatInt(2+off, 10) + ") kept",
				6 + off: "not a CSV record",
			}
			if len(rj.list) != len(want) {
				t.Fatalf("rejects = %v, want %d", rj.list, len(want))
			}
			for _, e := range rj.list {
				if !strings.HasPrefix(e.Reason, want[e.Line]) || !strings.HasSuffix(e.Source, "u.csv") {
					t.Errorf("reject %v, want reason %q at line %d", e, want[e.Line], e.Line)
				}
			}
			if first := g.events[0]; first != "0|"+strconv.FormatInt(2+off, 10)+"|c_1|n_1" {
				t.Errorf("first row %s: the first of duplicates must be kept", first)
			}
			if st := s.Stats(); st.Rejected != 4 || st.Rows != int64(len(rows)) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestSubscriberStopsOnUnusableFile(t *testing.T) {
	tests := []struct {
		name, content, fields, want string
	}{
		{"missing column", "timestamp,container_id,host,cpu\n0,c,n,1\n", "", `missing column "machine_id"`},
		{"missing metric", "timestamp,container_id,machine_id,cpu\n0,c,n,1\n", "mem", `missing column "mem"`},
		{"empty", "", "", "empty file"},
		{"header only", "timestamp,container_id,machine_id,cpu\n", "", "no data rows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, "u.csv", tt.content)
			f := codecs.UsageFields{}
			if tt.fields != "" {
				f.Metrics = []string{tt.fields}
			}
			_, err := NewSubscriber(Config{UsagePath: p, Fields: f, Reject: func(*codecs.RowError) {}})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("err = %v, want %q naming %s", err, tt.want, p)
			}
		})
	}
	_, err := NewSubscriber(Config{UsagePath: filepath.Join(t.TempDir(), "nope.csv"), Reject: func(*codecs.RowError) {}})
	if err == nil || !strings.Contains(err.Error(), "nope.csv") {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestSubscriberReportsUnknownHostsOnce(t *testing.T) {
	for _, content := range []string{
		"timestamp,container_id,machine_id,cpu\n0,c_1,n_1,1\n0,c_2,n_2,1\n1,c_1,n_1,1\n1,c_2,n_2,1\n2,c_1,n_1,1\n2,c_2,n_2,1\n",
		"timestamp,container_id,machine_id,cpu\n2,c_1,n_1,1\n1,c_1,n_1,1\n0,c_1,n_1,1\n2,c_2,n_2,1\n1,c_2,n_2,1\n0,c_2,n_2,1\n",
	} {
		s, err := NewSubscriber(Config{UsagePath: writeFile(t, "u.csv", content),
			KnownHosts: map[string]bool{"n_1": true}, Reject: func(*codecs.RowError) {}})
		if err != nil {
			t.Fatal(err)
		}
		g := replay(t, s, func(int64) {})
		rows := 0
		for _, e := range g.events {
			if strings.Contains(e, "|c_") {
				rows++
			}
		}
		if rows != 6 {
			t.Errorf("%d rows emitted, want 6: %v", rows, g.events)
		}
		if st := s.Stats(); !reflect.DeepEqual(st.UnknownHosts, []string{"n_2"}) {
			t.Errorf("stats %+v: want n_2 unknown once", st)
		}
	}
}

func TestMovesPublisher(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out", "moves.jsonl")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, []byte("old line\n"), 0o644)
	pub, err := NewMovesPublisher(p, true)
	if err != nil {
		t.Fatal(err)
	}
	mv := placement.Move{ID: placement.MoveID("d", 3, "c"), Domain: "d", Tick: 3, Container: "c", OldHost: "a", NewHost: "b", Reason: placement.ReasonConflict}
	b, _ := codecs.EncodeMove(mv)
	if err := pub.Publish("moves", message.NewMessage("1", b)); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish("moves", message.NewMessage("2", []byte(`{"tick":1}`))); err == nil {
		t.Error("an invalid move was accepted")
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	data, _ := os.ReadFile(p)
	if string(data) != string(b)+"\n" {
		t.Errorf("moves file = %q, want the one move (reset_on_start truncated the old line)", data)
	}
	pub2, _ := NewMovesPublisher(p, false)
	pub2.Publish("moves", message.NewMessage("3", b))
	pub2.Close()
	data, _ = os.ReadFile(p)
	if strings.Count(string(data), "\n") != 2 {
		t.Errorf("without reset the file must be appended to: %q", data)
	}
}

func TestRejectsFileAndPoison(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rejects.csv")
	var notified int
	rw, err := NewRejectsWriter(p, func(*codecs.RowError) { notified++ })
	if err != nil {
		t.Fatal(err)
	}
	rw.Reject(&codecs.RowError{Position: codecs.Position{Source: "u.csv", Line: 4}, Field: "cpu", Value: "x", Reason: "metric is not a number", Raw: "0,c,n,x"})
	m := message.NewMessage("m", []byte(`{"bad":1}`))
	m.Metadata.Set("topic_poisoned", "usage")
	m.Metadata.Set("handler_poisoned", "decode")
	m.Metadata.Set("reason_poisoned", "missing field")
	PoisonPublisher{Rejects: rw}.Publish("poison", m)
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(p)
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"source", "line", "field", "reason", "raw"},
		{"u.csv", "4", "cpu", `metric is not a number (value "x")`, "0,c,n,x"},
		{"usage", "0@0", "", "poisoned in decode: missing field", `{"bad":1}`}}
	// A poisoned message is counted by the pipeline that poisoned it, so
	// only the connector's own reject notifies.
	if !reflect.DeepEqual(recs, want) || rw.Count() != 2 || notified != 1 {
		t.Errorf("rejects file = %q (count %d, notified %d), want %q", recs, rw.Count(), notified, want)
	}
}

// Unsorted files are read back through a memory map where possible, with
// ReadAt otherwise: both give the same events, quoted and multi-line
// records included.
func TestSubscriberIndexedReadPaths(t *testing.T) {
	content := "timestamp,container_id,machine_id,cpu\r\n" +
		"2,c_1,n_1,1\r\n1,\"c_1\",n_1,2\r\n\r\n0,c_1,n_1,3\r\n" +
		"1,\"c\n2\",n_2,4\n0,c_2,\"n,2\",5\n\n2,c_2,n_2,6" // no final newline
	want := []string{"0|5|c_1|n_1", "0|8|c_2|n,2", "W0", "1|3|c_1|n_1", "1|6|c\n2|n_2", "W1", "2|2|c_1|n_1", "2|10|c_2|n_2", "W2"}
	defer func() { mapFiles = true }()
	for _, mapped := range []bool{true, false} {
		mapFiles = mapped
		var rj rejects
		s, err := NewSubscriber(Config{UsagePath: writeFile(t, "u.csv", content), BatchRows: 2, Reject: rj.add})
		if err != nil {
			t.Fatal(err)
		}
		if s.Sorted() {
			t.Fatal("file read as sorted")
		}
		if g := replay(t, s, nil); !reflect.DeepEqual(g.events, want) || len(rj.list) != 0 {
			t.Errorf("mapped=%v: events\n got %q\nwant %q\nrejects %v", mapped, g.events, want, rj.list)
		}
	}
}

// A file truncated while an unsorted replay reads it back stops the replay
// with an error (through the mapping, a fault made a panic and recovered),
// it does not crash the process.
func TestSubscriberFileTruncatedDuringIndexedReplay(t *testing.T) {
	var b strings.Builder
	b.WriteString("timestamp,container_id,machine_id,cpu\n")
	for c := range 3000 {
		for tick := range 3 {
			b.WriteString(strconv.Itoa(tick) + ",c_" + strconv.Itoa(c) + ",n_1,1\n")
		}
	}
	for _, mapped := range []bool{true, false} {
		mapFiles = mapped
		p := writeFile(t, "u.csv", b.String())
		s, err := NewSubscriber(Config{UsagePath: p, Reject: func(*codecs.RowError) {}})
		if err != nil {
			t.Fatal(err)
		}
		ch, _ := s.Subscribe(context.Background(), "usage")
	loop:
		for {
			select {
			case m := <-ch:
				if m.Metadata.Get(codecs.MetaKind) == codecs.KindWatermark {
					if err := os.Truncate(p, 0); err != nil {
						t.Fatal(err)
					}
				}
				m.Ack()
			case <-s.Done():
				break loop
			}
		}
		if err := s.Err(); err == nil || !strings.Contains(err.Error(), "changed while replaying") {
			t.Errorf("mapped=%v: err = %v, want the file changed while replaying", mapped, err)
		}
		s.Close()
	}
	mapFiles = true
}

// A row longer than a packed index entry holds (1 MiB) is indexed through
// the side table; ticks of more rows than one index block span blocks.
func TestSubscriberIndexLongRowsAndManyRows(t *testing.T) {
	long := "c_" + strings.Repeat("x", 1<<20+10)
	var b strings.Builder
	b.WriteString("timestamp,container_id,machine_id,cpu\n1,c_0,n_1,1\n0," + long + ",n_1,1\n")
	var want0, want1 []string
	want0 = append(want0, "0|3|"+long+"|n_1")
	want1 = append(want1, "1|2|c_0|n_1")
	for i := range 20000 {
		tick := 1 - i%2
		b.WriteString(strconv.Itoa(tick) + ",k_" + strconv.Itoa(i) + ",n_2,1\n")
		ev := strconv.Itoa(tick) + "|" + strconv.Itoa(i+4) + "|k_" + strconv.Itoa(i) + "|n_2"
		if tick == 0 {
			want0 = append(want0, ev)
		} else {
			want1 = append(want1, ev)
		}
	}
	want := append(append(append(want0, "W0"), want1...), "W1")
	defer func() { mapFiles = true }()
	for _, mapped := range []bool{true, false} {
		mapFiles = mapped
		var rj rejects
		s, err := NewSubscriber(Config{UsagePath: writeFile(t, "u.csv", b.String()), Reject: rj.add})
		if err != nil {
			t.Fatal(err)
		}
		if g := replay(t, s, nil); !reflect.DeepEqual(g.events, want) || len(rj.list) != 0 {
			t.Errorf("mapped=%v: %d events (want %d), rejects %v", mapped, len(g.events), len(want), rj.list)
		}
	}
}
