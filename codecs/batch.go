package codecs

import (
	"encoding/binary"
	"errors"
	"hash/maphash"
	"math"
	"unsafe"

	"hots/placement"
)

// Metadata keys and kinds of the messages between stages. This is the
// one statement of the contract between them; each stage refuses a kind
// it is not listed for with a permanent error (poison, never dropped).
//
//	stage      reads                                         writes
//	decode     rows, watermark, json, records (or no kind)   samples, watermark
//	window     samples, watermark                            tick (one per closed domain tick)
//	placement  tick                                          decision (only when it has moves)
//	publish    decision                                      move (one per move, to the sink)
//
// A source sets MetaSource (file or topic) and, for a log, MetaPartition,
// MetaOffset and MetaKey (the domain); row batches carry MetaFirstLine; a
// watermark carries MetaTick. Stages pass MetaDomain, MetaTick and
// MetaKey on.
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
	// MetaField names the column or field of a rejected record.
	MetaField = "field"

	KindRows      = "rows"      // RawBatch: CSV records of one tick, not yet validated
	KindJSON      = "json"      // one JSON usage record or upstream batch
	KindWatermark = "watermark" // every record of ticks ≤ tick has been sent
	KindSamples   = "samples"   // EncodeSamples
	KindTick      = "tick"      // one closed tick of one domain (EncodeSamples)
	KindDecision  = "decision"  // JSON placement.Decision
	KindMove      = "move"      // EncodeMove
	KindReject    = "reject"    // a record the decoder refused, for the poison sink (payload: the record)
)

