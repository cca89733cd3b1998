package codecs

import (
	"encoding/binary"
	"errors"
	"math"

	"hots/placement"
)

// Metadata keys and kinds of the messages between stages.
const (
	MetaKind      = "kind"
	MetaDomain    = "domain"
	MetaTick      = "tick"
	MetaSource    = "source"
	MetaFirstLine = "first_line"
	// Set by a Kafka connector so rejects can name the record: the message
	// key (the domain) and where the record was read.
	MetaKey       = "key"
	MetaPartition = "partition"
	MetaOffset    = "offset"

	KindRows      = "rows"      // RawBatch: CSV records of one tick, not yet validated
	KindJSON      = "json"      // one JSON usage record or upstream batch
	KindWatermark = "watermark" // every record of ticks ≤ tick has been sent
	KindSamples   = "samples"   // EncodeSamples
	KindTick      = "tick"      // one closed tick of one domain (EncodeSamples)
	KindDecision  = "decision"  // JSON placement.Decision
	KindMove      = "move"      // EncodeMove
)

// RawRow is one CSV record as the file connector split it. Fields are in
// the header's order; TraceHost is set when the connector re-attributed the
// record to the container's new host (Fields then hold the new host).
type RawRow struct {
	Line      int64
	Fields    []string
	TraceHost string
}

// RawBatch is up to a few thousand records of one tick of one file. It is
// the file connector's message payload: records are split once, in the
// connector (which needs tick, container and host anyway), and validated in
// the decode stage.
type RawBatch struct {
	Source string
	Header []string
	Rows   []RawRow
}

// errShort is what every malformed binary payload gets: these payloads
// only ever come from our own connector, so the detail is not worth more.
var errShort = errors.New("truncated or malformed binary batch")

// MarshalBinary: source, header, then rows as (line, trace host, fields),
// strings length-prefixed with uvarints.
func (b *RawBatch) MarshalBinary() ([]byte, error) {
	n := 16 + len(b.Source)
	for _, h := range b.Header {
		n += len(h) + 2
	}
	for _, r := range b.Rows {
		n += 12 + len(r.TraceHost)
		for _, f := range r.Fields {
			n += len(f) + 1
		}
	}
	out := make([]byte, 0, n)
	out = appendString(out, b.Source)
	out = binary.AppendUvarint(out, uint64(len(b.Header)))
	for _, h := range b.Header {
		out = appendString(out, h)
	}
	out = binary.AppendUvarint(out, uint64(len(b.Rows)))
	for _, r := range b.Rows {
		out = binary.AppendVarint(out, r.Line)
		out = appendString(out, r.TraceHost)
		out = binary.AppendUvarint(out, uint64(len(r.Fields)))
		for _, f := range r.Fields {
			out = appendString(out, f)
		}
	}
	return out, nil
}

// UnmarshalBinary is the inverse of MarshalBinary. All field strings of a
// batch share one backing allocation.
func (b *RawBatch) UnmarshalBinary(data []byte) error {
	r := reader{buf: data, all: string(data)}
	b.Source = r.str()
	nh := r.count()
	b.Header = make([]string, 0, nh)
	for i := 0; i < nh && r.err == nil; i++ {
		b.Header = append(b.Header, r.str())
	}
	nr := r.count()
	b.Rows = make([]RawRow, 0, nr)
	for i := 0; i < nr && r.err == nil; i++ {
		row := RawRow{Line: r.varint(), TraceHost: r.str()}
		nf := r.count()
		row.Fields = make([]string, 0, nf)
		for j := 0; j < nf && r.err == nil; j++ {
			row.Fields = append(row.Fields, r.str())
		}
		b.Rows = append(b.Rows, row)
	}
	if r.err == nil && r.off != len(data) {
		r.err = errShort
	}
	return r.err
}

// EncodeSamples is the payload of samples and closed-tick messages: a
// compact binary form (JSON would cost more than the whole window stage).
func EncodeSamples(ss []placement.Sample) []byte {
	n := 4
	for i := range ss {
		n += 16 + len(ss[i].Domain) + len(ss[i].Container) + len(ss[i].Host) + len(ss[i].TraceHost) + 8*len(ss[i].Values)
	}
	out := make([]byte, 0, n)
	out = binary.AppendUvarint(out, uint64(len(ss)))
	for i := range ss {
		s := &ss[i]
		out = appendString(out, s.Domain)
		out = binary.AppendVarint(out, s.Tick)
		out = appendString(out, s.Container)
		out = appendString(out, s.Host)
		out = appendString(out, s.TraceHost)
		out = binary.AppendUvarint(out, uint64(len(s.Values)))
		for _, v := range s.Values {
			out = binary.LittleEndian.AppendUint64(out, math.Float64bits(v))
		}
	}
	return out
}

// DecodeSamples is the inverse of EncodeSamples.
func DecodeSamples(data []byte) ([]placement.Sample, error) {
	r := reader{buf: data, all: string(data)}
	n := r.count()
	out := make([]placement.Sample, 0, n)
	var vals []float64
	for i := 0; i < n && r.err == nil; i++ {
		s := placement.Sample{Domain: r.str(), Tick: r.varint(), Container: r.str(), Host: r.str(), TraceHost: r.str()}
		nv := r.count()
		if nv > len(vals) {
			vals = make([]float64, max(nv, 1024))
		}
		s.Values, vals = vals[:nv:nv], vals[nv:]
		for j := range nv {
			s.Values[j] = math.Float64frombits(r.u64())
		}
		out = append(out, s)
	}
	if r.err == nil && r.off != len(data) {
		r.err = errShort
	}
	return out, r.err
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reader decodes the binary payloads; after the first error every read
// returns zero values and err stays set, so callers check once.
type reader struct {
	buf []byte
	all string // the same bytes as one string, so str() slices instead of copying
	off int
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf[r.off:])
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.off += n
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.buf[r.off:])
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.off += n
	return v
}

// count reads a length and checks it against the bytes left, so a corrupt
// payload cannot make us allocate gigabytes.
func (r *reader) count() int {
	v := r.uvarint()
	if v > uint64(len(r.buf)-r.off) {
		r.err = errShort
		return 0
	}
	return int(v)
}

func (r *reader) str() string {
	n := r.count()
	if r.err != nil {
		return ""
	}
	s := r.all[r.off : r.off+n]
	r.off += n
	return s
}

func (r *reader) u64() uint64 {
	if r.err != nil || len(r.buf)-r.off < 8 {
		r.err = errShort
		return 0
	}
	v := binary.LittleEndian.Uint64(r.buf[r.off:])
	r.off += 8
	return v
}
