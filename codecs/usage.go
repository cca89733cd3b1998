package codecs

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"hots/placement"
)

// UsageFields names the columns (CSV) or keys (JSON) of a usage sample, as
// upstream's connector.parameters do.
type UsageFields struct {
	Tick       string // tick_field, default "timestamp"
	Individual string // individual_field, default "container_id"
	Host       string // host_field, default "machine_id"
	Domain     string // domain_field; empty = no column (JSON still reads "domain")
	// Pinned is pinned_field, default "pinned": an optional column (CSV)
	// or key (JSON) saying that the container must not move. Absent =
	// no pins; values true/false, 1/0, yes/no (any case), empty = false.
	Pinned  string
	Metrics []string // default ["cpu"]
	// DefaultDomain is the domain of samples that name none.
	DefaultDomain string
}

// WithDefaults returns f with upstream's defaults in empty fields.
func (f UsageFields) WithDefaults() UsageFields {
	if f.Tick == "" {
		f.Tick = "timestamp"
	}
	if f.Individual == "" {
		f.Individual = "container_id"
	}
	if f.Host == "" {
		f.Host = "machine_id"
	}
	if f.Pinned == "" {
		f.Pinned = DefaultPinnedField
	}
	if len(f.Metrics) == 0 {
		f.Metrics = []string{"cpu"}
	}
	if f.DefaultDomain == "" {
		f.DefaultDomain = placement.DefaultDomain
	}
	return f
}

// DefaultPinnedField is the pinned column's name unless pinned_field says
// otherwise.
const DefaultPinnedField = "pinned"

// ParsePinned reads a pinned value: true/false, 1/0, yes/no in any case,
// surrounding spaces ignored, empty = false. ok is false for anything
// else.
func ParsePinned(s string) (pinned, ok bool) {
	s = trimSpace(s)
	switch len(s) {
	case 0:
		return false, true
	case 1:
		switch s[0] {
		case '1':
			return true, true
		case '0':
			return false, true
		}
	default:
		switch {
		case asciiFold(s, "true"), asciiFold(s, "yes"):
			return true, true
		case asciiFold(s, "false"), asciiFold(s, "no"):
			return false, true
		}
	}
	return false, false
}

// asciiFold: s is lower (lower-case ASCII) in any case of ASCII letters
// (strings.EqualFold would take Unicode look-alikes such as "yeſ").
func asciiFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

const pinnedReason = "pinned is not one of true/false, 1/0, yes/no (empty = false)"

// UsageHeader locates the configured columns of one CSV file by header
// name, so files with any column order (aw_05-03-21's value,host,
// container_id,time) read the same way.
type UsageHeader struct {
	Source    string
	Names     []string
	Tick      int
	Container int
	Host      int
	Domain    int // -1: no domain column
	Pinned    int // -1: no pinned column (nothing is pinned by the input)
	Metrics   []int
	fields    UsageFields
}

// NewUsageHeader checks that every configured column is in header.
func NewUsageHeader(source string, header []string, f UsageFields) (*UsageHeader, error) {
	f = f.WithDefaults()
	names := make([]string, len(header))
	ix := make(map[string]int, len(header))
	for i, n := range header {
		n = strings.TrimSpace(strings.TrimPrefix(n, "\ufeff"))
		names[i] = n
		if _, dup := ix[n]; !dup {
			ix[n] = i
		}
	}
	find := func(col string) (int, error) {
		i, ok := ix[col]
		if !ok {
			return 0, &MissingColumnError{Source: source, Column: col, Header: names}
		}
		return i, nil
	}
	h := &UsageHeader{Source: source, Names: names, Domain: -1, Pinned: -1, fields: f}
	var err error
	if h.Tick, err = find(f.Tick); err != nil {
		return nil, err
	}
	if h.Container, err = find(f.Individual); err != nil {
		return nil, err
	}
	if h.Host, err = find(f.Host); err != nil {
		return nil, err
	}
	if f.Domain != "" {
		if h.Domain, err = find(f.Domain); err != nil {
			return nil, err
		}
	}
	if i, ok := ix[f.Pinned]; ok { // optional: present = used
		h.Pinned = i
	}
	for _, m := range f.Metrics {
		i, err := find(m)
		if err != nil {
			return nil, err
		}
		h.Metrics = append(h.Metrics, i)
	}
	return h, nil
}

// Fields returns the effective field names.
func (h *UsageHeader) Fields() UsageFields { return h.fields }

func (h *UsageHeader) rowErr(line int64, fields []string, col int, reason string) *RowError {
	e := &RowError{Position: Position{Source: h.Source, Line: line}, Reason: reason, Raw: strings.Join(fields, ",")}
	if col >= 0 && col < len(h.Names) {
		e.Field = h.Names[col]
	}
	if col >= 0 && col < len(fields) {
		e.Value = fields[col]
	}
	return e
}

