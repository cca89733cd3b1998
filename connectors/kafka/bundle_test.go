package kafka

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
)

// Records already waiting on a claim come as one records message, in
// order, each named as it would be alone; acking the bundles commits
// exactly what was handed over; a producer's header cannot make a record
// pass for a bundle.
func TestBundledSubscriberHandsOverWaitingRecordsInOrder(t *testing.T) {
	ctx := testContext(t)
	o := startBroker(t, 1)
	o.Group, o.BundleRecords = "bundles", 100
	if err := EnsureTopics(ctx, o); err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	const total, forged = 600, 7
	var msgs []*message.Message
	for i := range total {
		m := newMsg("d", i)
		if i == forged {
			m.Metadata.Set(metadataRecords, "5")
		}
		msgs = append(msgs, m)
	}
	if err := pub.Publish("usage", msgs...); err != nil {
		t.Fatal(err)
	}
	inner, err := NewSubscriber(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	ch, err := provenanceSubscriber{inner}.Subscribe(ctx, "usage")
	if err != nil {
		t.Fatal(err)
	}
	var offsets []int64
	bundles, largest, bundled := 0, 0, 0
	for first := true; len(offsets) < total; first = false {
		var m *message.Message
		select {
		case m = <-ch:
		case <-ctx.Done():
			t.Fatalf("got %d of %d records", len(offsets), total)
		}
		if first {
			time.Sleep(300 * time.Millisecond) // let the rest wait on the claim
		}
		recs := []codecs.SourceRecord{{UUID: m.UUID, Metadata: m.Metadata, Payload: m.Payload}}
		if m.Metadata.Get(codecs.MetaKind) == codecs.KindRecords {
			if recs, err = codecs.DecodeRecords(m.Payload); err != nil {
				t.Fatal(err)
			}
			bundles, largest, bundled = bundles+1, max(largest, len(recs)), bundled+len(recs)
			if last := recs[len(recs)-1].Metadata[codecs.MetaOffset]; m.Metadata.Get(codecs.MetaOffset) != last {
				t.Errorf("bundle at offset %s, its last record at %s", m.Metadata.Get(codecs.MetaOffset), last)
			}
		}
		for _, r := range recs {
			off, _ := strconv.ParseInt(r.Metadata[codecs.MetaOffset], 10, 64)
			if string(r.Payload) != strconv.FormatInt(off, 10) || r.Metadata[codecs.MetaSource] != "usage" || r.Metadata[codecs.MetaKey] != "d" ||
				r.Metadata[codecs.MetaKind] != "" || r.Metadata[metadataRecords] != "" {
				t.Fatalf("record %q named %v", r.Payload, r.Metadata)
			}
			offsets = append(offsets, off)
		}
		m.Ack()
	}
	for i, off := range offsets {
		if off != int64(i) {
			t.Fatalf("record %d has offset %d: out of order or repeated", i, off)
		}
	}
	if bundles == 0 || largest > o.BundleRecords {
		t.Errorf("%d bundles, the largest %d records: want some, none over %d", bundles, largest, o.BundleRecords)
	}
	for committed(t, o, o.Group, "usage") < total {
		select {
		case <-ctx.Done():
			t.Fatalf("committed %d of %d", committed(t, o, o.Group, "usage"), total)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Logf("%d records in %d bundles (largest %d) and %d single records", bundled, bundles, largest, total-bundled)
}

// A bundle stops at max records or at bundleBytes, whichever comes first,
// and takes only what is already waiting.
func TestBundlerBounds(t *testing.T) {
	for _, tc := range []struct {
		name        string
		records     int
		size, max   int
		wantBundles []int // records per message handed over
	}{
		{"small records: by count", 10, 10, 4, []int{4, 4, 2}},
		{"1 MiB records: by bytes", 6, 1 << 20, 256, []int{4, 2}},
		{"one waiting: alone", 1, 10, 256, []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBundler(tc.max)
			in := make(chan *sarama.ConsumerMessage, tc.records)
			for i := range tc.records {
				in <- &sarama.ConsumerMessage{Topic: "u", Offset: int64(i), Value: make([]byte, tc.size)}
			}
			close(in)
			out := make(chan *sarama.ConsumerMessage)
			go b.run(in, out, make(chan struct{}))
			var got []int
			next := int64(0)
			for km := range out {
				batch := b.take(km)
				if batch == nil {
					batch = []*sarama.ConsumerMessage{km}
				}
				for _, r := range batch {
					if r.Offset != next {
						t.Fatalf("offset %d handed over, want %d", r.Offset, next)
					}
					next++
				}
				if km.Offset != batch[len(batch)-1].Offset {
					t.Errorf("message at offset %d, its last record at %d", km.Offset, batch[len(batch)-1].Offset)
				}
				got = append(got, len(batch))
			}
			if !slices.Equal(got, tc.wantBundles) {
				t.Errorf("handed over %v, want %v", got, tc.wantBundles)
			}
		})
	}
}
