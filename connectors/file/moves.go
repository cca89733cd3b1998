package file

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
)

// MovesPublisher appends move messages (codecs.EncodeMove payloads) to a
// JSON-lines file.
type MovesPublisher struct {
	mu     sync.Mutex
	path   string
	f      *os.File
	w      *bufio.Writer
	n      int64
	closed bool
}

// NewMovesPublisher opens path for appending; reset truncates it first
// (upstream reset_on_start, once per process).
func NewMovesPublisher(path string, reset bool) (*MovesPublisher, error) {
	if path == "" {
		return nil, fmt.Errorf("moves file: empty path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("moves file: %w", err)
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if reset {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("moves file: %w", err)
	}
	return &MovesPublisher{path: path, f: f, w: bufio.NewWriter(f)}, nil
}

// Publish writes each move as one line. Moves are validated (read back)
// before anything is written, so a bad message never leaves half a batch.
func (p *MovesPublisher) Publish(_ string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("moves file %s: publish after close", p.path)
	}
	for _, m := range msgs {
		if _, err := codecs.DecodeMove(m.Payload); err != nil {
			return fmt.Errorf("moves file %s: message %s: %w", p.path, m.UUID, err)
		}
	}
	for _, m := range msgs {
		p.w.Write(bytes.TrimRight(m.Payload, "\n"))
		p.w.WriteByte('\n')
		p.n++
	}
	// Flushed per call: a crash loses at most what the OS has not synced.
	if err := p.w.Flush(); err != nil {
		return fmt.Errorf("moves file %s: %w", p.path, err)
	}
	return nil
}

// Count is the number of moves written.
func (p *MovesPublisher) Count() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// Close flushes and fsyncs the file. The router closes handler publishers
// and so may the caller: a second Close is a no-op.
func (p *MovesPublisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	err := p.w.Flush()
	if e := p.f.Sync(); err == nil {
		err = e
	}
	if e := p.f.Close(); err == nil {
		err = e
	}
	return err
}
