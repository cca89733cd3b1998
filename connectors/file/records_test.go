package file

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// csvRecords is what encoding/csv (as the connector used it) reads from
// input, with the reader's one departure (see recordReader): a record that
// fails after reading past its first line, or runs on for more than
// maxCont bytes, is an error of its first line alone, and reading restarts
// on the next line. Per record: its fields or error, its line and the
// input offset after it.
func csvRecords(input string) []string { return confinedRecords(input, maxContinuation) }

func confinedRecords(input string, maxCont int) []string {
	var out []string
	lines, off := 0, 0 // before rest
	rest := input
	// after is the offset just past line n (1-based) of s.
	after := func(s string, n int) int {
		i := 0
		for ; n > 0; n-- {
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				return len(s)
			}
			i += j + 1
		}
		return i
	}
restart:
	cr := csv.NewReader(strings.NewReader(rest))
	cr.FieldsPerRecord = -1
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		var start int
		var pe *csv.ParseError
		if err != nil {
			errors.As(err, &pe)
			start = pe.StartLine
		} else {
			start, _ = cr.FieldPos(0)
		}
		// Bytes read past the record's first line (encoding/csv's own
		// line count misses a last line that is only "\r").
		if cont := int(cr.InputOffset()) - after(rest, start); (pe != nil && cont > 0) || cont > maxCont {
			end := after(rest, start)
			e := &csv.ParseError{StartLine: lines + start, Line: lines + start, Column: openQuoteColumn([]byte(rest[after(rest, start-1):end])), Err: errQuoteSpan}
			out = append(out, fmt.Sprintf("line %d: error %v @%d", lines+start, e, off+end))
			rest, lines, off = rest[end:], lines+start, off+end
			goto restart
		}
		if pe != nil {
			pe.StartLine += lines
			pe.Line += lines
			out = append(out, fmt.Sprintf("line %d: error %v @%d", pe.StartLine, pe, off+int(cr.InputOffset())))
			continue
		}
		out = append(out, fmt.Sprintf("line %d: %q @%d", lines+start, rec, off+int(cr.InputOffset())))
	}
}

func fastRecords(rr *recordReader) []string {
	var out []string
	for {
		fields, line, err := rr.next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return append(out, "io error "+err.Error())
			}
			out = append(out, fmt.Sprintf("line %d: error %v @%d", line, err, rr.offset()))
			continue
		}
		out = append(out, fmt.Sprintf("line %d: %q @%d", line, fieldStrings(fields), rr.offset()))
	}
}

func fieldStrings(fields [][]byte) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = string(f)
	}
	return out
}

var csvCorpus = []string{
	"",
	"\n",
	"a,b,c\n1,2,3\n",
	"a,b,c\n1,2,3",
	"a,b\r\n1,2\r\n",
	"a,b\r\n1,2\r",
	"a,b\n\n\n1,2\n\r\n3,4\n",
	"a,,b,\n,,,\n",
	"x\ry,z\n1\r\r\n",
	" a , b \n",
	"a,\"b,c\",d\n1,2,3\n",
	"\"multi\nline\",2\n3,4\n",
	"\"a\"\"b\",c\n",
	"0,\"c_4,n_1,1\n1,c,n,1\n",
	"0,c\"4,n_1\n1,2\n",
	"\"abc\"x,1\n2,3\n",
	"\"unterminated\n1,2\n3,4",
	"a,\"\"\n\"\",b\n",
	"\"\"\n",
	"a,b\n\"x\ny\nz\",w\nq,r\n\"e\" ,f\n",
	strings.Repeat("long,", 3000) + "end\n1,2\n",
	"\"" + strings.Repeat("q", 9000) + "\",b\n1,\"" + strings.Repeat("r\n", 3000) + "\"\n",
	"\ufeffts,c\n1,2\n",
}

func TestRecordReaderMatchesEncodingCSV(t *testing.T) {
	for _, in := range csvCorpus {
		want := csvRecords(in)
		for name, rr := range map[string]*recordReader{
			"stream":     newStreamReader(strings.NewReader(in)),
			"one byte":   newStreamReader(iotest.OneByteReader(strings.NewReader(in))),
			"small buf":  {rd: strings.NewReader(in), buf: make([]byte, 3)},
			"bytes":      newBytesReader([]byte(in), 0, 0),
			"data error": newStreamReader(iotest.DataErrReader(strings.NewReader(in))),
		} {
			if got := fastRecords(rr); !reflect.DeepEqual(got, want) {
				t.Errorf("%s %.60q:\n got %q\nwant %q", name, in, got, want)
			}
		}
	}
}

