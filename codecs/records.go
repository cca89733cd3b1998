package codecs

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// KindRecords is a message carrying several consecutive source records of
// one partition (EncodeRecords). A log connector bundles what is already
// waiting, so the per-message cost of the source and the decode stage is
// paid once per bundle; the decode stage takes each record as if it had
// come alone (same metadata, poisoned alone when bad).
const KindRecords = "records"

// SourceRecord is one source record inside a records message: what its own
// message would have been.
type SourceRecord struct {
	UUID     string
	Metadata map[string]string
	Payload  []byte
}

// EncodeRecords: the record count, then each record as UUID, metadata
// pairs and payload, length-prefixed with uvarints.
func EncodeRecords(recs []SourceRecord) []byte {
	n := 8
	for _, r := range recs {
		n += len(r.UUID) + len(r.Payload) + 12
		for k, v := range r.Metadata {
			n += len(k) + len(v) + 4
		}
	}
	out := binary.AppendUvarint(make([]byte, 0, n), uint64(len(recs)))
	for _, r := range recs {
		out = appendString(out, r.UUID)
		out = binary.AppendUvarint(out, uint64(len(r.Metadata)))
		for k, v := range r.Metadata {
			out = appendString(appendString(out, k), v)
		}
		out = appendBytes(out, r.Payload)
	}
	return out
}

// DecodeRecords reverses EncodeRecords. Payloads alias data.
func DecodeRecords(data []byte) ([]SourceRecord, error) {
	r := reader{buf: data, all: string(data)}
	n := r.count()
	recs := make([]SourceRecord, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		rec := SourceRecord{UUID: r.str()}
		m := r.count()
		rec.Metadata = make(map[string]string, m)
		for j := 0; j < m && r.err == nil; j++ {
			k := r.str()
			rec.Metadata[k] = r.str()
		}
		rec.Payload = r.bytes()
		recs = append(recs, rec)
	}
	if r.err == nil && r.off != len(data) {
		r.err = errShort
	}
	if r.err != nil {
		return nil, fmt.Errorf("records message: %w", r.err)
	}
	return recs, nil
}

// MetaRecords, on a samples message, lists the records its samples came
// from, in order, as "offset:samples" pairs separated by commas: the
// decode stage merges a bundle's records into one message and the window
// still folds them record by record (each offset checked and recorded as
// if it had come alone).
const MetaRecords = "records"

// Segment is one record of a merged samples message.
type Segment struct {
	Offset  int64
	Samples int
}

// FormatSegments is the MetaRecords value of segs.
func FormatSegments(segs []Segment) string {
	b := make([]byte, 0, 12*len(segs))
	for i, s := range segs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, s.Offset, 10)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(s.Samples), 10)
	}
	return string(b)
}

// ParseSegments reads a MetaRecords value whose samples must add up to
// total.
func ParseSegments(v string, total int) ([]Segment, error) {
	var segs []Segment
	sum := 0
	for part := range strings.SplitSeq(v, ",") {
		o, n, ok := strings.Cut(part, ":")
		off, err1 := strconv.ParseInt(o, 10, 64)
		cnt, err2 := strconv.Atoi(n)
		if !ok || err1 != nil || err2 != nil || off < 0 || cnt < 0 {
			return nil, fmt.Errorf("%s metadata: %q is not offset:samples", MetaRecords, part)
		}
		segs, sum = append(segs, Segment{off, cnt}), sum+cnt
	}
	if sum != total {
		return nil, fmt.Errorf("%s metadata: %d samples listed, the message has %d", MetaRecords, sum, total)
	}
	return segs, nil
}
