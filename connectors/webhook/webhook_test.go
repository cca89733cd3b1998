package webhook_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"hots/connectors/webhook"
)

// post is one request the receiver got.
type post struct {
	key, moveID, attempt, contentType, body string
}

// receiver answers post number n (from 1) with answer(n, w): true = it
// answered (else 204 is written).
type receiver struct {
	mu     sync.Mutex
	posts  []post
	answer func(n int, w http.ResponseWriter) bool
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.posts = append(rc.posts, post{r.Header.Get("Idempotency-Key"), r.Header.Get("X-Hots-Move-Id"), r.Header.Get("X-Hots-Attempt"), r.Header.Get("Content-Type"), string(body)})
	n := len(rc.posts)
	rc.mu.Unlock()
	if rc.answer != nil && rc.answer(n, w) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) got() []post {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]post(nil), rc.posts...)
}

func status(code int) func(http.ResponseWriter) bool {
	return func(w http.ResponseWriter) bool { http.Error(w, http.StatusText(code), code); return true }
}

// drop closes the connection without an answer (the post may have been
// stored: the sender cannot know).
func drop(w http.ResponseWriter) bool {
	if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
		conn.Close()
	}
	return true
}

func fast(url string) webhook.Args {
	return webhook.Args{Webhook: url, WebhookTimeout: 2 * time.Second, WebhookMaxBackoff: 10 * time.Millisecond}
}

func moves(ids ...string) []*message.Message {
	var out []*message.Message
	for _, id := range ids {
		out = append(out, message.NewMessage(id, []byte(`{"id":"`+id+`"}`)))
	}
	return out
}

// attempts is the posts' (key, attempt) pairs, as "key#attempt".
func attempts(ps []post) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.key+"#"+p.attempt)
	}
	return out
}

func TestPublisher(t *testing.T) {
	for _, tt := range []struct {
		name   string
		answer func(n int, w http.ResponseWriter) bool
		msgs   []string
		// closeAfter > 0: Close once that many posts were made; the
		// Publish must then fail with ErrClosed.
		closeAfter int
		want       []string // key#attempt of every post, in order
	}{
		{name: "2xx at once, in order", msgs: []string{"m1", "m2", "m3"}, want: []string{"m1#1", "m2#1", "m3#1"}},
		{name: "retried on 5xx until 2xx", msgs: []string{"m1", "m2"},
			answer: func(n int, w http.ResponseWriter) bool { return n <= 3 && status(http.StatusServiceUnavailable)(w) },
			want:   []string{"m1#1", "m1#2", "m1#3", "m1#4", "m2#1"}},
		{name: "a 4xx is retried too (the receiver decides when it is fixed)", msgs: []string{"m1"},
			answer: func(n int, w http.ResponseWriter) bool { return n == 1 && status(http.StatusBadRequest)(w) },
			want:   []string{"m1#1", "m1#2"}},
		{name: "connection dropped: sent again with the same key", msgs: []string{"m1", "m2"},
			answer: func(n int, w http.ResponseWriter) bool { return (n == 1 || n == 2) && drop(w) },
			want:   []string{"m1#1", "m1#2", "m1#3", "m2#1"}},
		{name: "down until Close: Publish gives up", msgs: []string{"m1", "m2"}, closeAfter: 3,
			answer: func(_ int, w http.ResponseWriter) bool { return status(http.StatusBadGateway)(w) },
		},
		{name: "down until Close after some moves", msgs: []string{"m1", "m2"}, closeAfter: 2,
			answer: func(n int, w http.ResponseWriter) bool { return n > 1 && status(http.StatusInternalServerError)(w) },
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc := &receiver{answer: tt.answer}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			p := webhook.New(fast(srv.URL+"/hook"), nil)
			msgs := moves(tt.msgs...)
			done := make(chan error, 1)
			go func() { done <- p.Publish("moves", msgs...) }()
			if tt.closeAfter > 0 {
				deadline := time.Now().Add(10 * time.Second)
				for len(rc.got()) < tt.closeAfter && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				select {
				case err := <-done:
					t.Fatalf("Publish returned before Close (%v) while the receiver was failing", err)
				default:
				}
				p.Close()
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Publish did not return")
			}
			ps := rc.got()
			if tt.closeAfter > 0 {
				if !errors.Is(err, webhook.ErrClosed) {
					t.Fatalf("Publish after Close: %v, want ErrClosed", err)
				}
				if !strings.Contains(err.Error(), "not delivered") {
					t.Errorf("error does not say the move was not delivered: %v", err)
				}
				n := len(ps)
				time.Sleep(50 * time.Millisecond)
				if len(rc.got()) != n {
					t.Errorf("posts went on after Close")
				}
				if err := p.Publish("moves", moves("m9")...); !errors.Is(err, webhook.ErrClosed) {
					t.Errorf("Publish on a closed publisher: %v, want ErrClosed", err)
				}
				if len(rc.got()) != n {
					t.Errorf("a closed publisher posted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := attempts(ps); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("posts %v, want %v", got, tt.want)
			}
			bodies := map[string]string{}
			for _, m := range msgs {
				bodies[m.UUID] = string(m.Payload)
			}
			for _, q := range ps {
				if q.moveID != q.key || q.contentType != "application/json" || q.body != bodies[q.key] {
					t.Errorf("post %+v: want X-Hots-Move-Id = Idempotency-Key, application/json and the move's payload %s", q, bodies[q.key])
				}
			}
		})
	}
}

func TestNoWebhook(t *testing.T) {
	if p := webhook.New(webhook.Args{}, nil); p != nil {
		t.Errorf("New without a URL: %v, want nil", p)
	}
	first := &recorder{}
	if got := webhook.Also(first, nil); got != first {
		t.Errorf("Also(first, nil) = %v, want first itself", got)
	}
}

// recorder is a First that records what it took, failing while fail.
type recorder struct {
	mu   sync.Mutex
	ids  []string
	fail bool
}

func (r *recorder) Publish(_ string, msgs ...*message.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("disk full")
	}
	for _, m := range msgs {
		r.ids = append(r.ids, m.UUID)
	}
	return nil
}

