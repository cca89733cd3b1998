package httpconn_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"hots/codecs"
	"hots/config"
	"hots/connectors"
	"hots/connectors/connectortest"
	httpconn "hots/connectors/http"
	"hots/pipeline"
	"hots/placement"
)

// running is a pipeline run over the http connector.
type running struct {
	conn *httpconn.Connector
	base string
	cfg  config.Config
	rec  *pipeline.Recorder
	stop func() *pipeline.Result
}

// start runs the pipeline (suite configuration) over a connector with
// args, and waits until it is ready.
func start(t *testing.T, args httpconn.Args) *running {
	t.Helper()
	cfg := connectortest.Config()
	conn, err := httpconn.New(pipeline.Env(cfg, nil), args)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := pipeline.NewService(pipeline.ServiceOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &pipeline.Recorder{}
	type result struct {
		res *pipeline.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := pipeline.Run(ctx, cfg, conn, pipeline.Options{Observer: rec, Service: svc})
		done <- result{res, err}
	}()
	for deadline := time.Now().Add(30 * time.Second); !svc.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the pipeline never became ready")
		}
	}
	var once sync.Once
	var res *pipeline.Result
	stop := func() *pipeline.Result {
		once.Do(func() {
			cancel()
			select {
			case r := <-done:
				if r.err != nil {
					t.Errorf("run: %v", r.err)
				}
				res = r.res
			case <-time.After(60 * time.Second):
				t.Fatal("the run did not end")
			}
			// The run leaves the connector to whoever opened it.
			if err := conn.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return res
	}
	t.Cleanup(func() { stop() })
	return &running{conn: conn, base: "http://" + conn.Addr(), cfg: cfg, rec: rec, stop: stop}
}

// feedTrace posts a trace's records one tick per request, each followed
// by its watermark.
func (r *running) feedTrace(t *testing.T, recs []connectortest.Record) {
	t.Helper()
	for i := 0; i < len(recs); {
		j := i
		var body bytes.Buffer
		for ; j < len(recs) && recs[j].Tick == recs[i].Tick; j++ {
			body.Write(recs[j].JSON)
			body.WriteByte('\n')
		}
		var resp httpconn.UsageResponse
		url := r.base + "/usage?watermark=" + strconv.FormatInt(recs[i].Tick, 10)
		if code := post(t, http.DefaultClient, url, "application/x-ndjson", body.Bytes(), &resp); code != http.StatusOK || resp.Accepted != j-i {
			t.Fatalf("tick %d: %d %+v", recs[i].Tick, code, resp)
		}
		i = j
	}
}

// get returns the status, headers and body of GET url.
func get(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func decodeMoves(t *testing.T, body []byte) []placement.Move {
	t.Helper()
	var out []placement.Move
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		m, err := codecs.DecodeMove(sc.Bytes())
		if err != nil {
			t.Fatalf("%v: %s", err, sc.Bytes())
		}
		out = append(out, m)
	}
	return out
}

// TestWebhook: a webhook that is down for its first posts, then loses one
// answer, still gets every move, in order, and (deduplicated by move id)
// once each; and since a move is delivered before the tick that decided it
// is acked, every move is there when the last usage request returns.
func TestWebhook(t *testing.T) {
	rc := &connectortest.WebhookReceiver{FailFirst: 3, DropAt: 5}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	a := testArgs()
	a.Watermarks, a.Webhook, a.WebhookMaxBackoff, a.WebhookTimeout = true, srv.URL+"/hook", 20*time.Millisecond, 2*time.Second
	trace := connectortest.Trace(t)
	a.DataFolder = trace
	r := start(t, a)
	r.feedTrace(t, connectortest.Records(t, trace, r.cfg))

	got := rc.Moves()
	_, _, body := get(t, r.base+"/moves")
	logged := decodeMoves(t, body)
	res := r.stop()
	if len(r.rec.Moves) == 0 {
		t.Fatal("no move decided: the test proves nothing")
	}
	// Every move is there when the last usage request returns (checked
	// before stop): a move is delivered before its tick is acked.
	rc.Check(t, r.rec.Moves)
	if !reflect.DeepEqual(logged, r.rec.Moves) {
		t.Errorf("GET /moves has %d moves, want the %d decided", len(logged), len(r.rec.Moves))
	}
	if res.Moves != int64(len(r.rec.Moves)) || len(got) != len(r.rec.Moves) {
		t.Errorf("result: %d moves, the webhook had %d when the last request returned, want %d", res.Moves, len(got), len(r.rec.Moves))
	}
}

// TestMovesLogIsBounded: keep_moves keeps the newest moves; ?from skips
// what was forgotten and says where the log starts.
func TestMovesLogIsBounded(t *testing.T) {
	a := testArgs()
	trace := connectortest.Trace(t)
	a.Watermarks, a.KeepMoves, a.DataFolder = true, 3, trace
	r := start(t, a)
	r.feedTrace(t, connectortest.Records(t, trace, r.cfg))
	all := r.rec.Moves
	if len(all) <= 3 {
		t.Fatalf("%d moves: the test needs more than keep_moves", len(all))
	}
	code, h, body := get(t, r.base+"/moves?from=0")
	if code != http.StatusOK || h.Get("X-Hots-First") != strconv.Itoa(len(all)-3) || h.Get("X-Hots-Next") != strconv.Itoa(len(all)) {
		t.Errorf("GET /moves: %d first %s next %s, want 200, %d, %d", code, h.Get("X-Hots-First"), h.Get("X-Hots-Next"), len(all)-3, len(all))
	}
	if got := decodeMoves(t, body); !reflect.DeepEqual(got, all[len(all)-3:]) {
		t.Errorf("GET /moves: %s, want the newest 3 of %s", connectortest.String(got), connectortest.String(all))
	}
	_, _, body = get(t, r.base+"/moves?from="+strconv.Itoa(len(all)-1))
	if got := decodeMoves(t, body); !reflect.DeepEqual(got, all[len(all)-1:]) {
		t.Errorf("GET /moves?from=%d: %s, want the last move", len(all)-1, connectortest.String(got))
	}
}

func errorOf(t *testing.T, body []byte) string {
	t.Helper()
	var e httpconn.ErrorResponse
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Fatalf("not an error answer: %s", body)
	}
	return e.Error
}

