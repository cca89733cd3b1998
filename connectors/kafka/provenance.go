package kafka

import (
	"strconv"

	"github.com/IBM/sarama"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Metadata keys set on every message NewSubscriber delivers.
//
// watermill-kafka v3.0.6 itself sets no such metadata: its Unmarshaler
// copies the record headers into Metadata (except "_watermill_message_uuid",
// which becomes msg.UUID) and puts partition, offset, timestamp and key only
// into msg.Context() (MessagePartitionFromCtx, MessagePartitionOffsetFromCtx,
// MessageTimestampFromCtx, MessageKeyFromCtx), never the topic. A context
// does not survive a copy or a poison-queue publish, so our Unmarshaler
// writes them into Metadata as well. A header of the same name written by a
// producer is overwritten: these keys always describe the record as read.
const (
	MetadataTopic     = "kafka_topic"
	MetadataPartition = "kafka_partition"
	MetadataOffset    = "kafka_offset"
	MetadataKey       = "kafka_key"
	// MetadataDomain is what the publisher keys records by.
	MetadataDomain = "domain"
)

// defaultDomain mirrors placement.DefaultDomain; connectors sit at the
// edge and do not import the engine for one constant.
const defaultDomain = "default"

// Provenance returns the topic, partition and offset a message was read
// from, for naming the record in a poison reason. Messages that did not
// come from Kafka give "", -1, -1.
func Provenance(msg *message.Message) (topic string, partition int32, offset int64) {
	topic, partition, offset = msg.Metadata.Get(MetadataTopic), -1, -1
	if p, err := strconv.ParseInt(msg.Metadata.Get(MetadataPartition), 10, 32); err == nil {
		partition = int32(p)
	} else if p, ok := wmkafka.MessagePartitionFromCtx(msg.Context()); ok {
		partition = p
	}
	if o, err := strconv.ParseInt(msg.Metadata.Get(MetadataOffset), 10, 64); err == nil {
		offset = o
	} else if o, ok := wmkafka.MessagePartitionOffsetFromCtx(msg.Context()); ok {
		offset = o
	}
	return topic, partition, offset
}

// Key returns the Kafka record key of a received message ("" if none).
func Key(msg *message.Message) string { return msg.Metadata.Get(MetadataKey) }

// marshaler keys records by domain, so that all records of a domain land on
// one partition (the domain is the unit of ownership and ordering), and
// records provenance on the way in.
type marshaler struct {
	wmkafka.DefaultMarshaler
	bundles *bundler // nil: never bundles
}

func (m marshaler) Marshal(topic string, msg *message.Message) (*sarama.ProducerMessage, error) {
	km, err := m.DefaultMarshaler.Marshal(topic, msg)
	if err != nil {
		return nil, err
	}
	km.Key = sarama.StringEncoder(DomainKey(msg))
	return km, nil
}

// DomainKey is the record key a message is published with: its "domain"
// metadata, or "default".
func DomainKey(msg *message.Message) string {
	if d := msg.Metadata.Get(MetadataDomain); d != "" {
		return d
	}
	return defaultDomain
}

func (m marshaler) Unmarshal(km *sarama.ConsumerMessage) (*message.Message, error) {
	if batch := m.bundles.take(km); batch != nil {
		return m.unmarshalBundle(km, batch)
	}
	return m.unmarshalOne(km)
}

func (m marshaler) unmarshalOne(km *sarama.ConsumerMessage) (*message.Message, error) {
	msg, err := m.DefaultMarshaler.Unmarshal(km)
	if err != nil {
		return nil, err
	}
	delete(msg.Metadata, metadataRecords)
	msg.Metadata.Set(MetadataTopic, km.Topic)
	msg.Metadata.Set(MetadataPartition, strconv.FormatInt(int64(km.Partition), 10))
	msg.Metadata.Set(MetadataOffset, strconv.FormatInt(km.Offset, 10))
	if km.Key != nil {
		msg.Metadata.Set(MetadataKey, string(km.Key))
	}
	if msg.UUID == "" {
		// Records from non-watermill producers (kcat, upstream HOTS) carry
		// no UUID header; give them a stable one so logs and the poison
		// queue can still tell them apart.
		msg.UUID = km.Topic + "/" + strconv.FormatInt(int64(km.Partition), 10) + "/" + strconv.FormatInt(km.Offset, 10)
	}
	return msg, nil
}
