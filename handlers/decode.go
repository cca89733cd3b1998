package handlers

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
	"hots/placement"
)

// Decoder is stage 1: row batches from the file connector, or JSON usage
// records from Kafka, become sample batches. Watermarks pass through.
type Decoder struct {
	Fields codecs.UsageFields
	// Reject receives every bad CSV row (required).
	Reject func(*codecs.RowError)

	hdr     *codecs.UsageHeader // of the last batch's source; one file per run
	decoded int64
}

// Decoded is the number of samples produced so far. Not safe to call
// concurrently with Handle.
func (d *Decoder) Decoded() int64 { return d.decoded }

// Handle is the handler func.
func (d *Decoder) Handle(msg *message.Message) ([]*message.Message, error) {
	var ss []placement.Sample
	switch msg.Metadata.Get(codecs.MetaKind) {
	case codecs.KindWatermark:
		out := message.NewMessage(msg.UUID, nil)
		out.Metadata = copyMeta(msg.Metadata)
		return []*message.Message{out}, nil
	case codecs.KindRows:
		var err error
		if ss, err = d.rows(msg.Payload); err != nil {
			return nil, Permanent(err)
		}
	default: // a JSON record or upstream batch (Kafka, or any producer)
		pos := codecs.Position{Source: msg.Metadata.Get(codecs.MetaSource)}
		if p, err := strconv.ParseInt(msg.Metadata.Get(codecs.MetaPartition), 10, 32); err == nil {
			pos.Partition = int32(p)
		}
		pos.Offset, _ = strconv.ParseInt(msg.Metadata.Get(codecs.MetaOffset), 10, 64)
		var err error
		if ss, err = codecs.DecodeSamplesJSON(msg.Payload, pos, msg.Metadata.Get(codecs.MetaKey), d.Fields); err != nil {
			return nil, Permanent(err)
		}
	}
	if len(ss) == 0 {
		return nil, nil
	}
	d.decoded += int64(len(ss))
	out := message.NewMessage(msg.UUID+"/samples", codecs.EncodeSamples(ss))
	out.Metadata = copyMeta(msg.Metadata)
	out.Metadata.Set(codecs.MetaKind, codecs.KindSamples)
	return []*message.Message{out}, nil
}

func (d *Decoder) rows(payload []byte) ([]placement.Sample, error) {
	var b codecs.RawBatch
	if err := b.UnmarshalBinary(payload); err != nil {
		return nil, fmt.Errorf("row batch: %w", err)
	}
	if d.hdr == nil || d.hdr.Source != b.Source || !slices.Equal(d.hdr.Names, b.Header) {
		h, err := codecs.NewUsageHeader(b.Source, b.Header, d.Fields)
		if err != nil {
			return nil, err
		}
		d.hdr = h
	}
	nm := len(d.hdr.Metrics)
	vals := make([]float64, nm*len(b.Rows))
	ss := make([]placement.Sample, 0, len(b.Rows))
	for i, r := range b.Rows {
		s, err := d.hdr.Sample(r.Fields, r.Line, vals[i*nm:(i+1)*nm:(i+1)*nm])
		if err != nil {
			if re, ok := err.(*codecs.RowError); ok {
				if r.TraceHost != "" { // show the row as the trace has it
					f := slices.Clone(r.Fields)
					f[d.hdr.Host] = r.TraceHost
					re.Raw = strings.Join(f, ",")
				}
				d.Reject(re)
				continue
			}
			return nil, err
		}
		s.TraceHost = r.TraceHost
		ss = append(ss, s)
	}
	return ss, nil
}

func copyMeta(m message.Metadata) message.Metadata {
	out := make(message.Metadata, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
