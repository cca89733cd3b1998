package connectortest

import (
	"io"
	"net/http"
	"reflect"
	"sync"
	"testing"

	"hots/codecs"
	"hots/placement"
)

// WebhookReceiver is a webhook for the tests of connectors that post
// moves (package webhook): it refuses its first FailFirst posts with 503,
// drops the connection after storing post number DropAt (the answer is
// lost: the move is sent again) and deduplicates by Idempotency-Key, which
// is what a receiver of an at-least-once webhook must do. A post without
// the key, not JSON or not a move is refused with 400 and noted.
type WebhookReceiver struct {
	FailFirst int
	DropAt    int

	mu    sync.Mutex
	posts int
	ids   []string // every post stored, in arrival order, duplicates included
	moves []placement.Move
	seen  map[string]bool
	bad   []string
}

// ServeHTTP implements http.Handler.
func (rc *WebhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.posts++
	if rc.posts <= rc.FailFirst {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	id := r.Header.Get("Idempotency-Key")
	m, err := codecs.DecodeMove(body)
	if err != nil || id == "" || r.Header.Get("Content-Type") != "application/json" {
		rc.bad = append(rc.bad, id+": "+string(body))
		http.Error(w, "no Idempotency-Key, not JSON or not a move", http.StatusBadRequest)
		return
	}
	rc.ids = append(rc.ids, id)
	if rc.seen == nil {
		rc.seen = map[string]bool{}
	}
	if !rc.seen[id] {
		rc.seen[id] = true
		rc.moves = append(rc.moves, m)
	}
	if rc.posts == rc.DropAt {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Moves are the moves received, deduplicated by id, in arrival order.
func (rc *WebhookReceiver) Moves() []placement.Move {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]placement.Move(nil), rc.moves...)
}

// Check asserts the receiver got exactly want, in order, each move's id
// as its key; every post once except the one whose answer was lost (sent
// again at once, if DropAt is set); and FailFirst refusals before.
func (rc *WebhookReceiver) Check(t testing.TB, want []placement.Move) {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		t.Errorf("bad posts: %v", rc.bad)
	}
	if !reflect.DeepEqual(rc.moves, want) {
		t.Errorf("the webhook got %d moves, want %d, in order:\n got %s\nwant %s", len(rc.moves), len(want), String(rc.moves), String(want))
	}
	for i, m := range want {
		if !rc.seen[m.ID] {
			t.Errorf("move %d: its id %q was never the Idempotency-Key of a post", i, m.ID)
			break
		}
	}
	dups := 0
	for i, id := range rc.ids {
		if i > 0 && rc.ids[i-1] == id {
			dups++
		}
	}
	wantDups := 0
	if rc.DropAt > rc.FailFirst && rc.DropAt <= rc.posts {
		wantDups = 1
	}
	if dups != wantDups || len(rc.ids) != len(rc.moves)+wantDups {
		t.Errorf("%d posts stored for %d moves with %d duplicates; want %d (the lost answer): %v", len(rc.ids), len(rc.moves), dups, wantDups, rc.ids)
	}
	if n := len(rc.ids) + min(rc.FailFirst, rc.posts); rc.posts != n {
		t.Errorf("%d posts, want %d (%d refused + %d stored)", rc.posts, n, rc.FailFirst, len(rc.ids))
	}
}
