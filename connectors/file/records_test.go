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
// input: per record its fields or error, its line and the input offset
// after it.
func csvRecords(input string) []string {
	cr := csv.NewReader(strings.NewReader(input))
	cr.FieldsPerRecord = -1
	var out []string
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			var pe *csv.ParseError
			errors.As(err, &pe)
			out = append(out, fmt.Sprintf("line %d: error %v @%d", pe.StartLine, err, cr.InputOffset()))
			continue
		}
		line, _ := cr.FieldPos(0)
		out = append(out, fmt.Sprintf("line %d: %q @%d", line, rec, cr.InputOffset()))
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
	}
}
