package integration

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// traceTicks reads a trace's usage file: per domain (the "domain" column,
// else "default"), its ticks in order.
func traceTicks(t testing.TB, tr trace) map[string][]int64 {
	t.Helper()
	f, err := os.Open(filepath.Join(tr.dir, "container_usage.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	ts, dom := slices.Index(recs[0], "timestamp"), slices.Index(recs[0], "domain")
	seen := map[string]map[int64]bool{}
	for _, r := range recs[1:] {
		d := "default"
		if dom >= 0 {
			d = r[dom]
		}
		tick, err := strconv.ParseInt(r[ts], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if seen[d] == nil {
			seen[d] = map[int64]bool{}
		}
		seen[d][tick] = true
	}
	out := map[string][]int64{}
	for d, ticks := range seen {
		for tk := range ticks {
			out[d] = append(out[d], tk)
		}
		slices.Sort(out[d])
	}
	return out
}

func countTicks(ticks map[string][]int64) int {
	n := 0
	for _, ts := range ticks {
		n += len(ts)
	}
	return n
}

// lastClosed reads the service's progress table (a compacted topic; the
// latest record per key wins): per domain, its last closed tick.
func lastClosed(t testing.TB, brokers string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, r := range readTopic(t, brokers, "hots-it-state-progress-table") {
		var p struct {
			LastClosedTick int64 `json:"last_closed_tick"`
		}
		if r.Value == nil || json.Unmarshal(r.Value, &p) != nil {
			continue
		}
		if cur, ok := out[string(r.Key)]; !ok || p.LastClosedTick > cur {
			out[string(r.Key)] = p.LastClosedTick
		}
	}
	return out
}

// incomplete lists the domains whose last tick is not closed in the table.
func incomplete(ticks map[string][]int64, closed map[string]int64) []string {
	var out []string
	for d, ts := range ticks {
		if c, ok := closed[d]; !ok || c < ts[len(ts)-1] {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// waitAllClosed waits until the progress table shows every domain's last
// tick closed: every domain completed, whoever owned it.
func waitAllClosed(t testing.TB, brokers string, ticks map[string][]int64, timeout time.Duration) {
	t.Helper()
	var left []string
	deadline := time.Now().Add(timeout)
	for {
		closed := lastClosed(t, brokers)
		if left = incomplete(ticks, closed); len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, d := range left {
				fmt.Fprintf(&b, " %s: closed %v of last %d;", d, closed[d], ticks[d][len(ticks[d])-1])
			}
			t.Fatalf("after %s, domains not complete in the progress table:%s", timeout, b.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitTicksClosed waits until svc's ticks-closed counter reaches want,
// then checks it is exactly want (each (domain, tick) closed once).
func waitTicksClosed(t testing.TB, svc *service, want int, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%d ticks closed", want), func() bool { return svc.metric("hots_ticks_closed_total") >= float64(want) })
	time.Sleep(time.Second) // a tick closed twice would show up by now
	if got := svc.metric("hots_ticks_closed_total"); got != float64(want) {
		t.Errorf("ticks_closed = %v, want %d (one per domain and tick of the trace)", got, want)
	}
}
