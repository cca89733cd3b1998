package codecs

import (
	"encoding/binary"
	"fmt"
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