// TestBadRequests: each mistake gets its 4xx with a JSON error saying
// what to do; a record the decoder refuses is poisoned and reported in
// the answer, and the good records of the same request go through.
func TestBadRequests(t *testing.T) {
	a := testArgs()
	a.MaxBodyBytes = 1024
	a.Lateness = 0
	r := start(t, a)
	do := func(method, path, ctype, body string) (int, http.Header, []byte) {
		req, err := http.NewRequest(method, r.base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	good := `{"timestamp": 1, "container_id": "c1", "machine_id": "h1", "cpu": 0.5, "mem": 0.25}`
	for _, c := range []struct {
		name, method, path, ctype, body string
		code                            int
		says, allow                     string
	}{
		{"GetUsage", http.MethodGet, "/usage", "", "", http.StatusMethodNotAllowed, "use POST", "POST"},
		{"PutUsage", http.MethodPut, "/usage", "application/json", good, http.StatusMethodNotAllowed, "use POST", "POST"},
		{"TextPlain", http.MethodPost, "/usage", "text/plain", good, http.StatusUnsupportedMediaType, "application/x-ndjson", ""},
		{"NoContentType", http.MethodPost, "/usage", "", good, http.StatusUnsupportedMediaType, "want application/json", ""},
		{"TooLarge", http.MethodPost, "/usage", "application/x-ndjson", strings.Repeat(good+"\n", 20), http.StatusRequestEntityTooLarge, "max_body_bytes", ""},
		{"EmptyBody", http.MethodPost, "/usage", "application/json", " \n", http.StatusBadRequest, "empty body", ""},
		{"BadWatermark", http.MethodPost, "/usage?watermark=soon", "", "", http.StatusBadRequest, "want a tick", ""},
		{"WatermarkWithLateness", http.MethodPost, "/usage?watermark=3", "", "", http.StatusConflict, "watermarks: true", ""},
		{"PostMoves", http.MethodPost, "/moves", "application/json", good, http.StatusMethodNotAllowed, "use GET", "GET, HEAD"},
		{"MovesFromNegative", http.MethodGet, "/moves?from=-1", "", "", http.StatusBadRequest, "want a line number", ""},
		{"MovesFollowNotBool", http.MethodGet, "/poison?follow=please", "", "", http.StatusBadRequest, "follow", ""},
		{"NodeNotJSON", http.MethodPost, "/nodes", "application/x-ndjson", `{}`, http.StatusUnsupportedMediaType, "want application/json", ""},
		{"NodeMissingCapacity", http.MethodPost, "/nodes", "application/json", `{"host":"h9","capacity":{"cpu":4}}`, http.StatusBadRequest, "capacity.mem", ""},
		{"GetNodes", http.MethodGet, "/nodes", "", "", http.StatusMethodNotAllowed, "use POST", "POST"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, h, body := do(c.method, c.path, c.ctype, c.body)
			if code != c.code {
				t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, code, body, c.code)
			}
			if msg := errorOf(t, body); !strings.Contains(msg, c.says) {
				t.Errorf("error %q does not say %q", msg, c.says)
			}
			if h.Get("Content-Type") != "application/json" || h.Get("Allow") != c.allow {
				t.Errorf("Content-Type %q Allow %q, want application/json and %q", h.Get("Content-Type"), h.Get("Allow"), c.allow)
			}
		})
	}
	// Nothing of the refused requests reached the stream: the first
	// record sent is offset 0.
	t.Run("InvalidLinePoisoned", func(t *testing.T) {
		body := good + "\n\n{not json\n" + strings.Replace(good, `"c1"`, `"c2"`, 1) + "\n" + strings.Replace(good, `0.5`, `"lots"`, 1) + "\n"
		code, _, b := do(http.MethodPost, "/usage", "application/x-ndjson; charset=utf-8", body)
		var resp httpconn.UsageResponse
		if err := json.Unmarshal(b, &resp); err != nil || code != http.StatusOK {
			t.Fatalf("%d %s", code, b)
		}
		if resp.Accepted != 2 || len(resp.Poisoned) != 2 {
			t.Fatalf("answer %+v, want 2 accepted and 2 poisoned", resp)
		}
		p0, p1 := resp.Poisoned[0], resp.Poisoned[1]
		if p0.Line != 3 || p0.Offset != 1 || !strings.Contains(p0.Reason, "not a JSON object") {
			t.Errorf("first poisoned %+v, want line 3, offset 1, not a JSON object", p0)
		}
		if p1.Line != 5 || p1.Offset != 3 || !strings.Contains(p1.Reason, "cpu") {
			t.Errorf("second poisoned %+v, want line 5, offset 3, naming cpu", p1)
		}
		code, h, b := get(t, r.base+"/poison")
		if code != http.StatusOK || h.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("GET /poison: %d %s", code, h.Get("Content-Type"))
		}
		var entries []map[string]any
		for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var e map[string]any
			if err := json.Unmarshal(l, &e); err != nil {
				t.Fatalf("%v: %s", err, l)
			}
			entries = append(entries, e)
		}
		if len(entries) != 2 {
			t.Fatalf("GET /poison: %d entries, want 2: %s", len(entries), b)
		}
		e := entries[0]
		if e["source"] != "http:/usage" || e["offset"] != float64(1) || e["partition"] != float64(0) || e["record"] != "{not json" || e["reason"] != p0.Reason {
			t.Errorf("poison entry %v, want source http:/usage, partition 0, offset 1, the raw line and the reason", e)
		}
	})
	t.Run("Node", func(t *testing.T) {
		code, _, b := do(http.MethodPost, "/nodes", "application/json", `{"host":"h9","capacity":{"cpu":4,"mem":8}}`)
		var nr httpconn.NodeResponse
		if err := json.Unmarshal(b, &nr); err != nil || code != http.StatusOK || nr.Host != "h9" || !reflect.DeepEqual(nr.Capacity, []float64{4, 8}) {
			t.Errorf("POST /nodes: %d %s", code, b)
		}
	})
	res := r.stop()
	if res.Samples != 2 || res.Rejected != 2 {
		t.Errorf("result: %d samples, %d rejected; want 2 and 2", res.Samples, res.Rejected)
	}
	// After Close: usage is refused, not lost silently.
	if _, err := http.Post(r.base+"/usage", "application/json", strings.NewReader(good)); err == nil {
		t.Errorf("POST after Close: want a connection error, got %v", err)
	}
}