// RawRow is one CSV record as the file connector split it. Fields are in
// the header's order.
type RawRow struct {
	Line   int64
	Fields []string
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

// MarshalBinary: source, header, the row count (4 bytes, little endian, so
// a RowBatchWriter can fill it in at the end), then rows as (line,
// fields), strings length-prefixed with uvarints.
func (b *RawBatch) MarshalBinary() ([]byte, error) {
	n := 16 + len(b.Source)
	for _, h := range b.Header {
		n += len(h) + 2
	}
	for _, r := range b.Rows {
		n += 12
		for _, f := range r.Fields {
			n += len(f) + 1
		}
	}
	out := appendBatchHead(make([]byte, 0, n), b.Source, b.Header)
	binary.LittleEndian.PutUint32(out[len(out)-4:], uint32(len(b.Rows)))
	for _, r := range b.Rows {
		out = binary.AppendVarint(out, r.Line)
		out = binary.AppendUvarint(out, uint64(len(r.Fields)))
		for _, f := range r.Fields {
			out = appendString(out, f)
		}
	}
	return out, nil
}

func appendBatchHead(out []byte, source string, header []string) []byte {
	out = appendString(out, source)
	out = binary.AppendUvarint(out, uint64(len(header)))
	for _, h := range header {
		out = appendString(out, h)
	}
	return append(out, 0, 0, 0, 0) // row count
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
	nr := r.rowCount()
	b.Rows = make([]RawRow, 0, nr)
	for i := 0; i < nr && r.err == nil; i++ {
		row := RawRow{Line: r.varint()}
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

// RowBatchWriter builds a RawBatch's binary form row by row from byte
// fields, without making strings (the file connector's hot path). The
// result is identical to MarshalBinary of the same rows.
type RowBatchWriter struct {
	buf     []byte
	rows    int
	countAt int
}

// Reset starts a batch; the writer keeps no reference to the previous
// payload (Bytes handed it over). sizeHint is the expected payload size.
func (w *RowBatchWriter) Reset(source string, header []string, sizeHint int) {
	w.buf = appendBatchHead(make([]byte, 0, max(sizeHint, 64)), source, header)
	w.rows, w.countAt = 0, len(w.buf)-4
}

// Rows is the number of rows appended since Reset.
func (w *RowBatchWriter) Rows() int { return w.rows }

// Len is the payload size so far.
func (w *RowBatchWriter) Len() int { return len(w.buf) }

// AppendRow adds one record.
func (w *RowBatchWriter) AppendRow(line int64, fields [][]byte) {
	w.buf = binary.AppendVarint(w.buf, line)
	w.buf = binary.AppendUvarint(w.buf, uint64(len(fields)))
	for _, f := range fields {
		w.buf = appendBytes(w.buf, f)
	}
	w.rows++
}

// Bytes completes the batch and hands its payload over.
func (w *RowBatchWriter) Bytes() []byte {
	out := w.buf
	binary.LittleEndian.PutUint32(out[w.countAt:], uint32(w.rows))
	w.buf, w.rows = nil, 0
	return out
}

// RowBatchReader reads a RawBatch payload row by row without copying:
// every []byte it returns is a view of the payload, valid as long as the
// payload is.
type RowBatchReader struct {
	r      reader
	Source []byte
	Header [][]byte
	rows   int
	fields [][]byte
}

// Reset reads the batch head.
func (rd *RowBatchReader) Reset(data []byte) error {
	rd.r = reader{buf: data}
	rd.Source = rd.r.bytes()
	nh := rd.r.count()
	rd.Header = rd.Header[:0]
	for i := 0; i < nh && rd.r.err == nil; i++ {
		rd.Header = append(rd.Header, rd.r.bytes())
	}
	rd.rows = rd.r.rowCount()
	return rd.r.err
}

// Len is the number of rows the head announces.
func (rd *RowBatchReader) Len() int { return rd.rows }

// Next returns the next row; fields is reused by the following call. ok is
// false at the end or on a malformed payload (see Err).
func (rd *RowBatchReader) Next() (line int64, fields [][]byte, ok bool) {
	if rd.rows == 0 || rd.r.err != nil {
		if rd.r.err == nil && rd.r.off != len(rd.r.buf) {
			rd.r.err = errShort
		}
		return 0, nil, false
	}
	rd.rows--
	line = rd.r.varint()
	nf := rd.r.count()
	rd.fields = rd.fields[:0]
	for j := 0; j < nf && rd.r.err == nil; j++ {
		rd.fields = append(rd.fields, rd.r.bytes())
	}
	if rd.r.err != nil {
		return 0, nil, false
	}
	return line, rd.fields, true
}

// Err is the payload's problem, if any, once Next returned false.
func (rd *RowBatchReader) Err() error { return rd.r.err }

// EncodeSamples is the payload of samples and closed-tick messages: a
// compact binary form (JSON would cost more than the whole window stage).
// The payload is a 4-byte sample count, then per sample domain, tick
// (varint), container, host, trace host (uvarint-length strings), a head
// (uvarint: the value count times 2, plus 1 when the sample is pinned, so
// the mark costs no byte) and the values (8 bytes each, little endian). Payloads never leave the
// process, so the layout may change between builds.
func EncodeSamples(ss []placement.Sample) []byte {
	n := 4
	for i := range ss {
		n += 16 + len(ss[i].Domain) + len(ss[i].Container) + len(ss[i].Host) + len(ss[i].TraceHost) + 8*len(ss[i].Values)
	}
	var w SampleWriter
	w.Reset(n)
	for i := range ss {
		w.Append(&ss[i])
	}
	return w.Bytes()
}

// Append adds one sample.
func (w *SampleWriter) Append(s *placement.Sample) {
	if w.buf == nil {
		w.Reset(0)
	}
	w.buf = appendString(w.buf, s.Domain)
	w.buf = binary.AppendVarint(w.buf, s.Tick)
	w.buf = appendString(w.buf, s.Container)
	w.buf = appendString(w.buf, s.Host)
	w.buf = appendString(w.buf, s.TraceHost)
	w.appendValues(s.Values, s.Pinned)
}

// valuesHead is a sample's head: its value count and its pinned mark.
func valuesHead(nv int, pinned bool) uint64 {
	h := uint64(nv) << 1
	if pinned {
		h |= 1
	}
	return h
}

// valuesHead reads a sample's head, checking the count against the bytes
// left, as count does.
func (r *reader) valuesHead() (nv int, pinned bool) {
	h := r.uvarint()
	if h>>1 > uint64(len(r.buf)-r.off) {
		r.err = errShort
		return 0, false
	}
	return int(h >> 1), h&1 != 0
}

// SampleWriter builds an EncodeSamples payload sample by sample.
type SampleWriter struct {
	buf []byte
	n   int
}

// Reset starts a payload of about sizeHint bytes.
func (w *SampleWriter) Reset(sizeHint int) {
	w.buf = append(make([]byte, 0, max(sizeHint, 4)), 0, 0, 0, 0)
	w.n = 0
}

// Len is the number of samples written since Reset.
func (w *SampleWriter) Len() int { return w.n }

func (w *SampleWriter) appendValues(vs []float64, pinned bool) {
	w.buf = binary.AppendUvarint(w.buf, valuesHead(len(vs), pinned))
	for _, v := range vs {
		w.buf = binary.LittleEndian.AppendUint64(w.buf, math.Float64bits(v))
	}
	w.n++
}

// Bytes completes the payload and hands it over.
func (w *SampleWriter) Bytes() []byte {
	if w.buf == nil {
		w.Reset(0)
	}
	binary.LittleEndian.PutUint32(w.buf, uint32(w.n))
	out := w.buf
	w.buf, w.n = nil, 0
	return out
}

// DecodeSamples is the inverse of EncodeSamples.
func DecodeSamples(data []byte) ([]placement.Sample, error) {
	r := reader{buf: data, all: string(data)}
	n := r.rowCount()
	out := make([]placement.Sample, 0, n)
	var vals []float64
	for i := 0; i < n && r.err == nil; i++ {
		s := placement.Sample{Domain: r.str(), Tick: r.varint(), Container: r.str(), Host: r.str(), TraceHost: r.str()}
		nv, pinned := r.valuesHead()
		s.Pinned = pinned
		if nv > len(vals) {
			vals = make([]float64, max(nv, min(1024, nv*(n-i))))
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
	if r.off < len(r.buf) && r.buf[r.off] < 0x80 { // one byte: most lengths
		r.off++
		return uint64(r.buf[r.off-1])
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

func appendBytes(b []byte, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// rowCount reads a 4-byte count and checks it against the bytes left
// (every row or sample takes at least two bytes).
func (r *reader) rowCount() int {
	if r.err != nil || len(r.buf)-r.off < 4 {
		r.err = errShort
		return 0
	}
	v := binary.LittleEndian.Uint32(r.buf[r.off:])
	r.off += 4
	if uint64(v) > uint64(len(r.buf)-r.off) {
		r.err = errShort
		return 0
	}
	return int(v)
}

func (r *reader) bytes() []byte {
	n := r.count()
	if r.err != nil {
		return nil
	}
	b := r.buf[r.off : r.off+n : r.off+n]
	r.off += n
	return b
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

// Symbols interns names (container or host ids) as dense int32 ids, for
// the stages that key state by name. Nothing in it holds a pointer per
// name: names are copied into append-only chunks and the hash table is a
// slice of integers, so the garbage collector has nothing to scan and a new
// name costs no allocation of its own. A slot holds a hash tag, the
// length and the first 8 bytes of its name, so a lookup of a name of up to
// 8 bytes touches one slot and nothing else (tables of tens of thousands
// of names do not fit in cache: each extra memory access is a miss). The
// zero value is ready to use; not safe for concurrent use.
type Symbols struct {
	seed   maphash.Seed
	slots  []symSlot // len is a power of two
	spans  []symSpan
	chunks [][]byte
	succ   []symSlot // id -> the name interned after it last time (InternAfter)
}

// symSlot: meta is tag (24 bits) | length (8 bits, 255 for longer) | id+1
// (32 bits), 0 when empty; pre is the name's first 8 bytes, zero-padded.
type symSlot struct {
	meta uint64
	pre  uint64
}

type symSpan struct {
	chunk int32
	off   uint32
	n     uint32
}

const symChunk = 64 << 10

// Len is the number of names interned.
func (t *Symbols) Len() int { return len(t.spans) }

// Name returns the name of id. The string shares the table's storage,
// which is never modified once written, so it may be kept.
func (t *Symbols) Name(id int32) string {
	sp := t.spans[id]
	c := t.chunks[sp.chunk]
	return unsafe.String(unsafe.SliceData(c[sp.off:]), sp.n)
}

// LookupBytes returns b's id, if b was interned.
func (t *Symbols) LookupBytes(b []byte) (int32, bool) {
	if len(t.slots) == 0 {
		return -1, false
	}
	id, _ := t.find(t.hashBytes(b), unsafe.String(unsafe.SliceData(b), len(b)))
	return id, id >= 0
}

// InternBytes returns b's id, interning a copy of b if it is new.
func (t *Symbols) InternBytes(b []byte) int32 {
	// The view never outlives the call: a new name is copied.
	return t.intern(t.hashBytes(b), unsafe.String(unsafe.SliceData(b), len(b)))
}

// InternAfter is Intern for names that tend to come in the same order
// (a trace lists a tick's containers in much the same order every tick):
// it first tries the name that followed prev (an id, or -1) last time,
// which costs no hash and no memory access beyond prev's own entry.
func (t *Symbols) InternAfter(prev int32, s string) int32 {
	if prev >= 0 {
		meta, pre := symKey(0, s)
		if sc := t.succ[prev]; sc.meta>>32 == meta>>32 && sc.pre == pre && sc.meta != 0 {
			if id := int32(uint32(sc.meta) - 1); len(s) <= 8 || t.Name(id) == s {
				return id
			}
		}
	}
	id := t.Intern(s)
	if prev >= 0 {
		meta, pre := symKey(0, s)
		t.succ[prev] = symSlot{meta: meta | uint64(uint32(id)+1), pre: pre}
	}
	return id
}

// InternBytesAfter is InternAfter for a name given as bytes.
func (t *Symbols) InternBytesAfter(prev int32, b []byte) int32 {
	// The view never outlives the call: a new name is copied.
	return t.InternAfter(prev, unsafe.String(unsafe.SliceData(b), len(b)))
}

// Intern returns s's id, interning a copy of s if it is new.
func (t *Symbols) Intern(s string) int32 {
	if len(t.slots) == 0 {
		t.seed = maphash.MakeSeed()
	}
	return t.intern(maphash.String(t.seed, s), s)
}

func (t *Symbols) hashBytes(b []byte) uint64 {
	if len(t.slots) == 0 {
		t.seed = maphash.MakeSeed()
	}
	return maphash.Bytes(t.seed, b)
}

// symKey is what a slot holds of a name, without the id.
func symKey(h uint64, s string) (meta, pre uint64) {
	n := min(len(s), 255)
	var p [8]byte
	copy(p[:], s)
	return h>>40<<40 | uint64(n)<<32, binary.LittleEndian.Uint64(p[:])
}

// find returns the id of s (or -1) and the slot where it is or would go.
func (t *Symbols) find(h uint64, s string) (int32, int) {
	mask := len(t.slots) - 1
	key, pre := symKey(h, s)
	for i := int(h) & mask; ; i = (i + 1) & mask {
		sl := &t.slots[i]
		if sl.meta == 0 {
			return -1, i
		}
		if sl.meta>>32<<32 == key && sl.pre == pre {
			id := int32(uint32(sl.meta) - 1)
			if len(s) <= 8 || t.Name(id) == s {
				return id, i
			}
		}
	}
}

func (t *Symbols) intern(h uint64, s string) int32 {
	if len(t.slots) == 0 {
		t.slots = make([]symSlot, 64)
	}
	id, slot := t.find(h, s)
	if id >= 0 {
		return id
	}
	id = int32(len(t.spans))
	key, pre := symKey(h, s)
	t.slots[slot] = symSlot{meta: key | uint64(uint32(id)+1), pre: pre}
	t.spans = append(t.spans, t.store(s))
	t.succ = append(t.succ, symSlot{})
	if 3*len(t.spans) > 2*len(t.slots) { // keep the load under two thirds
		t.grow()
	}
	return id
}

// store copies s into the current chunk (a new one when it is full; a
// name longer than a chunk gets its own).
func (t *Symbols) store(s string) symSpan {
	n := len(t.chunks)
	if n == 0 || cap(t.chunks[n-1])-len(t.chunks[n-1]) < len(s) {
		t.chunks = append(t.chunks, make([]byte, 0, max(symChunk, len(s))))
		n++
	}
	c := t.chunks[n-1]
	off := len(c)
	t.chunks[n-1] = append(c, s...)
	return symSpan{chunk: int32(n - 1), off: uint32(off), n: uint32(len(s))}
}

// grow doubles the table, hashing the names again (in id order, so the
// names are read sequentially) rather than keeping 8 bytes per name.
func (t *Symbols) grow() {
	t.slots = make([]symSlot, 2*len(t.slots))
	mask := len(t.slots) - 1
	for id := range t.spans {
		name := t.Name(int32(id))
		h := maphash.String(t.seed, name)
		i := int(h) & mask
		for t.slots[i].meta != 0 {
			i = (i + 1) & mask
		}
		key, pre := symKey(h, name)
		t.slots[i] = symSlot{meta: key | uint64(uint32(id)+1), pre: pre}
	}
}

// SampleReader reads an EncodeSamples payload one sample at a time, for a
// stage that copies what it keeps (the window interns every name). The
// strings it sets are views of the payload: valid only while the payload is
// not modified, and not to be retained; Values come from slabs it allocates
// and may be retained.
type SampleReader struct {
	r     reader
	n     int
	vals  []float64
	reuse bool
	slab  []float64 // ResetReuse's
}

// Reset starts reading data.
func (sr *SampleReader) Reset(data []byte) error {
	sr.r = reader{buf: data}
	sr.n = sr.r.rowCount()
	sr.vals, sr.reuse = nil, false
	return sr.r.err
}

// ResetReuse is Reset for a caller that copies the values it keeps: they
// are carved from one buffer that the next ResetReuse overwrites.
func (sr *SampleReader) ResetReuse(data []byte) error {
	err := sr.Reset(data)
	sr.reuse = true
	sr.vals = sr.slab[:cap(sr.slab)]
	return err
}

// Len is the number of samples not read yet.
func (sr *SampleReader) Len() int { return sr.n }

// Next reads the next sample into s; false at the end or on a malformed
// payload (see Err).
func (sr *SampleReader) Next(s *placement.Sample) bool {
	r := &sr.r
	if sr.n == 0 || r.err != nil {
		if r.err == nil && r.off != len(r.buf) {
			r.err = errShort
		}
		return false
	}
	s.Domain = r.view()
	s.Tick = r.varint()
	s.Container, s.Host, s.TraceHost = r.view(), r.view(), r.view()
	nv, pinned := r.valuesHead()
	s.Pinned = pinned
	if r.err != nil || len(r.buf)-r.off < 8*nv {
		r.err = errShort
		return false
	}
	if nv > len(sr.vals) {
		if sr.reuse {
			sr.slab = make([]float64, nv*sr.n)
			sr.vals = sr.slab
		} else {
			sr.vals = make([]float64, max(nv, min(1024, nv*sr.n)))
		}
	}
	s.Values, sr.vals = sr.vals[:nv:nv], sr.vals[nv:]
	for j := range nv {
		s.Values[j] = math.Float64frombits(binary.LittleEndian.Uint64(r.buf[r.off:]))
		r.off += 8
	}
	sr.n--
	return true
}

// Err is the payload's problem, if any, once Next returned false.
func (sr *SampleReader) Err() error { return sr.r.err }

// view is str without the copy: a string sharing the payload's bytes.
func (r *reader) view() string {
	b := r.bytes()
	return unsafe.String(unsafe.SliceData(b), len(b))
}
