package handlers

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
	"hots/placement"
)

// parallelRig is a live window over several domains, one partition each,
// whose Emit runs the placer inline; block, if set, runs inside Emit.
func parallelRig(store *memStore, block func(domain string, tick int64)) (*Window, func() map[string][]string) {
	fields := codecs.UsageFields{Tick: "timestamp", Individual: "container_id", Host: "machine_id", Metrics: []string{"cpu"}, DefaultDomain: "default", Domain: "domain"}
	p := &Placer{Params: placement.Params{Metrics: []string{"cpu"}, SepTime: 2, TickIncrement: 1, WindowDuration: 2}}
	for d := range 4 {
		for h := 1; h <= 2; h++ {
			p.Hosts = append(p.Hosts, placement.Host{Name: fmt.Sprintf("d%d-n%d", d, h), Capacity: []float64{float64(4 * h)}})
		}
	}
	w := &Window{Fields: fields, Placer: p, Store: store, Rule: TickRule{IdleTimeout: time.Hour}}
	p.OnDecision = func(d *placement.Decision, _ float64) { w.Decided(d) }
	var mu sync.Mutex
	moves := map[string][]string{}
	w.Emit = func(msgs []*message.Message) error {
		for _, m := range msgs {
			dom := m.Metadata.Get(codecs.MetaDomain)
			tick, _ := strconv.ParseInt(m.Metadata.Get(codecs.MetaTick), 10, 64)
			if block != nil {
				block(dom, tick)
			}
			ss, err := codecs.DecodeSamples(m.Payload)
			if err != nil {
				return err
			}
			d, err := p.CloseTick(placement.TickBatch{Domain: dom, Tick: tick, Samples: ss})
			if err != nil {
				return err
			}
			if d != nil {
				mu.Lock()
				for _, mv := range d.Moves {
					moves[dom] = append(moves[dom], mv.ID)
				}
				mu.Unlock()
			}
		}
		return nil
	}
	return w, func() map[string][]string { mu.Lock(); defer mu.Unlock(); return moves }
}

// domainRecord is record i of domain d's partition (partition d).
func domainRecord(t *testing.T, w *Window, d, i int) *message.Message {
	t.Helper()
	tk, c := i/3, i%3
	v := fmt.Sprintf(`{"timestamp":%d,"domain":"d%d","container_id":"c%d","machine_id":"d%d-n1","cpu":%d}`, tk, d, c, d, 2+(tk+c)%3)
	ss, err := codecs.DecodeSamplesJSON([]byte(v), codecs.Position{Source: "u", Partition: int32(d), Offset: int64(i)}, "", w.Fields)
	if err != nil {
		t.Fatal(err)
	}
	m := message.NewMessage(fmt.Sprint(d, i), codecs.EncodeSamples(ss))
	m.Metadata.Set(codecs.MetaKind, codecs.KindSamples)
	m.Metadata.Set(codecs.MetaSource, "u")
	m.Metadata.Set(codecs.MetaPartition, strconv.Itoa(d))
	m.Metadata.Set(codecs.MetaOffset, strconv.Itoa(i))
	return m
}

// Ticks of different domains close (and checkpoint) at the same time: a
// close of d0 held inside Emit does not stop d1's ticks from closing, and
// domains handled concurrently decide the same moves as one at a time.
func TestLiveWindowDomainsCloseInParallel(t *testing.T) {
	const records = 8 * 3
	serial, serialMoves := parallelRig(&memStore{m: map[string]codecs.Checkpoint{}}, nil)
	for d := range 4 {
		for i := range records {
			if err := serial.Handle(domainRecord(t, serial, d, i)); err != nil {
				t.Fatal(err)
			}
		}
	}

	release := make(chan struct{})
	d1closed := make(chan struct{}, 100)
	var once sync.Once
	w, moves := parallelRig(&memStore{m: map[string]codecs.Checkpoint{}}, func(dom string, tick int64) {
		switch dom {
		case "d0":
			once.Do(func() {
				select {
				case <-release:
				case <-time.After(10 * time.Second):
					t.Error("d0's close was held 10s: d1 never closed a tick meanwhile")
				}
			})
		case "d1":
			d1closed <- struct{}{}
		}
	})
	var wg sync.WaitGroup
	for d := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range records {
				if err := w.Handle(domainRecord(t, w, d, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	<-d1closed // d1 closed a tick while d0 may be held
	close(release)
	// Window-wide operations meanwhile: they wait for the handlings in
	// progress (and hold new ones back: not while d0 is held above, which
	// waits for d1).
	for range 20 {
		w.WithLock(func() {})
		_ = w.Tick()
		w.Stats()
		w.Seen()
	}
	wg.Wait()
	got, want := moves(), serialMoves()
	for d := range 4 {
		name := fmt.Sprintf("d%d", d)
		if !slices.Equal(got[name], want[name]) {
			t.Errorf("domain %s: moves %v handled concurrently, %v one at a time", name, got[name], want[name])
		}
	}
	if s := w.Stats(); s.Samples != 4*records || s.Ticks != serial.Stats().Ticks {
		t.Errorf("stats %+v, one at a time %+v", s, serial.Stats())
	}
}

// The decode stage's far-future check reads a domain's clock without its
// lock: it answers while a tick of that domain is closing (the lock held
// inside Emit), and it applies the rule against the newest tick folded.
func TestCheckTicksDoesNotWaitForACloseAndKeepsTheRule(t *testing.T) {
	inEmit, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	w, _ := parallelRig(&memStore{m: map[string]codecs.Checkpoint{}}, func(string, int64) {
		once.Do(func() { close(inEmit); <-release })
	})
	w.Rule.MaxTickJump = 10
	closing := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < 2*3 && err == nil; i++ { // ticks 0 and 1: tick 0 closes on tick 1's first sample
			err = w.Handle(domainRecord(t, w, 0, i))
		}
		closing <- err
	}()
	<-inEmit
	record := func(tick int64) []placement.Sample {
		return []placement.Sample{{Domain: "d0", Tick: tick, Container: "c0", Host: "d0-n1", Values: []float64{1}}}
	}
	for _, tc := range []struct {
		tick int64
		bad  string
	}{
		{1 + 10, ""},
		{1 + 11, "ticks ahead of the domain's clock (tick 1)"},
		{-1, "is negative"},
	} {
		done := make(chan error, 1)
		go func() { done <- w.CheckSamples(record(tc.tick), nil) }()
		select {
		case err := <-done:
			if got := fmt.Sprint(err); (tc.bad == "") != (err == nil) || (tc.bad != "" && !strings.Contains(got, tc.bad)) {
				t.Errorf("tick %d: CheckSamples = %v, want %q", tc.tick, err, tc.bad)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("tick %d: CheckSamples waited for the tick close", tc.tick)
		}
	}
	close(release)
	if err := <-closing; err != nil {
		t.Fatal(err)
	}
}
