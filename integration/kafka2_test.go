package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"hots/codecs"
	"hots/placement"
)

// 2. kcat as an outside peer: usage produced with kcat -P -K: into a
// standalone `hots broker` process, moves consumed with kcat -C -e.
func TestKafkaKcatPeer(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat not on PATH (.ci/run installs it: apt-get install kcat)")
	}
	tr := thesisTrace(t)
	dir := t.TempDir()
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	broker := exec.Command(hotsBin, "broker", "--ports", fmt.Sprint(port))
	blog, _ := os.Create(filepath.Join(dir, "broker.log"))
	broker.Stdout, broker.Stderr = blog, blog
	if err := broker.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { broker.Process.Kill(); broker.Wait() }()
	waitFor(t, 10*time.Second, "hots broker", func() bool { b, _ := os.ReadFile(blog.Name()); return strings.Contains(string(b), "brokers=") })

	cfg := writeConfig(t, dir, tr, addr, "", "")
	want := fileReplay(t, cfg, tr)
	svc := startService(t, cfg, "svc", true)

	// The trace as key:value lines, in tick order (the file is sorted).
	f, err := os.Open(filepath.Join(tr.dir, "container_usage.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Scan() // header: timestamp,container_id,machine_id,cpu
	for sc.Scan() {
		p := strings.Split(sc.Text(), ",")
		lines = append(lines, fmt.Sprintf(`default:{"timestamp":%s,"container_id":%q,"machine_id":%q,"cpu":%s}`, p[0], p[1], p[2], p[3]))
	}
	kp := exec.Command("kcat", "-P", "-K:", "-b", addr, "-t", "hots.usage")
	kp.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := kp.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
	var got map[string]placement.Move
	waitFor(t, 60*time.Second, "kcat to read the replay's moves", func() bool {
		out, err := exec.Command("kcat", "-C", "-e", "-q", "-b", addr, "-t", "hots.moves", "-o", "beginning").Output()
		if err != nil {
			return false
		}
		got = map[string]placement.Move{}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l == "" {
				continue
			}
			m, err := codecs.DecodeMove([]byte(l))
			if err != nil {
				t.Fatalf("kcat read a bad move %q: %v", l, err)
			}
			got[m.ID] = m
		}
		return equalMoves(got, want)
	})
	waitTicksClosed(t, svc, countTicks(traceTicks(t, tr)), 30*time.Second)
	t.Logf("kcat produced %d samples and read %d moves equal to the file replay; ticks_closed=%v", len(lines), len(got), svc.metric("hots_ticks_closed_total"))
}

// 4. Two instances in one group over 6 domains; one is killed mid-trace;
// every domain completes and the moves equal the single-instance answer.
func TestKafkaScaleOut(t *testing.T) {
	tr := genTrace(t, 6, 24, 4, 30) // 4320 samples
	b := startBroker(t, 0, "")
	defer b.Close()
	addr := b.Addrs()[0]
	cfg := writeConfig(t, t.TempDir(), tr, addr, "", "")
	want := fileReplay(t, cfg, tr)
	a := startService(t, cfg, "a", true)
	bb := startService(t, cfg, "b", true)
	time.Sleep(6 * time.Second) // let the group settle on two members (a goka/sarama rebalance)
	done := make(chan struct{})
	var produced time.Time
	go func() { defer close(done); produce(t, cfg, tr, addr, 500); produced = time.Now() }() // about 9 s
	waitFor(t, 60*time.Second, "both instances to work", func() bool {
		return a.metric("hots_moves_total") > 0 || bb.metric("hots_moves_total") > 0
	})
	victim, survivor := bb, a
	if bb.metric("hots_samples_in_total") == 0 {
		victim, survivor = a, bb
	}
	t.Logf("killing an instance after %v/%v samples", a.metric("hots_samples_in_total"), bb.metric("hots_samples_in_total"))
	survivorIn := survivor.metric("hots_samples_in_total")
	killed := time.Now()
	victim.kill(t)
	ticks := traceTicks(t, tr)
	// The victim's domains not complete at the kill are what the survivor
	// must take over (restore from the table, catch up, go on).
	victimDoms := acquiredDomains(t, victim.log)
	var takeover []string
	closed := lastClosed(t, addr)
	for _, d := range incomplete(ticks, closed) {
		if slices.Contains(victimDoms, d) {
			takeover = append(takeover, d)
		}
	}
	if len(takeover) == 0 {
		t.Fatalf("the victim (domains %v) had nothing left to do at the kill: no takeover tested", victimDoms)
	}
	<-done
	waitAllClosed(t, addr, ticks, 120*time.Second)
	took := time.Since(killed)
	n := waitSameMoves(t, addr, want, 30*time.Second)
	got := acquiredDomains(t, survivor.log)
	for _, d := range takeover {
		if !slices.Contains(got, d) {
			t.Errorf("domain %s completed but the survivor never acquired it", d)
		}
	}
	t.Logf("survivor took over %v and completed every domain %s after the kill; %d moves (%d records) equal the single-instance answer; survivor samples_in %v -> %v",
		takeover, took.Round(100*time.Millisecond), len(want), n, survivorIn, survivor.metric("hots_samples_in_total"))
	// Where the seconds went, from the survivor's log and the progress
	// table's record times: the group noticing the death (session
	// timeout), the restore and catch-up of the taken-over domains, and
	// the last ticks, which close after kafka.idle_timeout without
	// samples (after the producer finished) and are saved at most every
	// kafka.checkpoint_interval. Figures only: nothing is asserted on them.
	since := func(at time.Time) string {
		if at.IsZero() {
			return "never"
		}
		return at.Sub(killed).Round(100 * time.Millisecond).String()
	}
	var reassigned, caughtUp time.Time
	for _, l := range logLines(t, survivor.log, `msg="partitions assigned"`) {
		if l.at.After(killed) {
			reassigned = l.at
			break
		}
	}
	for _, d := range takeover {
		var at time.Time
		for _, l := range logLines(t, survivor.log, `msg="domain acquired" domain=`+d+" ") {
			if l.at.After(killed) {
				at = l.at
				break
			}
		}
		if at.IsZero() { // never: no figure
			caughtUp = time.Time{}
			break
		}
		if at.After(caughtUp) {
			caughtUp = at
		}
	}
	saved := completedAt(t, addr, ticks)
	t.Logf("after the kill: usage group reassigned %s, every taken-over domain acquired and caught up %s, producer finished %s, every domain's last tick saved %s (progress table record time), seen complete by the test %s",
		since(reassigned), since(caughtUp), since(produced), since(saved), took.Round(100*time.Millisecond))
	logb, _ := os.ReadFile(survivor.log)
	for _, l := range strings.Split(string(logb), "\n") {
		if strings.Contains(l, "domain acquired") || strings.Contains(l, "domain released") || strings.Contains(l, "partitions assigned") {
			t.Log(l)
		}
	}
}

