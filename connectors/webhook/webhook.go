// Package webhook posts moves to a URL, one request each, retried with
// backoff until the receiver answers 2xx: the moves sink of a connector
// whose moves also go to a webhook (http, prometheus). A receiver that is
// down holds the stream (the pipeline waits: backpressure); a post gives
// up only when the publisher is closed.
//
// Each request carries the move's id as Idempotency-Key (and
// X-Hots-Move-Id): an attempt whose answer was lost is sent again, so a
// receiver deduplicates by it. X-Hots-Attempt counts the attempts.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cenkalti/backoff/v5"

	"hots/connectors"
)

// Args are the webhook's parameters. A connector embeds them in its own
// Args (`koanf:",squash"`), adds Keys to its registration, sets Default
// and checks Validate.
type Args struct {
	Webhook           string        `koanf:"webhook"`
	WebhookTimeout    time.Duration `koanf:"webhook_timeout"`
	WebhookMaxBackoff time.Duration `koanf:"webhook_max_backoff"`
}

// Keys document Args (connectors.Registration.Keys).
var Keys = []connectors.Key{
	{Key: "webhook", Doc: "URL each move is POSTed to (JSON, `Idempotency-Key` = the move id), retried with backoff until it answers 2xx (the stream waits meanwhile); empty = none"},
	{Key: "webhook_timeout", Doc: "timeout of one webhook request"},
	{Key: "webhook_max_backoff", Doc: "longest wait between two webhook attempts"},
}

// Default sets the defaults (no webhook).
func (a *Args) Default() {
	*a = Args{WebhookTimeout: 10 * time.Second, WebhookMaxBackoff: 10 * time.Second}
}

// Validate names the key of every bad value (connectors.KeyError).
func (a *Args) Validate() error {
	var errs []error
	bad := func(key string, v any, allowed string) {
		errs = append(errs, &connectors.KeyError{Key: "connector.parameters." + key, Value: v, Allowed: allowed})
	}
	if a.Webhook != "" {
		if u, err := url.Parse(a.Webhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("webhook", a.Webhook, "an http:// or https:// URL, or empty for none")
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"webhook_timeout", a.WebhookTimeout}, {"webhook_max_backoff", a.WebhookMaxBackoff}} {
		if d.v <= 0 {
			bad(d.key, d.v, "a positive duration such as 10s")
		}
	}
	return errors.Join(errs...)
}

// ErrClosed is a post cut short by Close.
var ErrClosed = errors.New("webhook closed")

// Publisher is a message.Publisher that posts each message's payload (a
// move's JSON) to the webhook, its UUID as the idempotency key, before
// Publish returns.
type Publisher struct {
	url        string
	client     *http.Client
	maxBackoff time.Duration
	log        *slog.Logger
	closing    context.Context
	stop       context.CancelFunc
}

// New returns the publisher of a.Webhook, or nil if there is none.
func New(a Args, log *slog.Logger) *Publisher {
	if a.Webhook == "" {
		return nil
	}
	if log == nil {
		log = slog.Default()
	}
	p := &Publisher{url: a.Webhook, client: &http.Client{Timeout: a.WebhookTimeout}, maxBackoff: a.WebhookMaxBackoff, log: log}
	p.closing, p.stop = context.WithCancel(context.Background())
	return p
}

// Publish implements message.Publisher: the messages in order, each
// retried until delivered; an error only after Close (or for a request
// that cannot be built).
func (p *Publisher) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		if err := p.post(m.UUID, m.Payload); err != nil {
			return fmt.Errorf("webhook: move %s not delivered: %w", m.UUID, err)
		}
	}
	return nil
}

// Close implements message.Publisher: posts in progress give up, and so
// does every later one. Idempotent.
func (p *Publisher) Close() error {
	p.stop()
	return nil
}

func (p *Publisher) post(id string, body []byte) error {
	ctx := p.closing
	if ctx.Err() != nil {
		return ErrClosed
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = min(100*time.Millisecond, p.maxBackoff), p.maxBackoff
	attempt := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempt++
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
		if err != nil {
			return struct{}{}, backoff.Permanent(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", id)
		req.Header.Set("X-Hots-Move-Id", id)
		req.Header.Set("X-Hots-Attempt", strconv.Itoa(attempt))
		resp, err := p.client.Do(req)
		if err != nil {
			return struct{}{}, err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return struct{}{}, fmt.Errorf("answered %s", resp.Status)
		}
		return struct{}{}, nil
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, next time.Duration) {
		p.log.Warn("webhook: move not delivered, retrying (the stream waits)", "move", id, "attempt", attempt, "err", err, "retry_in", next.Round(time.Millisecond))
	}))
	if err != nil && ctx.Err() != nil {
		return errors.Join(ErrClosed, err)
	}
	return err
}

// Fanout is a moves sink that publishes to First (a moves file), then to
// Hook: Publish succeeds once both took every message. A message First
// took and Hook did not (Publish failed, the router retries it) is not
// given to First again.
type Fanout struct {
	First message.Publisher
	Hook  *Publisher

	mu      sync.Mutex
	pending map[string]bool // uuids First has and Hook has not
}

// Also is first alone without a hook, else their Fanout.
func Also(first message.Publisher, hook *Publisher) message.Publisher {
	if hook == nil {
		return first
	}
	return &Fanout{First: first, Hook: hook}
}

// Publish implements message.Publisher.
func (f *Fanout) Publish(topic string, msgs ...*message.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var fresh []*message.Message
	for _, m := range msgs {
		if !f.pending[m.UUID] {
			fresh = append(fresh, m)
		}
	}
	if len(fresh) > 0 {
		if err := f.First.Publish(topic, fresh...); err != nil {
			return err
		}
	}
	if f.pending == nil {
		f.pending = map[string]bool{}
	}
	for _, m := range fresh {
		f.pending[m.UUID] = true
	}
	for _, m := range msgs {
		if err := f.Hook.Publish(topic, m); err != nil {
			return err
		}
		delete(f.pending, m.UUID)
	}
	return nil
}

// Close implements message.Publisher: the hook first (a post in progress
// gives up), then First.
func (f *Fanout) Close() error {
	return errors.Join(f.Hook.Close(), f.First.Close())
}
