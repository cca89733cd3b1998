package httpconn_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"hots/codecs"
	"hots/connectors"
	"hots/connectors/connectortest"
	httpconn "hots/connectors/http"
	"hots/placement"
)

// testArgs are the defaults with a free port.
func testArgs() httpconn.Args {
	var a httpconn.Args
	a.Default()
	a.Listen = "127.0.0.1:0"
	return a
}

// follower reads a GET …?follow=1 stream into lines until it ends (at
// the connector's Close).
type follower struct {
	mu    sync.Mutex
	lines [][]byte
	done  chan struct{}
	err   error
}

func follow(t *testing.T, url string) *follower {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("GET %s: %s %s", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	f := &follower{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			f.mu.Lock()
			f.lines = append(f.lines, bytes.Clone(sc.Bytes()))
			f.mu.Unlock()
		}
		f.err = sc.Err()
	}()
	return f
}

// wait returns every line once the stream ended.
func (f *follower) wait(t *testing.T) [][]byte {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the follow stream did not end at Close")
	}
	if f.err != nil {
		t.Fatalf("follow stream: %v", f.err)
	}
	return f.lines
}

// post sends body to url and decodes the JSON answer into out.
func post(t testing.TB, client *http.Client, url, ctype string, body []byte, out any) int {
	t.Helper()
	resp, err := client.Post(url, ctype, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("POST %s: %s: not JSON: %v: %s", url, resp.Status, err, b)
		}
	}
	return resp.StatusCode
}

// harness drives the connector over real HTTP: the trace is posted as
// NDJSON in three batches per tick (plus a watermark per tick when
// watermarks are on); moves and poison are read from follow streams
// opened before the first record.
func harness(watermarks bool) connectortest.Harness {
	var mu sync.Mutex
	moves := map[connectors.Connector]*follower{}
	poison := map[connectors.Connector]*follower{}
	return connectortest.Harness{
		Open: func(t *testing.T, trace string, env connectors.Env) (connectors.Connector, connectortest.Feed) {
			a := testArgs()
			a.DataFolder, a.Watermarks = trace, watermarks
			a.Lateness, a.IdleTimeout = 0, 300*time.Millisecond
			c, err := httpconn.New(env, a)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			feed := func(ctx context.Context, recs []connectortest.Record) error {
				base := "http://" + c.Addr()
				mu.Lock()
				moves[c] = follow(t, base+"/moves?follow=1")
				poison[c] = follow(t, base+"/poison?follow=1")
				mu.Unlock()
				client := &http.Client{}
				for i := 0; i < len(recs); {
					j := i
					for j < len(recs) && recs[j].Tick == recs[i].Tick {
						j++
					}
					tick := recs[i].Tick
					n := j - i
					for k := 0; k < 3; k++ {
						var body bytes.Buffer
						for _, r := range recs[i+k*n/3 : i+(k+1)*n/3] {
							body.Write(r.JSON)
							body.WriteByte('\n')
						}
						var resp httpconn.UsageResponse
						if code := post(t, client, base+"/usage", "application/x-ndjson", body.Bytes(), &resp); code != http.StatusOK {
							return fmt.Errorf("tick %d: POST /usage: %d %+v", tick, code, resp)
						}
					}
					if watermarks {
						var resp httpconn.UsageResponse
						url := base + "/usage?watermark=" + strconv.FormatInt(tick, 10)
						if code := post(t, client, url, "", nil, &resp); code != http.StatusOK || resp.Watermark == nil || *resp.Watermark != tick {
							return fmt.Errorf("watermark %d: %d %+v", tick, code, resp)
						}
					}
					i = j
				}
				return nil
			}
			return c, feed
		},
		Published: func(t *testing.T, conn connectors.Connector) []placement.Move {
			conn.Close() // ends the follow streams (the run leaves the connector open)
			mu.Lock()
			f := moves[conn]
			mu.Unlock()
			var out []placement.Move
			for _, l := range f.wait(t) {
				m, err := codecs.DecodeMove(l)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, m)
			}
			return out
		},
		Poisoned: func(t *testing.T, conn connectors.Connector) int {
			conn.Close()
			mu.Lock()
			f := poison[conn]
			mu.Unlock()
			return len(f.wait(t))
		},
	}
}

// TestConformance runs the suite with both tick rules: watermarks posted
// by the client (deterministic by construction), and lateness 0 with a
// short idle timeout (a later tick's first record closes the tick before
// it is acked; the last tick closes by idleness).
func TestConformance(t *testing.T) {
	t.Run("Watermarks", func(t *testing.T) { connectortest.Run(t, harness(true)) })
	t.Run("Lateness", func(t *testing.T) { connectortest.Run(t, harness(false)) })
}
