// Package httpconn is the http connector (connector.type: http): usage is
// posted to an HTTP endpoint as JSON or NDJSON, moves are read back as an
// NDJSON stream and, if a webhook is set, posted to it one by one.
//
// Endpoints (paths are parameters; these are the defaults):
//
//	POST /usage            application/json: one record or an upstream {"containers":[...]} batch;
//	                       application/x-ndjson: one record per line. Answers once every record
//	                       went through the pipeline (backpressure), with the records poisoned.
//	POST /usage?watermark=T  every record of ticks ≤ T was sent: those ticks close at once
//	                       (watermarks: true only); may carry records too, sent first.
//	GET  /moves            the moves as NDJSON (?from=N: from the Nth move; ?follow=1: stream)
//	GET  /poison           the poisoned records as NDJSON, with reason and position
//	POST /nodes            one node capacity record: a host joined or was resized
//
// Nothing in the rest of hots knows this package: it registers itself in
// init and the binary imports it for effect (cmd/hots/connectors.go).
package httpconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"hots/connectors"
	"hots/connectors/webhook"
)

// Name is the connector.type of the http connector.
const Name = "http"

func init() {
	connectors.Register(connectors.Registration{
		Name:    Name,
		Summary: "service: usage POSTed as JSON/NDJSON, moves as an NDJSON stream and to a webhook",
		NewArgs: func() connectors.Args { return &Args{} },
		Keys: slices.Concat([]connectors.Key{
			{Key: "listen", Doc: "address the endpoints listen on (host:port; port 0 picks a free one)"},
			{Key: "usage_path", Doc: "POST usage here: application/json (a record or a batch) or application/x-ndjson (a record per line); ?watermark=T closes ticks ≤ T"},
			{Key: "moves_path", Doc: "GET the moves as NDJSON; ?from=N starts at the Nth move, ?follow=1 streams new ones"},
			{Key: "poison_path", Doc: "GET the poisoned records as NDJSON (reason, source, offset, record)"},
			{Key: "nodes_path", Doc: "POST a node capacity record {\"host\":…,\"capacity\":{metric: value}}"},
		}, webhook.Keys, []connectors.Key{
			{Key: "watermarks", Doc: "true: ticks close only at the watermarks clients post (deterministic; lateness and idle_timeout unused); false: by lateness and idle_timeout, and a watermark is refused"},
			{Key: "lateness", Doc: "a tick closes this long after the first sample of a later tick"},
			{Key: "idle_timeout", Doc: "the open tick closes after this long without samples (0 = never)"},
			{Key: "max_body_bytes", Doc: "largest request body accepted (413 beyond)"},
			{Key: "keep_moves", Doc: "moves kept in memory for GET moves_path (the newest; older ones are forgotten)"},
			{Key: "keep_poison", Doc: "poisoned records kept in memory for GET poison_path (the newest)"},
			{Key: "data_folder", Doc: "optional folder whose node_meta_file gives capacities at start"},
			{Key: "node_meta_file", Doc: "host capacities CSV inside data_folder"},
		}),
		New: func(env connectors.Env, a connectors.Args) (connectors.Connector, error) { return New(env, *a.(*Args)) },
	})
}

// Args are the http connector's parameters (connector.parameters).
type Args struct {
	Listen       string            `koanf:"listen"`
	UsagePath    string            `koanf:"usage_path"`
	MovesPath    string            `koanf:"moves_path"`
	PoisonPath   string            `koanf:"poison_path"`
	NodesPath    string            `koanf:"nodes_path"`
	webhook.Args `koanf:",squash"` // webhook, webhook_timeout, webhook_max_backoff
	Watermarks   bool              `koanf:"watermarks"`
	Lateness     time.Duration     `koanf:"lateness"`
	IdleTimeout  time.Duration     `koanf:"idle_timeout"`
	MaxBodyBytes int64             `koanf:"max_body_bytes"`
	KeepMoves    int               `koanf:"keep_moves"`
	KeepPoison   int               `koanf:"keep_poison"`
	DataFolder   string            `koanf:"data_folder"`
	NodeMetaFile string            `koanf:"node_meta_file"`
}