// logLine is one line of a service log with its time.
type logLine struct {
	at   time.Time
	line string
}

// logLines returns the lines of a service log that contain substr, with
// the time of their time= field, in order.
func logLines(t testing.TB, logPath, substr string) []logLine {
	t.Helper()
	b, _ := os.ReadFile(logPath)
	var out []logLine
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, substr) {
			continue
		}
		ts, ok := strings.CutPrefix(l, "time=")
		if !ok {
			continue
		}
		ts, _, _ = strings.Cut(ts, " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		out = append(out, logLine{at: at, line: l})
	}
	return out
}

// completedAt is when the progress table first held every domain's last
// tick closed: the latest, over the domains, of the time of the first
// record that closed the domain's last tick (zero if one never did).
func completedAt(t testing.TB, brokers string, ticks map[string][]int64) time.Time {
	t.Helper()
	first := map[string]time.Time{}
	for _, r := range readTopic(t, brokers, "hots-it-state-progress-table") {
		var p struct {
			LastClosedTick int64 `json:"last_closed_tick"`
		}
		d := string(r.Key)
		ts, ok := ticks[d]
		if !ok || r.Value == nil || json.Unmarshal(r.Value, &p) != nil || p.LastClosedTick < ts[len(ts)-1] {
			continue
		}
		if at, seen := first[d]; !seen || r.Timestamp.Before(at) {
			first[d] = r.Timestamp
		}
	}
	var last time.Time
	for d := range ticks {
		at, ok := first[d]
		if !ok {
			return time.Time{}
		}
		if at.After(last) {
			last = at
		}
	}
	return last
}

// acquiredDomains lists the domains a service's log says it acquired.
func acquiredDomains(t testing.TB, logPath string) []string {
	t.Helper()
	b, _ := os.ReadFile(logPath)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, `msg="domain acquired"`) {
			continue
		}
		if _, rest, ok := strings.Cut(l, " domain="); ok {
			d, _, _ := strings.Cut(rest, " ")
			if !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
	}
	slices.Sort(out)
	return out
}

// 5. Started before its broker, the service waits and connects; a broker
// restart (same port, data dir) is survived and the run completes.
func TestKafkaBrokerLateAndRestart(t *testing.T) {
	tr := genTrace(t, 2, 24, 4, 30)
	dir := t.TempDir()
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := writeConfig(t, dir, tr, addr, "", "")
	want := fileReplay(t, cfg, tr)
	t.Setenv("HOTS_SERVICE__STALL_AFTER", "2s")
	svc := startService(t, cfg, "svc", false)
	time.Sleep(3 * time.Second)
	if svc.get("/healthz") != "ok\n" || svc.get("/readyz") != "" {
		t.Fatalf("before the broker: healthz %q readyz %q, want ok and not ready", svc.get("/healthz"), svc.get("/readyz"))
	}
	data := filepath.Join(dir, "kfake")
	b := startBroker(t, port, data)
	waitFor(t, 60*time.Second, "service ready after the broker came up", func() bool { return svc.get("/readyz") == "ready\n" })
	done := make(chan struct{})
	go func() { defer close(done); produce(t, cfg, tr, addr, 400) }()
	waitFor(t, 30*time.Second, "first moves", func() bool { return svc.metric("hots_moves_total") > 0 })
	<-done
	b.Close()
	// Readiness tells the truth: with the broker away no partition end can
	// be fetched, and after service.stall_after /readyz fails.
	waitFor(t, 30*time.Second, "readyz failing while the broker is away", func() bool { return svc.get("/readyz") == "" })
	b = startBroker(t, port, data)
	defer b.Close()
	waitFor(t, 60*time.Second, "ready again once the broker is back", func() bool { return svc.get("/readyz") == "ready\n" })
	waitAllClosed(t, addr, traceTicks(t, tr), 120*time.Second)
	n := waitSameMoves(t, addr, want, 30*time.Second)
	t.Logf("after a broker restart: %d moves (%d records) equal the file replay", len(want), n)
}
