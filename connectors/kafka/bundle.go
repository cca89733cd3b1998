package kafka

import (
	"strconv"
	"sync"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
)

// Bundling. watermill-kafka hands over one record per partition at a time
// and waits for its ack, and a domain's records all sit on one partition:
// a domain's records go through the stages strictly one after the other,
// at some 70 µs of Watermill and runtime work each, whatever the cores.
// So a claim hands over what is already waiting on it (records sarama
// fetched and buffered) as one records message (codecs.KindRecords). The
// decode stage takes each record of it as if it had come alone; the ack of
// the bundle marks its last record, so what is committed is exactly what
// was handled, as before. A record that arrives alone is handed over as
// it is.

// metadataRecords marks a bundle between the marshaler and the provenance
// subscriber. A producer's header of that name is dropped on the way in,
// so a record cannot pass for a bundle.
const metadataRecords = "_hots_records"

// bundleBytes bounds a bundle's size (records are copied into it): 256
// records near Kafka's 1 MB limit would otherwise make a 256 MB message.
const bundleBytes = 4 << 20

// bundler makes and recognises bundles of up to max records. The synthetic
// sarama message of a bundle is its key in pending until the marshaler
// takes it.
type bundler struct {
	max int

	mu      sync.Mutex
	pending map[*sarama.ConsumerMessage][]*sarama.ConsumerMessage
}

func newBundler(max int) *bundler {
	return &bundler{max: max, pending: map[*sarama.ConsumerMessage][]*sarama.ConsumerMessage{}}
}

// wrap returns the claim watermill-kafka reads, and what ends its
// goroutine once watermill-kafka is done with it. Records it took from
// the claim but never handed over were not marked: they come again.
func (b *bundler) wrap(c sarama.ConsumerGroupClaim) (sarama.ConsumerGroupClaim, func()) {
	if b == nil || b.max <= 1 {
		return c, func() {}
	}
	bc := &bundledClaim{ConsumerGroupClaim: c, out: make(chan *sarama.ConsumerMessage)}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		b.run(c.Messages(), bc.out, stop)
	}()
	return bc, func() {
		close(stop)
		<-done
		b.forget(c.Topic(), c.Partition())
	}
}

func (b *bundler) run(in <-chan *sarama.ConsumerMessage, out chan<- *sarama.ConsumerMessage, stop <-chan struct{}) {
	defer close(out)
	for {
		var first *sarama.ConsumerMessage
		select {
		case m, ok := <-in:
			if !ok {
				return
			}
			first = m
		case <-stop:
			return
		}
		batch := []*sarama.ConsumerMessage{first}
		size := len(first.Value)
	more:
		for len(batch) < b.max && size < bundleBytes {
			select {
			case m, ok := <-in:
				if !ok {
					break more
				}
				batch, size = append(batch, m), size+len(m.Value)
			default:
				break more
			}
		}
		msg := first
		if len(batch) > 1 {
			last := batch[len(batch)-1]
			msg = &sarama.ConsumerMessage{Topic: last.Topic, Partition: last.Partition, Offset: last.Offset, Timestamp: last.Timestamp}
			b.mu.Lock()
			b.pending[msg] = batch
			b.mu.Unlock()
		}
		select {
		case out <- msg:
		case <-stop:
			b.mu.Lock()
			delete(b.pending, msg)
			b.mu.Unlock()
			return
		}
	}
}

// take returns the records of a bundle (nil for a record).
func (b *bundler) take(km *sarama.ConsumerMessage) []*sarama.ConsumerMessage {
	if b == nil || b.max <= 1 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	batch := b.pending[km]
	delete(b.pending, km)
	return batch
}

// forget drops the bundles of a claim that ended with them handed over
// but not unmarshalled (watermill-kafka closing in between).
func (b *bundler) forget(topic string, partition int32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for km := range b.pending {
		if km.Topic == topic && km.Partition == partition {
			delete(b.pending, km)
		}
	}
}

type bundledClaim struct {
	sarama.ConsumerGroupClaim
	out chan *sarama.ConsumerMessage
}

func (c *bundledClaim) Messages() <-chan *sarama.ConsumerMessage { return c.out }

// unmarshalBundle is the records message of a bundle: each record as the
// provenance subscriber would have passed it on alone.
func (m marshaler) unmarshalBundle(km *sarama.ConsumerMessage, batch []*sarama.ConsumerMessage) (*message.Message, error) {
	recs := make([]codecs.SourceRecord, 0, len(batch))
	for _, r := range batch {
		rm, err := m.unmarshalOne(r)
		if err != nil {
			return nil, err
		}
		nameProvenance(rm)
		recs = append(recs, codecs.SourceRecord{UUID: rm.UUID, Metadata: rm.Metadata, Payload: rm.Payload})
	}
	msg := message.NewMessage(km.Topic+"/"+strconv.FormatInt(int64(km.Partition), 10)+"/"+strconv.FormatInt(batch[0].Offset, 10)+"-"+strconv.FormatInt(km.Offset, 10),
		codecs.EncodeRecords(recs))
	msg.Metadata.Set(MetadataTopic, km.Topic)
	msg.Metadata.Set(MetadataPartition, strconv.FormatInt(int64(km.Partition), 10))
	msg.Metadata.Set(MetadataOffset, strconv.FormatInt(km.Offset, 10))
	msg.Metadata.Set(metadataRecords, strconv.Itoa(len(recs)))
	return msg, nil
}
