package handlers

import (
	"fmt"
	"strconv"
	"sync/atomic"

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
	decoded atomic.Int64        // records of several partitions are decoded at once
	sizeOut int                 // size of the last samples payload: the next one's capacity
}

// Decoded is the number of samples produced so far.
func (d *Decoder) Decoded() int64 { return d.decoded.Load() }

// Handle is the handler func.
func (d *Decoder) Handle(msg *message.Message) ([]*message.Message, error) {
	var payload []byte
	var n int
	switch msg.Metadata.Get(codecs.MetaKind) {
	case codecs.KindWatermark:
		out := message.NewMessage(msg.UUID, nil)
		out.Metadata = copyMeta(msg.Metadata)
		return []*message.Message{out}, nil
	case codecs.KindRows:
		var err error
		if payload, n, err = d.rows(msg.Payload); err != nil {
			return nil, Permanent(err)
		}
	case codecs.KindJSON, "": // a JSON record or upstream batch (a stream's records carry no kind)
		ss, err := d.Samples(msg)
		if err != nil {
			return nil, err
		}
		payload, n = codecs.EncodeSamples(ss), len(ss)
	default:
		return nil, Permanent(fmt.Errorf("decode: unexpected message kind %q", msg.Metadata.Get(codecs.MetaKind)))
	}
	if n == 0 {
		return nil, nil
	}
	return []*message.Message{d.Out(msg, payload, n)}, nil
}

// Samples decodes a JSON usage record or upstream batch (kind json, or
// none) into its samples; a bad one is a permanent error naming it.
func (d *Decoder) Samples(msg *message.Message) ([]placement.Sample, error) {
	pos := codecs.Position{Source: msg.Metadata.Get(codecs.MetaSource)}
	if p, err := strconv.ParseInt(msg.Metadata.Get(codecs.MetaPartition), 10, 32); err == nil {
		pos.Partition = int32(p)
	}
	pos.Offset, _ = strconv.ParseInt(msg.Metadata.Get(codecs.MetaOffset), 10, 64)
	ss, err := codecs.DecodeSamplesJSON(msg.Payload, pos, msg.Metadata.Get(codecs.MetaKey), d.Fields)
	if err != nil {
		return nil, Permanent(err)
	}
	return ss, nil
}

// Out is the samples message of msg's n samples (payload: EncodeSamples
// or a SampleWriter's), counted as decoded.
func (d *Decoder) Out(msg *message.Message, payload []byte, n int) *message.Message {
	d.decoded.Add(int64(n))
	out := message.NewMessage(msg.UUID+"/samples", payload)
	out.Metadata = copyMeta(msg.Metadata)
	out.Metadata.Set(codecs.MetaKind, codecs.KindSamples)
	return out
}

// rows decodes a row batch straight from its payload into a samples
// payload: fields are views of the payload, numbers are parsed from bytes
// (codecs.AppendSample), and no string is made unless a row is refused.
func (d *Decoder) rows(payload []byte) ([]byte, int, error) {
	var rd codecs.RowBatchReader
	if err := rd.Reset(payload); err != nil {
		return nil, 0, fmt.Errorf("row batch: %w", err)
	}
	if !d.sameHeader(&rd) {
		h, err := codecs.NewUsageHeader(string(rd.Source), codecs.Strings(rd.Header), d.Fields)
		if err != nil {
			return nil, 0, err
		}
		d.hdr = h
	}
	var w codecs.SampleWriter
	w.Reset(max(d.sizeOut, len(payload)+len(payload)/2))
	for {
		line, fields, ok := rd.Next()
		if !ok {
			break
		}
		if d.hdr.AppendSample(&w, fields) {
			continue
		}
		// Refused: the string path says why (or, should the two ever
		// disagree, decodes it).
		s, err := d.hdr.Sample(codecs.Strings(fields), line, make([]float64, len(d.hdr.Metrics)))
		if err != nil {
			if re, ok := err.(*codecs.RowError); ok {
				d.Reject(re)
				continue
			}
			return nil, 0, err
		}
		w.Append(&s)
	}
	if err := rd.Err(); err != nil {
		return nil, 0, fmt.Errorf("row batch: %w", err)
	}
	n := w.Len()
	out := w.Bytes()
	d.sizeOut = len(out) + len(out)/8
	return out, n, nil
}

// sameHeader reports whether the batch's source and header are the cached
// header's (compared as bytes, so no string is made per batch).
func (d *Decoder) sameHeader(rd *codecs.RowBatchReader) bool {
	if d.hdr == nil || d.hdr.Source != string(rd.Source) || len(d.hdr.Names) != len(rd.Header) {
		return false
	}
	for i, h := range rd.Header {
		if d.hdr.Names[i] != string(h) {
			return false
		}
	}
	return true
}

func copyMeta(m message.Metadata) message.Metadata {
	out := make(message.Metadata, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
