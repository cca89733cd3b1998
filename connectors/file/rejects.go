package file

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
)

// RejectsWriter is the rejects file (CSV: source,line,field,reason,raw).
// Every bad record of a run ends up here, whichever stage refused it.
//
// It is written so that a crash (even SIGKILL) leaves a file that reads:
// the header is on disk at once, records are buffered whole and written
// whole at each Flush (the file replay flushes after every tick, as the
// moves file is after every publish) or when 64 KiB are pending, so the
// file never ends in half a record of a buffer that filled up.
type RejectsWriter struct {
	mu      sync.Mutex
	f       *os.File
	pending bytes.Buffer
	w       *csv.Writer // into pending
	err     error       // first write error, reported by Close
	n       int64
	notify  func(*codecs.RowError)
	path    string
}

const rejectsFlushBytes = 64 << 10

// NewRejectsWriter creates (truncates) path; an empty path only counts.
// notify, if set, is called for every reject (the run's observer).
func NewRejectsWriter(path string, notify func(*codecs.RowError)) (*RejectsWriter, error) {
	rw := &RejectsWriter{notify: notify, path: path}
	if path == "" {
		return rw, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("rejects file: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("rejects file: %w", err)
	}
	rw.f = f
	rw.w = csv.NewWriter(&rw.pending)
	_ = rw.w.Write([]string{"source", "line", "field", "reason", "raw"})
	rw.w.Flush()
	if rw.flushLocked(); rw.err != nil {
		f.Close()
		return nil, fmt.Errorf("rejects file %s: %w", path, rw.err)
	}
	return rw, nil
}

// Reject records one bad record and tells notify.
func (rw *RejectsWriter) Reject(e *codecs.RowError) {
	rw.write(e)
	if rw.notify != nil {
		rw.notify(e)
	}
}

// write records one bad record without telling anyone: a poisoned
// message, which the pipeline counts itself.
func (rw *RejectsWriter) write(e *codecs.RowError) {
	rw.mu.Lock()
	rw.n++
	if rw.f != nil {
		line := ""
		if e.Line > 0 {
			line = strconv.FormatInt(e.Line, 10)
		} else if e.Source != "" {
			line = fmt.Sprintf("%d@%d", e.Partition, e.Offset)
		}
		reason := e.Reason
		if e.Value != "" {
			reason += fmt.Sprintf(" (value %q)", e.Value)
		}
		_ = rw.w.Write([]string{e.Source, line, e.Field, reason, e.Raw})
		rw.w.Flush() // into pending: whole records only
		if rw.pending.Len() >= rejectsFlushBytes {
			rw.flushLocked()
		}
	}
	rw.mu.Unlock()
}

// Flush writes the pending records to the file.
func (rw *RejectsWriter) Flush() {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	rw.flushLocked()
}

func (rw *RejectsWriter) flushLocked() {
	if rw.f == nil || rw.pending.Len() == 0 {
		return
	}
	if _, err := rw.f.Write(rw.pending.Bytes()); err != nil && rw.err == nil {
		rw.err = err
	}
	rw.pending.Reset()
}

// Count is the number of rejects so far.
func (rw *RejectsWriter) Count() int64 {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return rw.n
}

// Close flushes and syncs the file.
func (rw *RejectsWriter) Close() error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.f == nil {
		return nil
	}
	rw.flushLocked()
	err := rw.err
	if e := rw.w.Error(); err == nil {
		err = e
	}
	if e := rw.f.Sync(); err == nil {
		err = e
	}
	if e := rw.f.Close(); err == nil {
		err = e
	}
	rw.f = nil
	return err
}

// PoisonPublisher is the poison-queue publisher of file mode: a message the
// pipeline gave up on becomes a line of the rejects file, with the reason
// the poison middleware attached.
type PoisonPublisher struct {
	Rejects *RejectsWriter
	// Stopping, if set, reports that the run is being stopped (bad_input
	// stop, a signal, the time limit): messages in flight then fail for
	// that reason, not for being bad, and are not rejects (the run itself
	// reports why it stopped).
	Stopping func() bool
}

// Publish implements message.Publisher.
func (p PoisonPublisher) Publish(topic string, msgs ...*message.Message) error {
	if p.Stopping != nil && p.Stopping() {
		return nil
	}
	for _, m := range msgs {
		src := m.Metadata.Get(codecs.MetaSource)
		if src == "" {
			src = m.Metadata.Get("topic_poisoned")
		}
		line, _ := strconv.ParseInt(m.Metadata.Get(codecs.MetaFirstLine), 10, 64)
		e := &codecs.RowError{Position: codecs.Position{Source: src, Line: line}, Field: m.Metadata.Get(codecs.MetaField),
			Reason: fmt.Sprintf("poisoned in %s: %s", m.Metadata.Get("handler_poisoned"), m.Metadata.Get("reason_poisoned"))}
		// Only a record as its producer wrote it is shown: row, sample and
		// tick batches are binary, their lines are in first_line.
		switch k := m.Metadata.Get(codecs.MetaKind); {
		case k == codecs.KindReject: // a row the decoder refused: its own reason, the row as payload
			e.Reason, e.Raw = m.Metadata.Get("reason_poisoned"), string(m.Payload)
		case (k == "" || k == codecs.KindJSON) && utf8.Valid(m.Payload):
			e.Raw = string(m.Payload)
		}
		p.Rejects.write(e)
	}
	return nil
}

// Close implements message.Publisher; the RejectsWriter is closed by its owner.
func (PoisonPublisher) Close() error { return nil }
