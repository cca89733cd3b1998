package integration

import (
	"testing"
	"time"

	"hots/connectors/file/sample"
)

// sampleTrace is the bundled generator's trace at a size users run: varied
// phase-shifted profiles with noise, so checkpoints do not compress away.
func sampleTrace(t testing.TB, containers, hosts, ticks int) trace {
	t.Helper()
	tr, err := sample.Generate(sample.Params{Containers: containers, Hosts: hosts, Ticks: ticks, Seed: 4242})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := tr.Write(dir); err != nil {
		t.Fatal(err)
	}
	return trace{dir: dir, yaml: `
clustering: {method: kmeans, nb_clusters: 4, parameters: {random_state: 0}}
problem: {type: placement, parameters: {tol: 0.1, tol_move: 0.2, initial_placement: false}}
connector:
  parameters: {metrics: [cpu, mem], sep_time: 11, tick_increment: 6, window_duration: 6}
`}
}

// A 5,000-container domain against a broker that enforces Kafka's default
// message.max.bytes (every test broker does): its state is written in
// chunks far below the limit, every tick closes and is checkpointed, and
// the move ids equal the file replay's.
func TestKafkaLargeDomain(t *testing.T) {
	if testing.Short() {
		t.Skip("5,000 containers: about a minute")
	}
	tr := sampleTrace(t, 5000, 100, 24)
	b := startBroker(t, 0, "")
	defer b.Close()
	addr := b.Addrs()[0]
	cfg := writeConfig(t, t.TempDir(), tr, addr, "", "")
	want := fileReplay(t, cfg, tr)
	svc := startService(t, cfg, "svc", true)
	start := time.Now()
	produce(t, cfg, tr, addr, 0, "--batch", "500")
	ticks := traceTicks(t, tr)
	waitTicksClosed(t, svc, countTicks(ticks), 4*time.Minute)
	waitAllClosed(t, addr, ticks, time.Minute)
	n := waitSameMoves(t, addr, want, time.Minute)
	el := time.Since(start)
	saves, bytes := svc.metric("hots_checkpoint_bytes_count"), svc.metric("hots_checkpoint_bytes_sum")
	if saves == 0 {
		t.Fatal("no checkpoint was written")
	}
	t.Logf("5,000 containers: %d moves (%d records) equal the file replay after %s (%.0f samples/s); %v checkpoints of %.1f MB each on average, in chunks of at most 192 KiB",
		len(want), n, el.Round(time.Millisecond), svc.metric("hots_samples_in_total")/el.Seconds(), saves, bytes/saves/1e6)
	if p := svc.metric("hots_poison_total"); p != 0 {
		t.Errorf("poison_total = %v, want 0", p)
	}
}
