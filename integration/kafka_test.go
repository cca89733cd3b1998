package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// 1. The service's moves equal a file replay of the same trace.
func TestKafkaSameAnswerAsFileMode(t *testing.T) {
	cases := []struct {
		name    string
		tr      func(testing.TB) trace
		produce []string
	}{
		{"thesis_ex_10", thesisTrace, nil},
		{"generated_4_domains", func(t testing.TB) trace { return genTrace(t, 4, 24, 4, 30) }, nil},
		// upstream's {"containers": [...]} batches, several per tick
		{"generated_4_domains_batched", func(t testing.TB) trace { return genTrace(t, 4, 24, 4, 30) }, []string{"--batch", "10"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := c.tr(t)
			b := startBroker(t, 0, "")
			defer b.Close()
			addr := b.Addrs()[0]
			cfg := writeConfig(t, t.TempDir(), tr, addr, "", "")
			want := fileReplay(t, cfg, tr)
			svc := startService(t, cfg, "svc", true)
			start := time.Now()
			produce(t, cfg, tr, addr, 0, c.produce...)
			ticks := traceTicks(t, tr)
			waitTicksClosed(t, svc, countTicks(ticks), 60*time.Second)
			waitAllClosed(t, addr, ticks, 30*time.Second)
			n := waitSameMoves(t, addr, want, 30*time.Second)
			t.Logf("%d moves (%d records) equal the file replay after %s; samples_in=%v ticks_closed=%v loops=%v",
				len(want), n, time.Since(start).Round(time.Millisecond), svc.metric("hots_samples_in_total"),
				svc.metric("hots_ticks_closed_total"), svc.metric("hots_loops_total"))
			if p := svc.metric("hots_poison_total"); p != 0 {
				t.Errorf("poison_total = %v, want 0", p)
			}
		})
	}
}

// 3. SIGKILL mid-trace, restart: the deduplicated moves equal the
// uninterrupted answer (the file replay, which test 1 shows it equals).
func TestKafkaCrashRestart(t *testing.T) {
	tr := genTrace(t, 4, 24, 4, 30) // 2880 samples
	b := startBroker(t, 0, "")
	defer b.Close()
	addr := b.Addrs()[0]
	cfg := writeConfig(t, t.TempDir(), tr, addr, "", "")
	want := fileReplay(t, cfg, tr)
	svc := startService(t, cfg, "svc1", true)
	done := make(chan struct{})
	go func() { defer close(done); produce(t, cfg, tr, addr, 500) }() // about 6 s
	waitFor(t, 30*time.Second, "first moves", func() bool { return svc.metric("hots_moves_total") > 0 })
	in := svc.metric("hots_samples_in_total")
	svc.kill(t)
	ticks := traceTicks(t, tr)
	left := incomplete(ticks, lastClosed(t, addr))
	t.Logf("killed after %v samples; domains not complete: %v", in, left)
	if in >= 2880 || len(left) == 0 {
		t.Fatalf("the kill came after the whole trace (%v samples): nothing mid-trace was tested", in)
	}
	svc2 := startService(t, cfg, "svc2", true)
	<-done
	waitAllClosed(t, addr, ticks, 90*time.Second)
	n := waitSameMoves(t, addr, want, 30*time.Second)
	t.Logf("after restart: %d distinct moves (%d records incl. republished duplicates) equal the file replay; restarted instance got %v samples",
		len(want), n, svc2.metric("hots_samples_in_total"))
}

// 6. Bad messages go to the poison topic with reason and provenance, and
// the good messages after them on the same partition are processed.
func TestKafkaPoison(t *testing.T) {
	tr := thesisTrace(t)
	b := startBroker(t, 0, "")
	defer b.Close()
	addr := b.Addrs()[0]
	cfg := writeConfig(t, t.TempDir(), tr, addr, "", "")
	want := fileReplay(t, cfg, tr)
	svc := startService(t, cfg, "svc", true)
	// The last one is just under the client's 1,000,000-byte limit: with
	// the reason headers added it would not fit any more, so the poison
	// record carries a 64 KiB excerpt (and the partition goes on).
	huge := `{"timestamp": 0, "container_id": "c_1", "machine_id": "n_1", "junk": "` + strings.Repeat("x", 999_000) + `"}`
	bad := []struct{ value, reason string }{
		{`{"timestamp": 0, "container_id": "c_1",`, "not a JSON object"},
		{`{"timestamp": 0, "machine_id": "n_1", "cpu": 1}`, "missing field"},
		{`{"timestamp": 0, "container_id": "c_1", "machine_id": "n_1", "gpu": 1}`, "missing metric"},
		{`{"timestamp": 0, "container_id": "c_1", "machine_id": "n_1", "cpu": -1}`, ""},
		{huge, "missing metric"},
	}
	var msgs []kv
	for _, m := range bad {
		msgs = append(msgs, kv{"default", m.value})
	}
	sendRaw(t, addr, "hots.usage", msgs)
	produce(t, cfg, tr, addr, 0) // same key: same partition, after the bad ones
	// A tick far ahead of the domain's clock (its last tick is 11) must
	// not move the clock: poisoned, and every tick still closes.
	far := `{"timestamp": 1000000, "container_id": "c_1", "machine_id": "n_1", "cpu": 1}`
	sendRaw(t, addr, "hots.usage", []kv{{"default", far}})
	waitSameMoves(t, addr, want, 60*time.Second)
	waitAllClosed(t, addr, traceTicks(t, tr), 60*time.Second)
	var poison []poisoned
	waitFor(t, 30*time.Second, "6 poisoned records", func() bool {
		poison = readPoison(t, addr)
		return len(poison) >= len(bad)+1
	})
	if len(poison) != len(bad)+1 {
		t.Fatalf("%d poisoned records, want %d", len(poison), len(bad)+1)
	}
	if p := poison[len(bad)]; p.value != far || !contains(p.reason, "ticks ahead of the domain's clock (tick 11)") {
		t.Errorf("far-future record poisoned as %q with %q", p.value, p.reason)
	}
	poison = poison[:len(bad)]
	for i, p := range poison {
		if i == len(bad)-1 {
			if len(p.value) != 64<<10 || !strings.HasPrefix(bad[i].value, p.value) {
				t.Errorf("the huge record's poison copy is %d bytes, want its first 64 KiB", len(p.value))
			}
		} else if p.value != bad[i].value {
			t.Errorf("poison %d: value %q, want %q", i, p.value, bad[i].value)
		}
		if p.reason == "" || !contains(p.reason, bad[i].reason) {
			t.Errorf("poison %d: reason %q, want it to contain %q", i, p.reason, bad[i].reason)
		}
		if p.topic != "hots.usage" || p.offset != fmt.Sprint(i) || p.partition == "" {
			t.Errorf("poison %d: provenance %s[%s]@%s, want hots.usage[*]@%d", i, p.topic, p.partition, p.offset, i)
		}
	}
	if got := svc.metric("hots_poison_total"); got != float64(len(bad)+1) {
		t.Errorf("poison_total = %v, want %d", got, len(bad)+1)
	}
	t.Logf("poison reasons: %q", []string{poison[0].reason, poison[1].reason, poison[2].reason, poison[3].reason})
}
