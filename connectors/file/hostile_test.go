package file

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
)

// Issue 10: a killed run leaves a rejects file that reads. The header is
// there at once; records reach the file whole, at each Flush.
func TestRejectsFileIsReadableWithoutClose(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rejects.csv")
	rw, err := NewRejectsWriter(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	read := func() string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	const header = "source,line,field,reason,raw\n"
	if got := read(); got != header {
		t.Fatalf("before any reject: %q, want the header", got)
	}
	rw.Reject(&codecs.RowError{Position: codecs.Position{Source: "u.csv", Line: 4}, Reason: "bad", Raw: "0,c,n,x"})
	rw.Flush()
	if got, want := read(), header+"u.csv,4,,bad,\"0,c,n,x\"\n"; got != want {
		t.Fatalf("after a flush: %q, want %q", got, want)
	}
	// Past the buffer bound records are written without a Flush, and only
	// whole ones.
	for i := 0; i < 2000; i++ {
		rw.Reject(&codecs.RowError{Position: codecs.Position{Source: "u.csv", Line: int64(i + 5)}, Reason: strings.Repeat("r", 60)})
	}
	got := read()
	if len(got) <= len(header)+30 || !strings.HasSuffix(got, "\n") {
		t.Errorf("without a flush: %d bytes, ends %q; want whole records written", len(got), got[max(0, len(got)-20):])
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(read(), "\n"); n != 2002 {
		t.Errorf("%d lines after close, want 2002", n)
	}
}

// A message in flight when the run stops is not a reject, and binary
// batches never land in raw (issue 10: bad_input stop wrote the samples
// payload as raw).
func TestPoisonPublisherRawAndStopping(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rejects.csv")
	rw, err := NewRejectsWriter(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := func(kind string, payload []byte) *message.Message {
		m := message.NewMessage("m", payload)
		m.Metadata.Set(codecs.MetaKind, kind)
		m.Metadata.Set(codecs.MetaSource, "u.csv")
		m.Metadata.Set(codecs.MetaFirstLine, "2")
		m.Metadata.Set("handler_poisoned", "window")
		m.Metadata.Set("reason_poisoned", "boom")
		return m
	}
	stopping := false
	pp := PoisonPublisher{Rejects: rw, Stopping: func() bool { return stopping }}
	pp.Publish("poison", msg(codecs.KindSamples, []byte{0x0b, 0, 0, 0, 7, 'd'}), msg(codecs.KindJSON, []byte(`{"a":1}`)),
		msg("", []byte{0xff, 0xfe}))
	stopping = true
	pp.Publish("poison", msg(codecs.KindSamples, []byte("x")))
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	want := "source,line,field,reason,raw\n" +
		"u.csv,2,,poisoned in window: boom,\n" +
		"u.csv,2,,poisoned in window: boom,\"{\"\"a\"\":1}\"\n" +
		"u.csv,2,,poisoned in window: boom,\n"
	if string(b) != want || rw.Count() != 3 {
		t.Errorf("rejects (%d):\n%s\nwant\n%s", rw.Count(), b, want)
	}
}

// Issue 10: a file that changes under a run is detected. Shrunk: the run
// fails (it did not replay the file). Grown: the appended rows are not
// replayed, in sorted and unsorted files alike, and that is reported.
// Replaced (sed -i renames a new file over it): the run fails.
func TestSubscriberFileChangedUnderTheRun(t *testing.T) {
	trace := func(sorted bool) string {
		var b strings.Builder
		b.WriteString("timestamp,container_id,machine_id,cpu\n")
		for tick := range 10 {
			if !sorted && tick == 5 {
				b.WriteString("0,c_late,n_1,1\n")
			}
			b.WriteString(strconv.Itoa(tick) + ",c_1,n_1,1\n" + strconv.Itoa(tick) + ",c_2,n_1,1\n")
		}
		return b.String()
	}
	tests := []struct {
		name   string
		sorted bool
		change func(t *testing.T, p string)
		err    string // "" = no error
		ticks  int64
		grown  bool
	}{
		{"sorted, truncated", true, func(t *testing.T, p string) { os.Truncate(p, 100) }, "(truncated); ticks after", -1, false},
		{"sorted, appended", true, appendRows, "", 10, true},
		{"unsorted, appended", false, appendRows, "", 10, true},
		{"unsorted, truncated", false, func(t *testing.T, p string) { os.Truncate(p, 100) }, "changed while replaying", -1, false},
		{"sorted, replaced", true, replace, "replaced by another file since the run started", 0, false},
		{"unsorted, replaced", false, replace, "replaced by another file since the run started", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, "u.csv", trace(tt.sorted))
			s, err := NewSubscriber(Config{UsagePath: p, Reject: func(*codecs.RowError) {}})
			if err != nil {
				t.Fatal(err)
			}
			if s.Sorted() != tt.sorted {
				t.Fatalf("sorted = %v", s.Sorted())
			}
			tt.change(t, p)
			ch, _ := s.Subscribe(context.Background(), "usage")
		loop:
			for {
				select {
				case m := <-ch:
					m.Ack()
				case <-s.Done():
					break loop
				}
			}
			defer s.Close()
			err = s.Err()
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
			st := s.Stats()
			if tt.ticks >= 0 && st.Ticks != tt.ticks {
				t.Errorf("%d ticks emitted, want %d", st.Ticks, tt.ticks)
			}
			if (st.Grown > 0) != tt.grown {
				t.Errorf("grown = %d, want > 0: %v", st.Grown, tt.grown)
			}
		})
	}
}

func appendRows(t *testing.T, p string) {
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("10,c_1,n_1,1\n11,c_1,n_1,1\n")
	f.Close()
}

func replace(t *testing.T, p string) {
	b, _ := os.ReadFile(p)
	tmp := p + ".new"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}