// Default implements connectors.Args.
func (a *Args) Default() {
	*a = Args{Listen: "127.0.0.1:8090", UsagePath: "/usage", MovesPath: "/moves", PoisonPath: "/poison", NodesPath: "/nodes",
		Lateness: 2 * time.Second, IdleTimeout: 30 * time.Second,
		MaxBodyBytes: 8 << 20, KeepMoves: 100_000, KeepPoison: 10_000, NodeMetaFile: "node_meta.csv"}
	a.Args.Default()
}

const maxBody = 1 << 30

// Validate implements connectors.Args.
func (a *Args) Validate() error {
	var errs []error
	bad := func(key string, v any, allowed string) {
		errs = append(errs, &connectors.KeyError{Key: "connector.parameters." + key, Value: v, Allowed: allowed})
	}
	if _, _, err := net.SplitHostPort(a.Listen); err != nil {
		bad("listen", a.Listen, "an address host:port such as 127.0.0.1:8090 or :8090")
	}
	seen := map[string]string{}
	for _, p := range []struct{ key, v string }{{"usage_path", a.UsagePath}, {"moves_path", a.MovesPath}, {"poison_path", a.PoisonPath}, {"nodes_path", a.NodesPath}} {
		switch {
		case !strings.HasPrefix(p.v, "/") || strings.ContainsAny(p.v, "?# "):
			bad(p.key, p.v, "a URL path starting with / (no query)")
		case seen[p.v] != "":
			bad(p.key, p.v, "already the path of "+seen[p.v])
		default:
			seen[p.v] = p.key
		}
	}
	errs = append(errs, a.Args.Validate())
	if a.Lateness < 0 {
		bad("lateness", a.Lateness, "a non-negative duration such as 2s or 500ms")
	}
	if a.IdleTimeout < 0 {
		bad("idle_timeout", a.IdleTimeout, "a non-negative duration such as 30s (0 = never)")
	}
	if a.MaxBodyBytes < 1 || a.MaxBodyBytes > maxBody {
		bad("max_body_bytes", a.MaxBodyBytes, fmt.Sprintf("between 1 and %d", maxBody))
	}
	if a.KeepMoves < 1 {
		bad("keep_moves", a.KeepMoves, "must be >= 1")
	}
	if a.KeepPoison < 1 {
		bad("keep_poison", a.KeepPoison, "must be >= 1")
	}
	if a.DataFolder != "" && a.NodeMetaFile == "" {
		bad("node_meta_file", a.NodeMetaFile, "must name a file when data_folder is set")
	}
	return errors.Join(errs...)
}

// Connector is the http connector: one server for every endpoint, a
// subscriber the usage endpoint feeds, and in-memory logs of the moves
// and of the poisoned records.
type Connector struct {
	env      connectors.Env
	args     Args
	log      *slog.Logger
	metaPath string

	sub    *subscriber
	moves  *moveSink
	poison *poisonSink
	hook   *webhook.Publisher // nil without a webhook

	// closing ends waits (follow streams) at Close.
	closing context.Context
	stop    context.CancelFunc

	mu  sync.Mutex
	ln  net.Listener
	srv *http.Server
	rt  connectors.Runtime

	closeOnce sync.Once
	closeErr  error
}

// New prepares the connector; it listens in Initial.
func New(env connectors.Env, a Args) (*Connector, error) {
	log := env.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Connector{env: env, args: a, log: log.With("connector", Name)}
	c.closing, c.stop = context.WithCancel(context.Background())
	if a.DataFolder != "" {
		dir := a.DataFolder
		if !filepath.IsAbs(dir) && env.BaseDir != "" {
			dir = filepath.Join(env.BaseDir, dir)
		}
		c.metaPath = filepath.Join(dir, a.NodeMetaFile)
	}
	c.sub = newSubscriber("http:" + a.UsagePath)
	c.hook = webhook.New(a.Args, c.log)
	c.moves = &moveSink{log: newRing(a.KeepMoves), hook: c.hook}
	c.poison = &poisonSink{log: newRing(a.KeepPoison), watch: c.sub}
	return c, nil
}

