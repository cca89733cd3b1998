package prometheus_test

import (
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"hots/connectors"
	"hots/connectors/connectortest"
	"hots/connectors/prometheus"
)

// TestHistoryWebhook: a history replay with a webhook writes moves.jsonl
// and posts every move to the webhook too, the file first: a receiver
// that is down for its first posts and loses one answer still gets,
// deduplicated by id, exactly the moves of moves.jsonl in order (the ones
// of a replay without a webhook).
func TestHistoryWebhook(t *testing.T) {
	const name = "synthetic/syn_n200"
	trace := dataDir(t, name)
	cfg := traceConfig(t, name)
	rc := &connectortest.WebhookReceiver{FailFirst: 3, DropAt: 6}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s, last := historyServer(t, trace)
	got, res, _, _ := historyRun(t, cfg, s.URL(), last, map[string]any{
		"webhook": srv.URL + "/hots/moves", "webhook_timeout": "2s", "webhook_max_backoff": "20ms"})
	want, _, _, _ := historyRun(t, cfg, s.URL(), last, nil)
	if len(got) < 2 {
		t.Fatalf("%d moves: the test proves nothing", len(got))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("moves.jsonl with a webhook differs from a replay without:\n got %d %s\nwant %d %s", len(got), connectortest.String(got), len(want), connectortest.String(want))
	}
	rc.Check(t, got)
	if res.Moves != int64(len(got)) {
		t.Errorf("result: %d moves, moves.jsonl has %d", res.Moves, len(got))
	}
	t.Logf("%d moves posted", len(rc.Moves()))
}

// TestWebhookArgs: both registrations take the webhook keys, and a bad
// value is named by its key.
func TestWebhookArgs(t *testing.T) {
	for _, n := range []string{prometheus.Name, prometheus.LiveName} {
		p := map[string]any{"webhook": "http://127.0.0.1:1/hook", "webhook_timeout": "3s"}
		if n == prometheus.Name {
			p["start"], p["end"] = "0", "60"
		}
		d, err := connectors.Decode(n, connectors.Raw{Parameters: p})
		if err != nil || len(d.Unknown) > 0 {
			t.Fatalf("%s: %v, unknown %v", n, err, d.Unknown)
		}
		a := d.Args.(*prometheus.Args)
		if a.Webhook != "http://127.0.0.1:1/hook" || a.WebhookTimeout.String() != "3s" || a.WebhookMaxBackoff.String() != "10s" {
			t.Errorf("%s: decoded %+v", n, a.Args)
		}
		p["webhook"], p["webhook_timeout"] = "ftp://x", "0s"
		_, err = connectors.Decode(n, connectors.Raw{Parameters: p})
		for _, k := range []string{"connector.parameters.webhook = ", "connector.parameters.webhook_timeout = "} {
			if err == nil || !strings.Contains(err.Error(), k) {
				t.Errorf("%s: %v does not name %s", n, err, k)
			}
		}
	}
}
