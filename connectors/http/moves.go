package httpconn

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"hots/codecs"
	"hots/connectors/webhook"
)

// ring is an in-memory log of NDJSON lines that keeps the newest keep.
// Lines are numbered from 0 for the life of the process; a line that was
// forgotten is skipped by readers (X-Hots-First header says where the
// log starts now).
type ring struct {
	mu      sync.Mutex
	keep    int
	first   int64 // number of lines[0]
	lines   [][]byte
	ids     map[string]int64 // id -> number, for the lines kept
	idOf    []string
	changed chan struct{} // closed and replaced at every append
}

func newRing(keep int) *ring {
	return &ring{keep: keep, ids: map[string]int64{}, changed: make(chan struct{})}
}

// add appends a line unless a line with the same id is kept already
// (a publish retried after an error is not a new move).
func (r *ring) add(id string, line []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id != "" {
		if _, dup := r.ids[id]; dup {
			return false
		}
		r.ids[id] = r.first + int64(len(r.lines))
	}
	r.lines = append(r.lines, line)
	r.idOf = append(r.idOf, id)
	if n := len(r.lines) - r.keep; n > 0 {
		for _, old := range r.idOf[:n] {
			delete(r.ids, old)
		}
		r.lines = append(r.lines[:0:0], r.lines[n:]...)
		r.idOf = append(r.idOf[:0:0], r.idOf[n:]...)
		r.first += int64(n)
	}
	close(r.changed)
	r.changed = make(chan struct{})
	return true
}

// since returns the lines from number from (or from the oldest kept),
// the number after them, and a channel closed at the next append.
func (r *ring) since(from int64) ([][]byte, int64, int64, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	from = max(from, r.first)
	end := r.first + int64(len(r.lines))
	if from >= end {
		return nil, r.first, end, r.changed
	}
	return r.lines[from-r.first:], r.first, end, r.changed
}

// serve answers GET with the lines as NDJSON: ?from=N, ?follow=1 to
// stream new lines as they come (each flushed) until the client leaves
// or the connector closes (after the lines it has not sent yet).
func (r *ring) serve(w http.ResponseWriter, req *http.Request, closing context.Context) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	q := req.URL.Query()
	var from int64
	if s := q.Get("from"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("from=%q: want a line number >= 0", s))
			return
		}
		from = n
	}
	follow, err := boolParam(q.Get("follow"))
	if err != nil {
		httpError(w, http.StatusBadRequest, "follow: "+err.Error())
		return
	}
	lines, first, end, changed := r.since(from)
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("X-Hots-First", strconv.FormatInt(first, 10))
	if !follow {
		h.Set("X-Hots-Next", strconv.FormatInt(end, 10))
	}
	w.WriteHeader(http.StatusOK)
	if req.Method == http.MethodHead {
		return
	}
	fl, _ := w.(http.Flusher)
	final := false
	for {
		for _, l := range lines {
			if _, err := w.Write(l); err != nil {
				return
			}
			if _, err := w.Write([]byte{'\n'}); err != nil {
				return
			}
		}
		if !follow || final {
			return
		}
		if fl != nil {
			fl.Flush()
		}
		select {
		case <-changed:
		case <-closing.Done():
			final = true
		case <-req.Context().Done():
			return
		}
		lines, _, end, changed = r.since(end)
	}
}

func boolParam(s string) (bool, error) {
	if s == "" {
		return false, nil
	}
	return strconv.ParseBool(s)
}

// moveSink is the Sink publisher: every move is kept for GET moves_path
// and, with a webhook, posted to it before Publish returns (see package
// webhook: a webhook that is down holds the stream; Publish gives up only
// when the connector closes).
type moveSink struct {
	log  *ring
	hook *webhook.Publisher
}

// Publish implements message.Publisher.
func (s *moveSink) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		s.log.add(m.UUID, bytes.Clone(m.Payload))
		if s.hook != nil {
			if err := s.hook.Publish(topic, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close implements message.Publisher. The router closes the publishers
// it was given; the log and the webhook outlive the run (the connector's
// Close ends them).
func (s *moveSink) Close() error { return nil }

// poisonSink is the Poison publisher: every poisoned message is kept for
// GET poison_path, and the usage request that sent it is told why.
type poisonSink struct {
	log   *ring
	watch *subscriber
}

// poisonEntry is one line of GET poison_path.
type poisonEntry struct {
	Reason    string `json:"reason"`
	Source    string `json:"source,omitempty"`
	Partition int64  `json:"partition"`
	Offset    int64  `json:"offset"`
	Line      int64  `json:"line,omitempty"` // a file source's line
	Field     string `json:"field,omitempty"`
	Handler   string `json:"handler,omitempty"`
	UUID      string `json:"uuid"`
	Record    string `json:"record"`
}

// Publish implements message.Publisher.
func (s *poisonSink) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		e := poisonEntry{Reason: m.Metadata.Get(middleware.ReasonForPoisonedKey), Source: m.Metadata.Get(codecs.MetaSource),
			Partition: intMeta(m, codecs.MetaPartition), Offset: intMeta(m, codecs.MetaOffset), Field: m.Metadata.Get(codecs.MetaField),
			Handler: m.Metadata.Get(middleware.PoisonedHandlerKey), UUID: m.UUID, Record: string(m.Payload)}
		if l := intMeta(m, codecs.MetaFirstLine); l > 0 {
			e.Line = l
		}
		if e.Reason == "" {
			e.Reason = "poisoned"
		}
		line, err := json.Marshal(e)
		if err != nil {
			return err
		}
		s.log.add("", line)
		s.watch.poisoned(m.UUID, e.Reason)
	}
	return nil
}

// Close implements message.Publisher (see moveSink.Close).
func (s *poisonSink) Close() error { return nil }

func intMeta(m *message.Message, key string) int64 {
	v, err := strconv.ParseInt(m.Metadata.Get(key), 10, 64)
	if err != nil {
		return -1
	}
	return v
}