// CheckWidth refuses a record whose field count differs from the header's.
func (h *UsageHeader) CheckWidth(fields []string, line int64) error {
	if len(fields) != len(h.Names) {
		return h.rowErr(line, fields, -1, "has "+strconv.Itoa(len(fields))+" fields, header has "+strconv.Itoa(len(h.Names)))
	}
	return nil
}

// ParseTick reads the tick column of a record.
func (h *UsageHeader) ParseTick(fields []string, line int64) (int64, error) {
	if err := h.CheckWidth(fields, line); err != nil {
		return 0, err
	}
	t, err := strconv.ParseInt(strings.TrimSpace(fields[h.Tick]), 10, 64)
	if err != nil {
		return 0, h.rowErr(line, fields, h.Tick, "tick is not an integer")
	}
	if !TickInRange(t) {
		return 0, h.rowErr(line, fields, h.Tick, tickRangeReason)
	}
	return t, nil
}

// MaxTick bounds tick magnitudes. The engine adds tick_increment and
// cooldown_ticks (at most MaxTickSpan, config refuses more) to ticks: with
// both bounds the sums stay within int64, so a tick near 2^63 cannot wrap
// to a negative next-loop tick and make every tick a loop. Unix time in
// nanoseconds (about 1.8e18 today) is well inside.
const (
	MaxTick     = 1<<62 - 1
	MaxTickSpan = 1 << 62
)

const tickRangeReason = "tick is beyond ±(2^62-1) (tick arithmetic would overflow)"

// TickInRange reports whether t is within ±MaxTick.
func TickInRange(t int64) bool { return t >= -MaxTick && t <= MaxTick }

// DomainOf returns the record's domain (the default without a domain
// column or with an empty cell).
func (h *UsageHeader) DomainOf(fields []string) string {
	if h.Domain >= 0 && h.Domain < len(fields) && fields[h.Domain] != "" {
		return fields[h.Domain]
	}
	return h.fields.DefaultDomain
}

// Sample decodes one record. values must have len(Metrics) room; it lets
// a batch decoder carve every sample's values from one allocation.
func (h *UsageHeader) Sample(fields []string, line int64, values []float64) (placement.Sample, error) {
	tick, err := h.ParseTick(fields, line)
	if err != nil {
		return placement.Sample{}, err
	}
	s := placement.Sample{Domain: h.DomainOf(fields), Tick: tick, Container: fields[h.Container], Host: fields[h.Host], Values: values[:len(h.Metrics)]}
	if s.Container == "" {
		return placement.Sample{}, h.rowErr(line, fields, h.Container, "empty container id")
	}
	if s.Host == "" {
		return placement.Sample{}, h.rowErr(line, fields, h.Host, "empty host id")
	}
	for k, col := range h.Metrics {
		v, err := strconv.ParseFloat(strings.TrimSpace(fields[col]), 64)
		if reason := metricProblem(v, err); reason != "" {
			return placement.Sample{}, h.rowErr(line, fields, col, reason)
		}
		s.Values[k] = v
	}
	if h.Pinned >= 0 {
		p, ok := ParsePinned(fields[h.Pinned])
		if !ok {
			return placement.Sample{}, h.rowErr(line, fields, h.Pinned, pinnedReason)
		}
		s.Pinned = p
	}
	return s, nil
}

// MaxValue bounds usage values and capacities. Loads are summed over
// containers and ticks, divided by capacities and squared (variance,
// Σ(load/capacity)²): up to 1e18 all of that stays finite for any trace
// that fits in memory, beyond it a sum can overflow to +Inf and poison
// every figure after it. No real unit comes near it (aw_05-03-21 counts
// memory in bytes: 8.5e11).
const MaxValue = 1e18

// metricProblem says why a usage value is unusable ("" when it is fine):
// capacities and loads are sums, so NaN, infinities, negatives and values
// whose sums overflow would poison every figure computed from them.
func metricProblem(v float64, err error) string {
	switch {
	case err != nil:
		return "metric is not a number"
	case math.IsNaN(v):
		return "metric is NaN"
	case math.IsInf(v, 0):
		return "metric is infinite"
	case v < 0:
		return "metric is negative"
	case v > MaxValue:
		return "metric is larger than 1e18 (sums of such values overflow)"
	}
	return ""
}

// The byte-field fast path. The file connector and the decode stage see
// records as []byte views of a read buffer or of a message payload; these
// functions decode them without building strings. They accept exactly what
// the string functions above accept, with bit-identical values (the tests
// check it on a corpus and by fuzzing); when they refuse a record the
// caller runs the string function on it to get the RowError, so there is
// one source of truth for messages.

