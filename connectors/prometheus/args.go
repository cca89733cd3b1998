package prometheus

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"hots/connectors"
	"hots/connectors/webhook"
)

// Names of the two registrations. A Registration is static, and RunDir
// (replay to the end, write a run directory) is a property of the
// registration, not of a parameter: so history mode and live mode are two
// connector types over the same Args and code. `prometheus` replays a
// past [start, end] exactly like a file replay (Finite, RunDir);
// `prometheus-live` follows now as a service (health, readiness, metrics
// endpoints, no run directory).
const (
	Name     = "prometheus"
	LiveName = "prometheus-live"
)

// Defaults fit cAdvisor (through the kubelet, labels pod/namespace/node)
// and kube-state-metrics.
const (
	DefaultURL       = "http://localhost:9090"
	DefaultStep      = time.Minute
	DefaultLag       = 30 * time.Second
	DefaultMaxPoints = 11000 // Prometheus refuses a range query of more points per series
	DefaultMaxGap    = 2
	DefaultTimeout   = 2 * time.Minute
	DefaultRetryFor  = 2 * time.Minute
)

// DefaultQueries are per metric: one series per container (pod) with its
// host (node) as a label.
var DefaultQueries = map[string]string{
	"cpu": `sum by (namespace, pod, node) (rate(container_cpu_usage_seconds_total{container!="", pod!=""}[5m]))`,
	"mem": `sum by (namespace, pod, node) (container_memory_working_set_bytes{container!="", pod!=""})`,
}

// DefaultCapacityQueries are per metric: one series per host.
var DefaultCapacityQueries = map[string]string{
	"cpu": `sum by (node) (kube_node_status_allocatable{resource="cpu"})`,
	"mem": `sum by (node) (kube_node_status_allocatable{resource="memory"})`,
}

var keys = slices.Concat([]connectors.Key{
	{Key: "url", Doc: "Prometheus server (the API is <url>/api/v1)"},
	{Key: "bearer_token", Doc: "sent as `Authorization: Bearer …`; empty = none"},
	{Key: "bearer_token_file", Doc: "file holding the bearer token (read at start; wins over bearer_token)"},
	{Key: "username", Doc: "basic auth user; empty = no basic auth"},
	{Key: "password", Doc: "basic auth password"},
	{Key: "password_file", Doc: "file holding the basic auth password (wins over password)"},
	{Key: "ca_file", Doc: "PEM CA bundle the server's certificate is checked against (https); empty = the system's"},
	{Key: "insecure_skip_verify", Doc: "do not check the server's certificate (testing only)"},
	{Key: "queries", Doc: "PromQL per metric (a map metric → query), each giving one series per container with its host as a label; every metric of connector.parameters.metrics needs one"},
	{Key: "capacity_queries", Doc: "PromQL per metric giving one series per host (host label) with its capacity; a host of the usage without an answer is an error naming it"},
	{Key: "container_label", Doc: "label naming the container (the unit hots moves)"},
	{Key: "host_label", Doc: "label naming the host; a usage series without it is set aside (poison) with the reason"},
	{Key: "domain_label", Doc: "label naming the domain; empty = every series in connector.parameters.domain (needs domain_field)"},
	{Key: "step", Doc: "one tick: the query resolution; tick = (timestamp − start) / step, so sep_time and the windows are counted in steps"},
	{Key: "start", Doc: "timestamp of tick 0 (RFC 3339 or Unix seconds); history mode: required, the analysis period (ticks ≤ sep_time) comes first; live: empty = now − (sep_time+1) steps, so the analysis period is the recent past"},
	{Key: "end", Doc: "history mode: last timestamp replayed (inclusive; required); live mode: must be empty"},
	{Key: "lag", Doc: "live mode: a tick at time T is read at T + lag (scrape interval and delays)"},
	{Key: "max_points_per_series", Doc: "range queries are split into chunks of at most this many steps (the server's limit is 11,000 points per series)"},
	{Key: "max_gap", Doc: "a series missing for at most this many steps and then back is filled with its last value (a missed scrape is not a container gone); a longer absence is the container gone. Ticks close max_gap steps after they are read"},
	{Key: "query_timeout", Doc: "timeout of one query (sent to the server too)"},
	{Key: "retry_for", Doc: "a failing query is retried with exponential backoff for this long; then history mode fails naming the query, live mode logs it and tries again at the next step"},
	{Key: "outfile", Doc: "moves log (JSON lines); empty = <run dir>/moves.jsonl (history), moves.jsonl (live)"},
	{Key: "reset_on_start", Doc: "truncate outfile at start"},
	{Key: "rejects_file", Doc: "bad input (CSV); empty = rejects.csv next to outfile"},
}, webhook.Keys) // moves go to outfile, then (if set) to the webhook