// One stray quote costs its line, not the rest of the file (issue 10: a
// quote opened on line 7 of container_usage.csv swallowed lines 7-721).
func TestRecordReaderConfinesQuoteErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		maxCont int
		want    []string
	}{
		{"stray quote", "ts,c\n0,a\n\"0,b\n1,a\n1,b\n", 0, []string{
			`line 1: ["ts" "c"] @5`, `line 2: ["0" "a"] @9`,
			`line 3: error parse error on line 3, column 1: ` + errQuoteSpan.Error() + ` @14`,
			`line 4: ["1" "a"] @18`, `line 5: ["1" "b"] @22`}},
		{"quote in the second field", "0,\"a\n1,b\n", 0, []string{
			`line 1: error parse error on line 1, column 3: ` + errQuoteSpan.Error() + ` @5`, `line 2: ["1" "b"] @9`}},
		{"multi-line field within the bound", "\"a\nb\",c\n1,2\n", 0, []string{`line 1: ["a\nb" "c"] @8`, `line 3: ["1" "2"] @12`}},
		{"multi-line field past the bound", "\"a\nbbbb\",c\n1,2\n", 4, []string{
			`line 1: error parse error on line 1, column 1: ` + errQuoteSpan.Error() + ` @3`,
			`line 2: error parse error on line 2, column 5: bare " in non-quoted-field @11`, `line 3: ["1" "2"] @15`}},
		{"stray quote, then one that closes it", "\"a,1\n\"b,2\n3,4\n", 0, []string{
			`line 1: error parse error on line 1, column 1: ` + errQuoteSpan.Error() + ` @5`,
			`line 2: error parse error on line 2, column 1: ` + errQuoteSpan.Error() + ` @10`, `line 3: ["3" "4"] @14`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, rr := range map[string]*recordReader{
				"stream": {rd: strings.NewReader(tt.in), buf: make([]byte, 4), maxCont: tt.maxCont},
				"bytes":  {buf: []byte(tt.in), w: len(tt.in), eof: true, maxCont: tt.maxCont},
			} {
				if got := fastRecords(rr); !reflect.DeepEqual(got, tt.want) {
					t.Errorf("%s:\n got %q\nwant %q", name, got, tt.want)
				}
			}
		})
	}
}

func FuzzRecordReader(f *testing.F) {
	for _, in := range csvCorpus {
		if len(in) < 200 { // big seeds make minimizing crawl
			f.Add(in)
		}
	}
	f.Fuzz(func(t *testing.T, in string) {
		want := csvRecords(in)
		if got := fastRecords(&recordReader{rd: strings.NewReader(in), buf: make([]byte, 7)}); !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\n got %q\nwant %q", in, got, want)
		}
		if got := fastRecords(newBytesReader([]byte(in), 0, 0)); !reflect.DeepEqual(got, want) {
			t.Errorf("bytes %q:\n got %q\nwant %q", in, got, want)
		}
	})
}

func TestRecordReaderIOError(t *testing.T) {
	boom := errors.New("boom")
	rr := newStreamReader(io.MultiReader(strings.NewReader("a,b\n1,"), iotest.ErrReader(boom)))
	if f, _, err := rr.next(); err != nil || len(f) != 2 {
		t.Fatalf("first record: %q %v", f, err)
	}
	if _, _, err := rr.next(); !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
}

// Random inputs over the characters that matter, with small buffers so
// lines straddle refills.
func TestRecordReaderRandomInputs(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	alpha := []string{"a", "1", ",", "\"", "\n", "\r", "\"\"", "\r\n", ",\"", "\",", "\x00", "\xff", " "}
	for range 5000 {
		var sb strings.Builder
		for range r.IntN(300) {
			sb.WriteString(alpha[r.IntN(len(alpha))])
		}
		in := sb.String()
		want := csvRecords(in)
		if got := fastRecords(&recordReader{rd: strings.NewReader(in), buf: make([]byte, 1+r.IntN(16))}); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %q\nwant %q", in, got, want)
		}
		if got := fastRecords(newBytesReader([]byte(in), 0, 0)); !reflect.DeepEqual(got, want) {
			t.Fatalf("bytes %q:\n got %q\nwant %q", in, got, want)
		}
		maxCont := 1 + r.IntN(20)
		want = confinedRecords(in, maxCont)
		if got := fastRecords(&recordReader{rd: strings.NewReader(in), buf: make([]byte, 1+r.IntN(16)), maxCont: maxCont}); !reflect.DeepEqual(got, want) {
			t.Fatalf("maxCont %d %q:\n got %q\nwant %q", maxCont, in, got, want)
		}
	}
}