// Initial implements connectors.Connector: node_meta's hosts (if a data
// folder is given); it also starts the server, so that a port in use is
// an error of the run.
func (c *Connector) Initial(ctx context.Context) (connectors.Initial, error) {
	var init connectors.Initial
	if c.metaPath != "" {
		var err error
		if init, err = connectors.InitialFromNodeMeta(c.metaPath, c.env.Fields); err != nil {
			return init, err
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", c.args.Listen)
	if err != nil {
		return init, fmt.Errorf("connector.parameters.listen: %w", err)
	}
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(c.log.Handler(), slog.LevelWarn)}
	c.mu.Lock()
	if c.closing.Err() != nil {
		c.mu.Unlock()
		ln.Close()
		return init, errors.New("http connector: closed")
	}
	c.ln, c.srv = ln, srv
	c.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("server stopped", "err", err)
		}
	}()
	c.log.Info("listening", "addr", ln.Addr().String(), "usage", c.args.UsagePath, "moves", c.args.MovesPath,
		"poison", c.args.PoisonPath, "nodes", c.args.NodesPath, "webhook", c.args.Webhook, "watermarks", c.args.Watermarks)
	return init, nil
}

// Addr is the address the server listens on ("" before Initial): with
// listen port 0, the port picked.
func (c *Connector) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ln == nil {
		return ""
	}
	return c.ln.Addr().String()
}

// Handler serves the connector's endpoints (what the server runs).
func (c *Connector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(c.args.UsagePath, c.serveUsage)
	mux.HandleFunc(c.args.MovesPath, func(w http.ResponseWriter, r *http.Request) { c.moves.log.serve(w, r, c.closing) })
	mux.HandleFunc(c.args.PoisonPath, func(w http.ResponseWriter, r *http.Request) { c.poison.log.serve(w, r, c.closing) })
	mux.HandleFunc(c.args.NodesPath, c.serveNodes)
	return mux
}

// Source implements connectors.Connector.
func (c *Connector) Source() connectors.Source {
	return connectors.Source{Subscriber: c.sub, Topics: []string{"http" + c.args.UsagePath}}
}

// Sink implements connectors.Connector.
func (c *Connector) Sink() connectors.Sink {
	return connectors.Sink{Publisher: c.moves, Topic: "http" + c.args.MovesPath}
}

// Poison implements connectors.Connector.
func (c *Connector) Poison() connectors.Sink {
	return connectors.Sink{Publisher: c.poison, Topic: "http" + c.args.PoisonPath}
}

// Ticks implements connectors.Connector: the client's watermarks, or
// lateness and idleness (see Args.Watermarks).
func (c *Connector) Ticks() connectors.TickRule {
	if c.args.Watermarks {
		return connectors.TickRule{Watermarks: true}
	}
	return connectors.TickRule{Lateness: c.args.Lateness, IdleTimeout: c.args.IdleTimeout}
}

// Start implements connectors.Starter: the nodes endpoint applies
// capacities through rt from now on.
func (c *Connector) Start(_ context.Context, rt connectors.Runtime) error {
	c.mu.Lock()
	c.rt = rt
	c.mu.Unlock()
	return nil
}

func (c *Connector) runtime() connectors.Runtime {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rt
}

// Close implements connectors.Connector: no more usage is taken, webhook
// retries give up, follow streams end after the moves they have not sent
// yet, and the server shuts down gracefully. Idempotent.
func (c *Connector) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.stop()
		srv := c.srv
		c.mu.Unlock()
		if c.hook != nil {
			c.hook.Close()
		}
		errs := []error{c.sub.Close()}
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("http connector: shutdown: %w", err), srv.Close())
			}
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}
