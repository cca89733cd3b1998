package prometheus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// client is the official API client with hots' retry policy: every query
// is retried with exponential backoff for retryFor, and an error that
// remains names the query.
type client struct {
	api      v1.API
	url      string
	timeout  time.Duration
	retryFor time.Duration
	log      *slog.Logger
	// beforeQuery, if set, runs before every attempt (tests stop and
	// restart the server from it).
	beforeQuery func(query string)
}

// authTransport adds the configured credentials to every request.
type authTransport struct {
	next       http.RoundTripper
	bearer     string
	user, pass string
}

func (t *authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.bearer == "" && t.user == "" {
		return t.next.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	if t.bearer != "" {
		r.Header.Set("Authorization", "Bearer "+t.bearer)
	} else {
		r.SetBasicAuth(t.user, t.pass)
	}
	return t.next.RoundTrip(r)
}

func readSecret(k, path, inline string) (string, error) {
	if path == "" {
		return inline, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key(k), err)
	}
	return strings.TrimSpace(string(b)), nil
}

func newClient(a Args, baseDir string, log *slog.Logger) (*client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if a.CAFile != "" || a.InsecureSkipVerify {
		tc := &tls.Config{InsecureSkipVerify: a.InsecureSkipVerify} //nolint:gosec // opt-in, documented as testing only
		if a.CAFile != "" {
			pem, err := os.ReadFile(resolve(baseDir, a.CAFile))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key("ca_file"), err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%s: %s holds no PEM certificate", key("ca_file"), a.CAFile)
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	bearer, err := readSecret("bearer_token_file", resolve(baseDir, a.BearerTokenFile), a.BearerToken)
	if err != nil {
		return nil, err
	}
	pass, err := readSecret("password_file", resolve(baseDir, a.PasswordFile), a.Password)
	if err != nil {
		return nil, err
	}
	c, err := api.NewClient(api.Config{Address: a.URL, RoundTripper: &authTransport{next: tr, bearer: bearer, user: a.Username, pass: pass}})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key("url"), err)
	}
	return &client{api: v1.NewAPI(c), url: a.URL, timeout: a.QueryTimeout, retryFor: a.RetryFor, log: log}, nil
}

// QueryError is a query that still failed after the retries.
type QueryError struct {
	What  string // "usage query (cpu)", "capacity query (mem)", …
	Query string
	Err   error
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("prometheus %s %q: %v", e.What, e.Query, e.Err)
}

func (e *QueryError) Unwrap() error { return e.Err }

// permanent tells an error retrying cannot fix (a bad query) from one it
// may (connection refused, timeout, a server error).
func permanent(err error) bool {
	var pe *v1.Error
	if errors.As(err, &pe) {
		switch pe.Type {
		case v1.ErrBadData, v1.ErrBadResponse:
			return true
		case v1.ErrExec:
			// "too many samples" can be fixed by a smaller chunk: the caller
			// decides; other execution errors are the query's.
			return !tooManySamples(err)
		}
	}
	return false
}

func tooManySamples(err error) bool {
	return err != nil && strings.Contains(err.Error(), "too many samples")
}

// do runs one query with the retry policy.
func (c *client) do(ctx context.Context, what, query string, f func(ctx context.Context) (model.Value, v1.Warnings, error)) (model.Value, error) {
	op := func() (model.Value, error) {
		if c.beforeQuery != nil {
			c.beforeQuery(query)
		}
		qctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		v, warn, err := f(qctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, backoff.Permanent(ctx.Err())
			}
			if permanent(err) || tooManySamples(err) {
				return nil, backoff.Permanent(err)
			}
			return nil, err
		}
		if len(warn) > 0 {
			c.log.Warn("prometheus query warnings", "what", what, "query", query, "warnings", []string(warn))
		}
		return v, nil
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 200*time.Millisecond, 10*time.Second
	opts := []backoff.RetryOption{backoff.WithBackOff(b), backoff.WithMaxElapsedTime(c.retryFor),
		backoff.WithNotify(func(err error, next time.Duration) {
			c.log.Warn("prometheus query failed, retrying", "what", what, "query", query, "err", err, "retry_in", next.Round(time.Millisecond))
		})}
	if c.retryFor == 0 {
		opts = append(opts, backoff.WithMaxTries(1))
	}
	v, err := backoff.Retry(ctx, op, opts...)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &QueryError{What: what, Query: query, Err: err}
	}
	return v, nil
}

// rangeQuery returns the matrix of query over r.
func (c *client) rangeQuery(ctx context.Context, what, query string, r v1.Range) (model.Matrix, error) {
	v, err := c.do(ctx, what, query, func(ctx context.Context) (model.Value, v1.Warnings, error) {
		v, w, _, err := c.api.QueryRange(ctx, query, r, v1.WithTimeout(c.timeout))
		return v, w, err
	})
	if err != nil {
		return nil, err
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, &QueryError{What: what, Query: query, Err: fmt.Errorf("the result is a %s, want a range vector (matrix)", v.Type())}
	}
	return m, nil
}
