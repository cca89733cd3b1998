package kafka

import (
	"bytes"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// kcat (librdkafka) is the outside peer: what a non-Go producer writes, our
// Subscriber must read with key and value intact, and what our Publisher
// writes, a non-Go consumer must read.
func kcatPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not on PATH (Debian: apt-get install kcat); skipping the non-Go client test")
	}
	return p
}

func TestKcatProducesSubscriberReads(t *testing.T) {
	kcat := kcatPath(t)
	ctx := testContext(t)
	o := startBroker(t, 3)
	o.Group = "kcat-in"
	if err := EnsureTopics(ctx, o); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"eu-1": `{"tick":1,"container":"c1","host":"h1","cpu":0.5}`,
		"eu-2": `{"tick":1,"container":"c2","host":"h2","cpu":0.25}`,
		"us-1": `{"tick":2,"container":"c3","host":"h1","cpu":1}`,
	}
	var in strings.Builder
	for k, v := range want {
		in.WriteString(k + ":" + v + "\n") // -K: splits at the first ':'
	}
	cmd := exec.CommandContext(ctx, kcat, "-b", strings.Join(o.Brokers, ","), "-P", "-K:", "-t", "usage")
	cmd.Stdin = strings.NewReader(in.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v: %s", err, out)
	}

	sub, err := NewSubscriber(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ch, err := sub.Subscribe(ctx, "usage")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	perPartition := map[int32][]int64{}
	for _, m := range receive(ctx, t, ch, len(want)) {
		got[Key(m)] = string(m.Payload)
		topic, p, off := Provenance(m)
		if topic != "usage" || p < 0 || p >= int32(o.Partitions) {
			t.Errorf("key %s: provenance %s/%d/%d", Key(m), topic, p, off)
		}
		perPartition[p] = append(perPartition[p], off)
		if m.UUID == "" {
			t.Errorf("key %s: a record without watermill UUID header got no UUID", Key(m))
		}
	}
	// Offsets on each partition are 0, 1, ... in the order read.
	for p, offs := range perPartition {
		for i, off := range offs {
			if off != int64(i) {
				t.Errorf("partition %d: offsets %v, want 0..%d", p, offs, len(offs)-1)
				break
			}
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("key %s: value %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got keys %v", got)
	}
}

func TestPublisherWritesKcatReads(t *testing.T) {
	kcat := kcatPath(t)
	ctx := testContext(t)
	o := startBroker(t, 3)
	if err := EnsureTopics(ctx, o); err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for i, d := range []string{"eu-1", "eu-2", "us-1"} {
		if err := pub.Publish(o.MovesTopic, newMsg(d, i)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.CommandContext(ctx, kcat, "-b", strings.Join(o.Brokers, ","), "-C", "-t", o.MovesTopic,
		"-o", "beginning", "-e", "-q", "-f", "%k=%s\n").Output()
	if err != nil {
		t.Fatalf("kcat -C: %v", err)
	}
	lines := strings.Split(string(bytes.TrimSpace(out)), "\n")
	sort.Strings(lines)
	if want := "eu-1=0,eu-2=1,us-1=2"; strings.Join(lines, ",") != want {
		t.Fatalf("kcat read %q, want %q", strings.Join(lines, ","), want)
	}
}
