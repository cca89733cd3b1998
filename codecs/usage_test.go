package codecs

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"hots/placement"
)

func TestNewUsageHeaderLocatesColumnsByName(t *testing.T) {
	tests := []struct {
		name    string
		header  []string
		fields  UsageFields
		want    [3]int // tick, container, host
		metrics []int
		missing string
	}{
		{"upstream order", []string{"timestamp", "container_id", "machine_id", "cpu"}, UsageFields{}, [3]int{0, 1, 2}, []int{3}, ""},
		{"aw order", []string{"value", "host", "container_id", "time"},
			UsageFields{Tick: "time", Host: "host", Metrics: []string{"value"}}, [3]int{3, 2, 1}, []int{0}, ""},
		{"two metrics, BOM", []string{"\ufefftimestamp", "container_id", "machine_id", "cpu", "mem"},
			UsageFields{Metrics: []string{"mem", "cpu"}}, [3]int{0, 1, 2}, []int{4, 3}, ""},
		{"missing metric", []string{"timestamp", "container_id", "machine_id", "cpu"},
			UsageFields{Metrics: []string{"cpu", "mem"}}, [3]int{}, nil, "mem"},
		{"missing tick", []string{"time", "container_id", "machine_id", "cpu"}, UsageFields{}, [3]int{}, nil, "timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewUsageHeader("f.csv", tt.header, tt.fields)
			if tt.missing != "" {
				var mc *MissingColumnError
				if !errors.As(err, &mc) || mc.Column != tt.missing || mc.Source != "f.csv" {
					t.Fatalf("err = %v, want missing column %q in f.csv", err, tt.missing)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := [3]int{h.Tick, h.Container, h.Host}; got != tt.want {
				t.Errorf("columns = %v, want %v", got, tt.want)
			}
			if len(h.Metrics) != len(tt.metrics) {
				t.Fatalf("metrics = %v, want %v", h.Metrics, tt.metrics)
			}
			for i := range h.Metrics {
				if h.Metrics[i] != tt.metrics[i] {
					t.Errorf("metrics = %v, want %v", h.Metrics, tt.metrics)
				}
			}
		})
	}
}

func TestUsageHeaderSample(t *testing.T) {
	h, err := NewUsageHeader("u.csv", []string{"timestamp", "container_id", "machine_id", "cpu", "mem"}, UsageFields{Metrics: []string{"cpu", "mem"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		row    string
		want   placement.Sample
		field  string
		reason string
	}{
		{"3,c_1,n_1,1.5,2", placement.Sample{Domain: "default", Tick: 3, Container: "c_1", Host: "n_1", Values: []float64{1.5, 2}}, "", ""},
		{"3,c_1,n_1, 0 ,0", placement.Sample{Domain: "default", Tick: 3, Container: "c_1", Host: "n_1", Values: []float64{0, 0}}, "", ""},
		{"3.5,c_1,n_1,1,2", placement.Sample{}, "timestamp", "tick is not an integer"},
		{"x,c_1,n_1,1,2", placement.Sample{}, "timestamp", "tick is not an integer"},
		{"3,,n_1,1,2", placement.Sample{}, "container_id", "empty container id"},
		{"3,c_1,,1,2", placement.Sample{}, "machine_id", "empty host id"},
		{"3,c_1,n_1,abc,2", placement.Sample{}, "cpu", "metric is not a number"},
		{"3,c_1,n_1,1,NaN", placement.Sample{}, "mem", "metric is NaN"},
		{"3,c_1,n_1,Inf,1", placement.Sample{}, "cpu", "metric is infinite"},
		{"3,c_1,n_1,1e999,1", placement.Sample{}, "cpu", "metric is not a number"},
		{"3,c_1,n_1,-0.5,1", placement.Sample{}, "cpu", "metric is negative"},
		{"3,c_1,n_1,1", placement.Sample{}, "", "has 4 fields, header has 5"},
		// Sums and tick arithmetic must not overflow (issue 10).
		{"3,c_1,n_1,1e19,1", placement.Sample{}, "cpu", "metric is larger than 1e18 (sums of such values overflow)"},
		{"3,c_1,n_1,1e18,1", placement.Sample{Domain: "default", Tick: 3, Container: "c_1", Host: "n_1", Values: []float64{1e18, 1}}, "", ""},
		{"9223372036854775807,c_1,n_1,1,1", placement.Sample{}, "timestamp", "tick is beyond ±(2^62-1) (tick arithmetic would overflow)"},
		{"-4611686018427387904,c_1,n_1,1,1", placement.Sample{}, "timestamp", "tick is beyond ±(2^62-1) (tick arithmetic would overflow)"},
		{"4611686018427387903,c_1,n_1,1,1", placement.Sample{Domain: "default", Tick: 1<<62 - 1, Container: "c_1", Host: "n_1", Values: []float64{1, 1}}, "", ""},
		// Ids are their bytes: not trimmed, not required to be UTF-8.
		{"3, c_1 ,n\xff,1,2", placement.Sample{Domain: "default", Tick: 3, Container: " c_1 ", Host: "n\xff", Values: []float64{1, 2}}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.row, func(t *testing.T) {
			got, err := h.Sample(strings.Split(tt.row, ","), 7, make([]float64, 2))
			checkFastSample(t, h, tt.row, got, err)
			if tt.reason != "" {
				var re *RowError
				if !errors.As(err, &re) {
					t.Fatalf("err = %v, want a RowError", err)
				}
				if re.Source != "u.csv" || re.Line != 7 || re.Field != tt.field || re.Reason != tt.reason || re.Raw != tt.row {
					t.Errorf("err = %+v, want u.csv:7 field %q reason %q raw %q", re, tt.field, tt.reason, tt.row)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Domain != tt.want.Domain || got.Tick != tt.want.Tick || got.Container != tt.want.Container ||
				got.Host != tt.want.Host || got.Values[0] != tt.want.Values[0] || got.Values[1] != tt.want.Values[1] {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRowErrorMessageNamesThePlace(t *testing.T) {
	e := &RowError{Position: Position{Source: "a.csv", Line: 12}, Field: "cpu", Value: "x", Reason: "metric is not a number"}
	if got, want := e.Error(), `a.csv:12: field "cpu": value "x": metric is not a number`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	k := &RowError{Position: Position{Source: "usage", Partition: 2, Offset: 40}, Field: "cpu", Reason: "missing metric"}
	if got, want := k.Error(), `usage[2]@40: field "cpu": missing metric`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func FuzzUsageRow(f *testing.F) {
	for _, s := range []string{"3,c_1,n_1,1.5", "x,,,", "1,a,b,NaN", "-1,a,b,-0", "1,a,b,1e400", ",,,,,", "9223372036854775808,a,b,1"} {
		f.Add(s)
	}
	h, err := NewUsageHeader("f", []string{"timestamp", "container_id", "machine_id", "cpu"}, UsageFields{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, row string) {
		s, err := h.Sample(strings.Split(row, ","), 2, make([]float64, 1))
		if err == nil && (s.Container == "" || s.Host == "" || s.Values[0] < 0 || s.Values[0] != s.Values[0]) {
			t.Fatalf("accepted a bad row %q: %+v", row, s)
		}
		checkFastSample(t, h, row, s, err)
	})
}

// checkFastSample checks that the byte-field path (AppendSample) accepts
// row exactly when Sample does, with the same sample bit for bit.
func checkFastSample(t *testing.T, h *UsageHeader, row string, s placement.Sample, err error) {
	t.Helper()
	var fields [][]byte
	for _, f := range strings.Split(row, ",") {
		fields = append(fields, []byte(f))
	}
	var w SampleWriter
	w.Reset(0)
	ok := h.AppendSample(&w, fields)
	if ok != (err == nil) {
		t.Fatalf("row %q: fast path ok=%v, Sample err=%v", row, ok, err)
	}
	got, derr := DecodeSamples(w.Bytes())
	if derr != nil {
		t.Fatalf("row %q: %v", row, derr)
	}
	if !ok {
		if len(got) != 0 {
			t.Fatalf("row %q: refused but wrote %+v", row, got)
		}
		return
	}
	if len(got) != 1 || !sameSample(got[0], s) {
		t.Fatalf("row %q: fast %+v, Sample %+v", row, got, s)
	}
}

func sameSample(a, b placement.Sample) bool {
	if a.Domain != b.Domain || a.Tick != b.Tick || a.Container != b.Container || a.Host != b.Host || a.TraceHost != b.TraceHost ||
		a.Pinned != b.Pinned || len(a.Values) != len(b.Values) {
		return false
	}
	for i := range a.Values {
		if math.Float64bits(a.Values[i]) != math.Float64bits(b.Values[i]) {
			return false
		}
	}
	return true
}

var numberCorpus = []string{"", " ", "0", "1", "-1", "-0", "+5", "007", " 5", "5 ", "\t5\r", "\u00a05", "5\u0085",
	"1.5", "0.05", ".5", "5.", ".", "..", "1.2.3", "-", "+", "1e3", "1E-3", "NaN", "nan", "Inf", "-Inf", "infinity",
	"0x10", "0x1p-2", "1_000", "0b101", "٣", "12a", "a12",
	"9007199254740991", "9007199254740992", "9007199254740993", "9007199254740992.5", "900719925474099.25",
	"123456789012345678", "1234567890123456789", "12345678901234567890", "-123456789012345678",
	"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
	"0.1", "0.2", "0.3", "0.1234567890123456789", "0.0000000000000000000001", "0.00000000000000000000001",
	"1.7976931348623157e308", "1e400", "4.9e-324", "1e-400", "123456.7890123", "00000000000000000000.5",
	"0.30000000000000004", "1000000000000000000000", "100", "99.99", "3.14159265358979"}

func checkNumber(t *testing.T, s string) {
	t.Helper()
	wi, werr := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if gi, ok := parseInt([]byte(s)); ok != (werr == nil) || (ok && gi != wi) {
		t.Errorf("parseInt(%q) = %d %v, strconv %d %v", s, gi, ok, wi, werr)
	}
	wf, ferr := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if gf, ok := parseFloat([]byte(s)); ok != (ferr == nil) || (ok && math.Float64bits(gf) != math.Float64bits(wf)) {
		t.Errorf("parseFloat(%q) = %v %v, strconv %v %v", s, gf, ok, wf, ferr)
	}
}

func TestFastNumberParsersMatchStrconv(t *testing.T) {
	for _, s := range numberCorpus {
		checkNumber(t, s)
	}
	// Random plain decimals around the fast path's limits (2^53, 19 and
	// 22 digits), with the point anywhere.
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		n := 1 + r.IntN(24)
		b := make([]byte, 0, n+1)
		for range n {
			b = append(b, byte('0'+r.IntN(10)))
		}
		if r.IntN(4) > 0 {
			p := r.IntN(n + 1)
			b = append(b[:p], append([]byte{'.'}, b[p:]...)...)
		}
		checkNumber(t, string(b))
		if t.Failed() {
			return
		}
	}
}

func FuzzFastNumberParsers(f *testing.F) {
	for _, s := range numberCorpus {
		f.Add(s)
	}
	f.Fuzz(checkNumber)
}

func TestFastSampleMatchesSample(t *testing.T) {
	h, err := NewUsageHeader("u.csv", []string{"timestamp", "container_id", "machine_id", "cpu"}, UsageFields{})
	if err != nil {
		t.Fatal(err)
	}
	rows := []string{"3,c_1,n_1,1.5", "3,c_1,n_1, 0 ", "3.5,c_1,n_1,1", "x,c_1,n_1,1", "3,,n_1,1", "3,c_1,,1",
		"3,c_1,n_1,abc", "3,c_1,n_1,NaN", "3,c_1,n_1,Inf", "3,c_1,n_1,1e999", "3,c_1,n_1,-0.5", "3,c_1,n_1,-0",
		"3,c_1,n_1", "3,c_1,n_1,1,2", " 7 ,c,n,5", "-7,c,n,5", "9223372036854775808,a,b,1", "1,a,b,0x1p3"}
	for _, n := range numberCorpus {
		rows = append(rows, n+",c,n,1", "1,c,n,"+n)
	}
	for _, row := range rows {
		s, err := h.Sample(strings.Split(row, ","), 2, make([]float64, 1))
		checkFastSample(t, h, row, s, err)
	}
	// A domain column: empty cells take the default domain.
	hd, err := NewUsageHeader("u.csv", []string{"timestamp", "container_id", "machine_id", "cpu", "pool"}, UsageFields{Domain: "pool"})
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{"1,c,n,2,p1", "1,c,n,2,"} {
		s, err := hd.Sample(strings.Split(row, ","), 2, make([]float64, 1))
		checkFastSample(t, hd, row, s, err)
	}
}

func TestRowBatchWriterMatchesMarshalBinary(t *testing.T) {
	header := []string{"timestamp", "container_id", "machine_id", "cpu"}
	rb := RawBatch{Source: "x.csv", Header: header, Rows: []RawRow{
		{Line: 2, Fields: []string{"0", "c_1", "n_1", "1.5"}},
		{Line: 9, Fields: []string{"0", "c_2", "n_2", ""}},
		{Line: 1 << 40, Fields: []string{"", "", "", ""}}}}
	want, _ := rb.MarshalBinary()
	var w RowBatchWriter
	w.Reset("x.csv", header, 0)
	w.AppendRow(2, [][]byte{[]byte("0"), []byte("c_1"), []byte("n_1"), []byte("1.5")})
	w.AppendRow(9, [][]byte{[]byte("0"), []byte("c_2"), []byte("n_2"), nil})
	w.AppendRow(1<<40, [][]byte{nil, nil, nil, nil})
	if w.Rows() != 3 {
		t.Errorf("rows %d", w.Rows())
	}
	got := w.Bytes()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("writer %v\nmarshal %v", got, want)
	}
	var rd RowBatchReader
	if err := rd.Reset(got); err != nil || string(rd.Source) != "x.csv" || len(rd.Header) != 4 || rd.Len() != 3 {
		t.Fatalf("reader head: %v %q %q %d", err, rd.Source, rd.Header, rd.Len())
	}
	for i := 0; ; i++ {
		line, fields, ok := rd.Next()
		if !ok {
			if i != 3 || rd.Err() != nil {
				t.Fatalf("reader stopped at %d: %v", i, rd.Err())
			}
			break
		}
		r := rb.Rows[i]
		if line != r.Line || !reflect.DeepEqual(Strings(fields), r.Fields) {
			t.Errorf("row %d = %d %q, want %+v", i, line, Strings(fields), r)
		}
	}
	if err := rd.Reset(got[:len(got)-1]); err == nil {
		for _, _, ok := rd.Next(); ok; _, _, ok = rd.Next() {
		}
		if rd.Err() == nil {
			t.Error("truncated batch read without error")
		}
	}
}

// The pinned column is optional (absent: nothing pinned), read by name
// (pinned_field), and a bad value is a reject naming file, line and field;
// the fast path agrees with Sample on every row.
func TestUsageHeaderPinned(t *testing.T) {
	plain, err := NewUsageHeader("u.csv", []string{"timestamp", "container_id", "machine_id", "cpu"}, UsageFields{})
	if err != nil || plain.Pinned != -1 {
		t.Fatalf("no pinned column: Pinned = %d, %v", plain.Pinned, err)
	}
	if plain.Fields().Pinned != "pinned" {
		t.Errorf("default pinned field %q", plain.Fields().Pinned)
	}
	h, err := NewUsageHeader("u.csv", []string{"timestamp", "container_id", "pinned", "machine_id", "cpu"}, UsageFields{})
	if err != nil || h.Pinned != 2 {
		t.Fatalf("pinned column: %d, %v", h.Pinned, err)
	}
	tests := []struct {
		cell   string
		pinned bool
		bad    bool
	}{
		{"true", true, false}, {"TRUE", true, false}, {"True", true, false}, {"1", true, false}, {"yes", true, false}, {" Yes ", true, false},
		{"false", false, false}, {"FALSE", false, false}, {"0", false, false}, {"no", false, false}, {"", false, false}, {" ", false, false},
		{"2", false, true}, {"t", false, true}, {"y", false, true}, {"on", false, true}, {"truee", false, true}, {"-1", false, true}, {"\u00a0", false, false}, {"ye\u017f", false, true}, {"n\x0f", false, true},
	}
	for _, tt := range tests {
		row := "3,c_1," + tt.cell + ",n_1,1.5"
		s, err := h.Sample(strings.Split(row, ","), 9, make([]float64, 1))
		checkFastSample(t, h, row, s, err)
		if tt.bad {
			var re *RowError
			if !errors.As(err, &re) || re.Source != "u.csv" || re.Line != 9 || re.Field != "pinned" || re.Value != tt.cell ||
				!strings.HasPrefix(re.Reason, "pinned is not one of") {
				t.Errorf("%q: err = %v, want a reject of u.csv:9 field pinned", tt.cell, err)
			}
			continue
		}
		if err != nil || s.Pinned != tt.pinned || s.Values[0] != 1.5 || s.Host != "n_1" {
			t.Errorf("%q: %+v %v, want pinned %v", tt.cell, s, err, tt.pinned)
		}
	}
	// Named by pinned_field; a column called pinned is then just ignored.
	hc, err := NewUsageHeader("u.csv", []string{"timestamp", "container_id", "machine_id", "cpu", "pinned", "keep"}, UsageFields{Pinned: "keep"})
	if err != nil || hc.Pinned != 5 {
		t.Fatalf("pinned_field keep: %d, %v", hc.Pinned, err)
	}
	for _, row := range []string{"1,c,n,2,maybe,yes", "1,c,n,2,true,0", "1,c,n,2,,x"} {
		s, err := hc.Sample(strings.Split(row, ","), 2, make([]float64, 1))
		checkFastSample(t, hc, row, s, err)
	}
	if s, err := hc.Sample(strings.Split("1,c,n,2,maybe,yes", ","), 2, make([]float64, 1)); err != nil || !s.Pinned {
		t.Errorf("keep=yes: %+v %v", s, err)
	}
}

func FuzzParsePinned(f *testing.F) {
	for _, s := range []string{"", "1", "0", "true", "no", "YES", " false\t", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := ParsePinned(s)
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "1", "true", "yes":
			if !ok || !p {
				t.Fatalf("%q: %v %v", s, p, ok)
			}
		case "", "0", "false", "no":
			if !ok || p {
				t.Fatalf("%q: %v %v", s, p, ok)
			}
		default:
			if ok {
				t.Fatalf("%q accepted as %v", s, p)
			}
		}
	})
}