// Args are the Prometheus connector's parameters (connector.parameters).
type Args struct {
	URL                string            `koanf:"url"`
	BearerToken        string            `koanf:"bearer_token"`
	BearerTokenFile    string            `koanf:"bearer_token_file"`
	Username           string            `koanf:"username"`
	Password           string            `koanf:"password"`
	PasswordFile       string            `koanf:"password_file"`
	CAFile             string            `koanf:"ca_file"`
	InsecureSkipVerify bool              `koanf:"insecure_skip_verify"`
	Queries            map[string]string `koanf:"queries"`
	CapacityQueries    map[string]string `koanf:"capacity_queries"`
	ContainerLabel     string            `koanf:"container_label"`
	HostLabel          string            `koanf:"host_label"`
	DomainLabel        string            `koanf:"domain_label"`
	Step               time.Duration     `koanf:"step"`
	Start              string            `koanf:"start"`
	End                string            `koanf:"end"`
	Lag                time.Duration     `koanf:"lag"`
	MaxPoints          int               `koanf:"max_points_per_series"`
	MaxGap             int               `koanf:"max_gap"`
	QueryTimeout       time.Duration     `koanf:"query_timeout"`
	RetryFor           time.Duration     `koanf:"retry_for"`
	Outfile            string            `koanf:"outfile"`
	ResetOnStart       bool              `koanf:"reset_on_start"`
	RejectsFile        string            `koanf:"rejects_file"`
	webhook.Args       `koanf:",squash"` // webhook, webhook_timeout, webhook_max_backoff

	// Live is set by the registration (prometheus-live), not a key.
	Live bool `koanf:"-"`
}

// Default implements connectors.Args.
func (a *Args) Default() {
	a.URL, a.Step, a.Lag = DefaultURL, DefaultStep, DefaultLag
	a.ContainerLabel, a.HostLabel = "pod", "node"
	a.MaxPoints, a.MaxGap, a.QueryTimeout, a.RetryFor = DefaultMaxPoints, DefaultMaxGap, DefaultTimeout, DefaultRetryFor
	a.ResetOnStart = true
	a.Args.Default()
	a.Queries, a.CapacityQueries = map[string]string{}, map[string]string{}
	for k, v := range DefaultQueries {
		a.Queries[k] = v
	}
	for k, v := range DefaultCapacityQueries {
		a.CapacityQueries[k] = v
	}
}

func key(k string) string { return "connector.parameters." + k }

