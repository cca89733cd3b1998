package file

import (
	"os"
	"path/filepath"
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