// TickOf is ParseTick for byte fields: ok is false when ParseTick would
// return an error.
func (h *UsageHeader) TickOf(fields [][]byte) (int64, bool) {
	if len(fields) != len(h.Names) {
		return 0, false
	}
	t, ok := parseInt(fields[h.Tick])
	return t, ok && TickInRange(t)
}

// DomainBytes is DomainOf for byte fields; nil means the default domain.
func (h *UsageHeader) DomainBytes(fields [][]byte) []byte {
	if h.Domain >= 0 && h.Domain < len(fields) && len(fields[h.Domain]) > 0 {
		return fields[h.Domain]
	}
	return nil
}

// AppendSample decodes a record given as byte fields, as Sample does, and
// appends the sample to w. It returns false, having
// written nothing, when Sample would refuse the record.
func (h *UsageHeader) AppendSample(w *SampleWriter, fields [][]byte) bool {
	if len(fields) != len(h.Names) {
		return false
	}
	tick, ok := parseInt(fields[h.Tick])
	c, host := fields[h.Container], fields[h.Host]
	if !ok || !TickInRange(tick) || len(c) == 0 || len(host) == 0 {
		return false
	}
	pinned := false
	if h.Pinned >= 0 {
		// The view never outlives the call (ParsePinned keeps nothing).
		var ok bool
		if pinned, ok = ParsePinned(view(fields[h.Pinned])); !ok {
			return false
		}
	}
	mark := len(w.buf)
	if d := h.DomainBytes(fields); d != nil {
		w.buf = appendBytes(w.buf, d)
	} else {
		w.buf = appendString(w.buf, h.fields.DefaultDomain)
	}
	w.buf = binary.AppendVarint(w.buf, tick)
	w.buf = appendBytes(w.buf, c)
	w.buf = appendBytes(w.buf, host)
	w.buf = append(w.buf, 0) // no trace host: the window sets it when a move applies
	w.buf = binary.AppendUvarint(w.buf, valuesHead(len(h.Metrics), pinned))
	for _, col := range h.Metrics {
		v, ok := parseFloat(fields[col])
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > MaxValue {
			w.buf = w.buf[:mark]
			return false
		}
		w.buf = binary.LittleEndian.AppendUint64(w.buf, math.Float64bits(v))
	}
	w.n++
	return true
}

// Strings copies byte fields into strings (for the slow paths: errors).
func Strings(fields [][]byte) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = string(f)
	}
	return out
}

// view is a string sharing b's bytes, for the strconv fallbacks below
// only: strconv does not retain its argument (its errors copy it), and b
// is not modified while the call runs, so the view never outlives b or
// sees it change.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// parseInt is strconv.ParseInt(strings.TrimSpace(b), 10, 64) == nil. The
// fast path takes up to 18 ASCII digits with an optional '-' (no overflow
// possible); anything else goes to strconv on a string view of b.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	d := b
	if neg {
		d = b[1:]
	}
	if n := len(d); n > 0 && n <= 18 {
		var v int64
		for _, c := range d {
			if c-'0' > 9 {
				goto slow
			}
			v = v*10 + int64(c-'0')
		}
		if neg {
			v = -v
		}
		return v, true
	}
slow:
	v, err := strconv.ParseInt(trimSpace(view(b)), 10, 64)
	return v, err == nil
}

// float64pow10 are the powers of ten a float64 holds exactly.
var float64pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseFloat is strconv.ParseFloat(strings.TrimSpace(b), 64) with err ==
// nil. The fast path takes plain decimals (digits, at most one '.', no
// sign or exponent) whose digits make an integer m < 2^53 with at most 22
// after the point: m and 10^k are exact float64s, so m / 10^k is the
// correctly rounded value, the one strconv returns (it takes the same
// exact path for such inputs). Anything else goes to strconv on a string
// view of b.
func parseFloat(b []byte) (float64, bool) {
	var m uint64
	digits, frac, dot := 0, 0, false
	for _, c := range b {
		switch {
		case c-'0' <= 9:
			if digits == 19 {
				goto slow
			}
			m = m*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
		case c == '.' && !dot:
			dot = true
		default:
			goto slow
		}
	}
	if digits == 0 || m >= 1<<53 || frac >= len(float64pow10) {
		goto slow
	}
	if frac == 0 {
		return float64(m), true
	}
	return float64(m) / float64pow10[frac], true
slow:
	v, err := strconv.ParseFloat(trimSpace(view(b)), 64)
	return v, err == nil
}

// trimSpace is strings.TrimSpace without its Unicode work when the ends
// are plain ASCII non-space bytes (the common case).
func trimSpace(s string) string {
	if len(s) > 0 && s[0] < utf8.RuneSelf && s[len(s)-1] < utf8.RuneSelf &&
		!asciiSpace(s[0]) && !asciiSpace(s[len(s)-1]) {
		return s
	}
	return strings.TrimSpace(s)
}

func asciiSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