// TestArgs: defaults and every bad value named by its key.
func TestArgs(t *testing.T) {
	d, err := connectors.Decode(httpconn.Name, connectors.Raw{Parameters: map[string]any{"listen": ":9000", "lateness": "250ms", "nope": 1}})
	if err != nil {
		t.Fatal(err)
	}
	a := d.Args.(*httpconn.Args)
	if a.Listen != ":9000" || a.Lateness != 250*time.Millisecond || a.UsagePath != "/usage" || a.IdleTimeout != 30*time.Second {
		t.Errorf("decoded %+v", a)
	}
	if !reflect.DeepEqual(d.Unknown, []string{"connector.parameters.nope"}) {
		t.Errorf("unknown %v", d.Unknown)
	}
	_, err = connectors.Decode(httpconn.Name, connectors.Raw{Parameters: map[string]any{
		"listen": "nowhere", "usage_path": "usage", "moves_path": "/poison", "webhook": "ftp://x", "webhook_timeout": "0s",
		"lateness": "-1s", "max_body_bytes": 0, "keep_moves": 0}})
	if err == nil {
		t.Fatal("bad values accepted")
	}
	for _, key := range []string{"listen", "usage_path", "poison_path", "webhook", "webhook_timeout", "lateness", "max_body_bytes", "keep_moves"} {
		if !strings.Contains(err.Error(), "connector.parameters."+key+" = ") {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}
}