// Validate implements connectors.Args. The metrics' queries are checked
// in New, which knows connector.parameters.metrics.
func (a *Args) Validate() error {
	var errs []error
	bad := func(k string, v any, why string) {
		errs = append(errs, &connectors.KeyError{Key: key(k), Value: v, Allowed: why})
	}
	if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("url", a.URL, "must be an http:// or https:// URL")
	}
	if a.Step <= 0 {
		bad("step", a.Step.String(), "must be a positive duration (one tick)")
	}
	for k, v := range map[string]string{"container_label": a.ContainerLabel, "host_label": a.HostLabel} {
		if v == "" {
			bad(k, v, "must name a label")
		}
	}
	if a.MaxPoints < 1 {
		bad("max_points_per_series", a.MaxPoints, "must be at least 1")
	}
	if a.MaxGap < 0 {
		bad("max_gap", a.MaxGap, "must be 0 or more steps")
	}
	if a.QueryTimeout <= 0 {
		bad("query_timeout", a.QueryTimeout.String(), "must be a positive duration")
	}
	if a.RetryFor < 0 {
		bad("retry_for", a.RetryFor.String(), "must be 0 (no retry) or a positive duration")
	}
	if a.Lag < 0 {
		bad("lag", a.Lag.String(), "must be 0 or a positive duration")
	}
	start, serr := ParseTime(a.Start)
	if a.Start != "" && serr != nil {
		bad("start", a.Start, serr.Error())
	}
	if a.Live {
		if a.End != "" {
			bad("end", a.End, "must be empty in live mode ("+LiveName+" follows now; use connector.type: "+Name+" to replay a past range)")
		}
	} else {
		if a.Start == "" {
			bad("start", a.Start, "is required in history mode (connector.type: "+Name+"; "+LiveName+" follows now)")
		}
		end, eerr := ParseTime(a.End)
		switch {
		case a.End == "":
			bad("end", a.End, "is required in history mode (connector.type: "+Name+")")
		case eerr != nil:
			bad("end", a.End, eerr.Error())
		case serr == nil && a.Start != "" && end.Before(start):
			bad("end", a.End, "is before connector.parameters.start ("+a.Start+")")
		}
	}
	errs = append(errs, a.Args.Validate())
	return errors.Join(errs...)
}

// ParseTime reads RFC 3339 or Unix seconds (fractions allowed).
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("empty")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	// Unix seconds, read as a decimal (a float would be off by
	// nanoseconds, and ticks are exact multiples of the step).
	whole, frac, _ := strings.Cut(s, ".")
	if sec, err := strconv.ParseInt(whole, 10, 64); err == nil && len(frac) <= 9 && strings.Trim(frac, "0123456789") == "" {
		ns, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
		if strings.HasPrefix(whole, "-") {
			ns = -ns
		}
		return time.Unix(sec, ns).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("not a time: RFC 3339 (2024-01-31T00:00:00Z) or Unix seconds")
}

// Trace names the run directory of a history replay.
func (a *Args) Trace() string { return "prometheus" }

// Files implements connectors.Filer.
func (a *Args) Files(baseDir, runDir string) (inputs, outputs []connectors.NamedPath) {
	out, rej := a.paths(baseDir, runDir)
	for _, f := range []string{a.BearerTokenFile, a.PasswordFile, a.CAFile} {
		if f != "" {
			inputs = append(inputs, connectors.NamedPath{Key: key("credentials"), Path: resolve(baseDir, f)})
		}
	}
	return inputs, []connectors.NamedPath{{Key: key("outfile"), Path: out}, {Key: key("rejects_file"), Path: rej}}
}

func resolve(base, p string) string {
	if p == "" || filepath.IsAbs(p) || base == "" {
		return p
	}
	return filepath.Join(base, p)
}

func (a *Args) paths(baseDir, runDir string) (outfile, rejects string) {
	outfile, rejects = resolve(baseDir, a.Outfile), resolve(baseDir, a.RejectsFile)
	if outfile == "" {
		if runDir != "" {
			outfile = filepath.Join(runDir, "moves.jsonl")
		} else if a.Live {
			outfile = resolve(baseDir, "moves.jsonl")
		}
	}
	if rejects == "" && outfile != "" {
		rejects = filepath.Join(filepath.Dir(outfile), "rejects.csv")
	}
	return outfile, rejects
}

func queryKey(prefix, metric string) string { return key(prefix + "." + metric) }

// metricQueries returns the configured metrics' queries, or errors naming
// each missing key.
func metricQueries(m map[string]string, prefix string, metrics []string) ([]string, error) {
	var errs []error
	out := make([]string, len(metrics))
	for i, name := range metrics {
		q := strings.TrimSpace(m[name])
		if q == "" {
			errs = append(errs, &connectors.KeyError{Key: queryKey(prefix, name), Value: "", Allowed: "every metric of connector.parameters.metrics needs a PromQL query"})
		}
		out[i] = q
	}
	return out, errors.Join(errs...)
}