func (r *recorder) Close() error { return nil }

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

// TestFanout: the file first, then the webhook; both must succeed; a
// move the file took is not written again when the publish is retried;
// a move the file refused is not posted.
func TestFanout(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	first := &recorder{}
	hook := webhook.New(fast(srv.URL), nil)
	f := webhook.Also(first, hook)
	if err := f.Publish("moves", moves("a", "b")...); err != nil {
		t.Fatal(err)
	}
	first.fail = true
	if err := f.Publish("moves", moves("c")...); err == nil {
		t.Fatal("the file refused the move, Publish succeeded")
	}
	first.fail = false
	if got := attempts(rc.got()); !reflect.DeepEqual(got, []string{"a#1", "b#1"}) {
		t.Errorf("posted %v, want a and b (c was refused by the file)", got)
	}
	hook.Close()
	if err := f.Publish("moves", moves("c")...); !errors.Is(err, webhook.ErrClosed) {
		t.Fatalf("webhook closed: %v, want ErrClosed", err)
	}
	if err := f.Publish("moves", moves("c", "d")...); !errors.Is(err, webhook.ErrClosed) {
		t.Fatalf("webhook closed: %v, want ErrClosed", err)
	}
	if got, want := first.got(), []string{"a", "b", "c", "d"}; !reflect.DeepEqual(got, want) {
		t.Errorf("the file took %v, want %v (c once, though its publish was retried)", got, want)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestArgs(t *testing.T) {
	var a webhook.Args
	a.Default()
	if a.Webhook != "" || a.WebhookTimeout != 10*time.Second || a.WebhookMaxBackoff != 10*time.Second {
		t.Errorf("defaults %+v", a)
	}
	if err := a.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	a = webhook.Args{Webhook: "ftp://x", WebhookTimeout: 0, WebhookMaxBackoff: -time.Second}
	err := a.Validate()
	for _, k := range []string{"webhook", "webhook_timeout", "webhook_max_backoff"} {
		if err == nil || !strings.Contains(err.Error(), "connector.parameters."+k+" = ") {
			t.Errorf("error does not name %s: %v", k, err)
		}
	}
	for _, u := range []string{"http://h/x", "https://h:8443"} {
		a = webhook.Args{Webhook: u, WebhookTimeout: time.Second, WebhookMaxBackoff: time.Second}
		if err := a.Validate(); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}
