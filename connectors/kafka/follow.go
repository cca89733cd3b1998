package kafka

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
	"hots/connectors"
)

// provenanceSubscriber names every record the way the stages read
// provenance (codecs metadata: source, partition, offset, key). A
// producer's "kind" header must not pass for stage metadata, so it goes.
type provenanceSubscriber struct{ message.Subscriber }

// nameProvenance sets the codecs provenance of a received record and drops
// a producer's kind.
func nameProvenance(msg *message.Message) {
	delete(msg.Metadata, codecs.MetaKind)
	t, part, off := Provenance(msg)
	msg.Metadata.Set(codecs.MetaSource, t)
	msg.Metadata.Set(codecs.MetaPartition, itoa(int64(part)))
	msg.Metadata.Set(codecs.MetaOffset, itoa(off))
	msg.Metadata.Set(codecs.MetaKey, Key(msg))
}

func (s provenanceSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	in, err := s.Subscriber.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make(chan *message.Message)
	go func() {
		defer close(out)
		for msg := range in {
			bundle := msg.Metadata.Get(metadataRecords) != ""
			nameProvenance(msg)
			if bundle { // its records are named already (unmarshalBundle)
				delete(msg.Metadata, metadataRecords)
				msg.Metadata.Set(codecs.MetaKind, codecs.KindRecords)
			}
			select {
			case out <- msg:
			case <-ctx.Done():
				msg.Nack()
				return
			}
		}
	}()
	return out, nil
}

// patientPublisher retries a failed publish until it succeeds or ctx
// ends: with the broker away the stream waits; it must not poison moves.
type patientPublisher struct {
	message.Publisher
	ctx context.Context
	log *slog.Logger
}

func (p *patientPublisher) Publish(topic string, msgs ...*message.Message) error {
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := p.Publisher.Publish(topic, msgs...)
		if err == nil || p.ctx.Err() != nil {
			return err
		}
		p.log.Warn("publish failed, retrying", "topic", topic, "attempt", attempt, "err", err)
		select {
		case <-p.ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// newSaramaClient connects a plain sarama client (no group) for one role;
// its client id is ClientID-role. tune, if set, adjusts the config.
//
// Each role has a client, so a connection of its own: a broker answers the
// requests of one connection in order, so a fetch waiting at a partition's
// end (Consumer.MaxWaitTime, 500 ms) holds every request sent after it on
// that connection. With the nodes topic followed on the same client as the
// catch-up reads and the partition-end queries, each of those waited up to
// 500 ms per request (a takeover's catch-up of one domain took 2–3.5 s).
func newSaramaClient(ctx context.Context, o Options, role string, tune func(*sarama.Config)) (sarama.Client, error) {
	v, err := sarama.ParseKafkaVersion(o.SaramaVersion)
	if err != nil {
		return nil, err
	}
	var b backoff
	for {
		sc := sarama.NewConfig()
		sc.Version = v
		sc.ClientID = o.ClientID + "-" + role
		sc.Metadata.Retry.Backoff = 100 * time.Millisecond
		sc.Consumer.Return.Errors = true
		if tune != nil {
			tune(sc)
		}
		c, err := sarama.NewClient(o.Brokers, sc)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(b.next()):
		}
	}
}

// watchEnds fetches every usage partition's high-water mark every
// interval: the window needs it before an idle close, and the lag gauge
// is computed from it.
func watchEnds(ctx context.Context, client sarama.Client, topics []string, rt connectors.Runtime, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, topic := range topics {
			parts, err := client.Partitions(topic)
			if err != nil {
				continue
			}
			for _, p := range parts {
				at := time.Now()
				hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
				if err != nil {
					continue
				}
				rt.SetEnd(topic, p, hwm, at)
			}
		}
	}
}

// followNodes reads the compacted nodes topic from the oldest record and
// follows it: each record (host -> domain, capacities) updates the engine
// of the host's domain.
func followNodes(ctx context.Context, client sarama.Client, topic string, metrics []string, rt connectors.Runtime, log *slog.Logger) {
	parts, err := client.Partitions(topic)
	if err != nil {
		log.Warn("nodes topic: not followed", "topic", topic, "err", err)
		return
	}
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		log.Warn("nodes topic: not followed", "topic", topic, "err", err)
		return
	}
	defer cons.Close()
	var wg sync.WaitGroup
	for _, part := range parts {
		pc, err := cons.ConsumePartition(topic, part, sarama.OffsetOldest)
		if err != nil {
			log.Warn("nodes topic: partition not followed", "topic", topic, "partition", part, "err", err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.Close()
			for {
				select {
				case <-ctx.Done():
					return
				case km := <-pc.Messages():
					if km == nil || km.Value == nil {
						continue // a tombstone: the capacity stays as last known
					}
					pos := codecs.Position{Source: topic, Partition: km.Partition, Offset: km.Offset}
					nc, h, err := codecs.DecodeNode(km.Value, pos, metrics)
					if err != nil {
						log.Warn("nodes topic: bad record skipped", "err", err)
						continue
					}
					if err := rt.SetHost(h, codecs.HostDomain{Domain: nc.Domain, Where: pos}); err != nil {
						log.Warn("nodes topic: capacity not applied", "host", h.Name, "err", err)
					}
				}
			}
		}()
	}
	wg.Wait()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
