package codecs

import (
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"hots/placement"
)

func TestSymbolsInternAndLookup(t *testing.T) {
	var s Symbols
	if _, ok := s.LookupBytes([]byte("x")); ok {
		t.Fatal("empty table found a name")
	}
	long := strings.Repeat("L", symChunk+10)
	names := []string{"", "c_1", long, "c_2", "abc", "abc\x00", "abcdefgh", "abcdefghi", "abcdefghj", "\x00", long + "x"}
	for i := range 100000 {
		names = append(names, "c_"+strconv.Itoa(i*7919))
	}
	kept := make([]string, 0, len(names))
	for i, n := range names {
		var id int32
		if i%2 == 0 {
			id = s.Intern(n)
		} else {
			id = s.InternBytes([]byte(n))
		}
		if int(id) != len(kept) {
			t.Fatalf("%q: id %d, want %d", n, id, len(kept))
		}
		kept = append(kept, s.Name(id))
	}
	if s.Len() != len(kept) {
		t.Fatalf("len %d, want %d", s.Len(), len(kept))
	}
	for id, n := range kept { // names stay valid across growth
		if s.Name(int32(id)) != n || (id < 11 && n != names[id]) {
			t.Fatalf("name %d = %.20q, want %.20q", id, s.Name(int32(id)), n)
		}
		if got, ok := s.LookupBytes([]byte(n)); !ok || got != int32(id) {
			t.Fatalf("lookup %.20q = %d %v, want %d", n, got, ok, id)
		}
		if got := s.Intern(n); got != int32(id) {
			t.Fatalf("re-intern %.20q = %d, want %d", n, got, id)
		}
	}
	if _, ok := s.LookupBytes([]byte("c_nope")); ok {
		t.Error("found a name never interned")
	}
}

func TestSampleReaderMatchesDecodeSamples(t *testing.T) {
	ss := []placement.Sample{{Domain: "d", Tick: -3, Container: "c", Host: "h", Values: []float64{1, math.MaxFloat64}, TraceHost: "t"},
		{Domain: "default", Tick: 1 << 40, Container: "c2", Host: "h2", Values: []float64{0}, Pinned: true}, {Domain: "x"}}
	data := EncodeSamples(ss)
	want, err := DecodeSamples(data)
	if err != nil {
		t.Fatal(err)
	}
	var sr SampleReader
	if err := sr.Reset(data); err != nil || sr.Len() != 3 {
		t.Fatalf("reset: %v len %d", err, sr.Len())
	}
	var got []placement.Sample
	var s placement.Sample
	for sr.Next(&s) {
		got = append(got, s)
	}
	if sr.Err() != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("reader %+v %v, want %+v", got, sr.Err(), want)
	}
	for range 2 { // reusing the value buffer, twice
		if err := sr.ResetReuse(data); err != nil {
			t.Fatal(err)
		}
		for i := 0; sr.Next(&s); i++ {
			if !reflect.DeepEqual(s, want[i]) {
				t.Fatalf("reuse: sample %d = %+v, want %+v", i, s, want[i])
			}
		}
		if sr.Err() != nil {
			t.Fatal(sr.Err())
		}
	}
	for cut := range len(data) {
		sr.Reset(data[:cut])
		for sr.Next(&s) {
		}
		if sr.Err() == nil {
			t.Fatalf("truncated at %d: no error", cut)
		}
	}
}

// InternAfter gives the ids Intern gives, whatever the order predicted.
func TestSymbolsInternAfter(t *testing.T) {
	var a, b Symbols
	r := []string{"c_1", "c_2", "abcdefghijk", "abcdefghijl", "c_3", "", "c_1"}
	prev := int32(-1)
	for round := range 50 {
		for i := range r {
			n := r[(i*(1+round%3))%len(r)] // orders change from round to round
			if round%7 == 3 {
				n += "_new" + strconv.Itoa(round)
			}
			want := b.Intern(n)
			got := a.InternAfter(prev, n)
			if round%2 == 0 {
				got = a.InternBytesAfter(prev, []byte(n))
			}
			if got != want || a.Name(got) != n {
				t.Fatalf("round %d %q: InternAfter %d (%q), Intern %d", round, n, got, a.Name(got), want)
			}
			prev = got
		}
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	in := []SourceRecord{
		{UUID: "u/0/7", Metadata: map[string]string{MetaSource: "usage", MetaOffset: "7", "h": ""}, Payload: []byte(`{"timestamp":1}`)},
		{UUID: "", Metadata: map[string]string{}, Payload: nil},
		{UUID: "x", Metadata: map[string]string{MetaOffset: "9"}, Payload: []byte{0, 0xff, 1}},
	}
	b := EncodeRecords(in)
	got, err := DecodeRecords(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("%d records back, want %d", len(got), len(in))
	}
	for i := range in {
		if got[i].UUID != in[i].UUID || string(got[i].Payload) != string(in[i].Payload) || !maps.Equal(got[i].Metadata, in[i].Metadata) {
			t.Errorf("record %d = %+v, want %+v", i, got[i], in[i])
		}
	}
	for cut := range len(b) { // every truncation is refused, none panics
		if _, err := DecodeRecords(b[:cut]); err == nil {
			t.Fatalf("a records message cut at %d of %d bytes decoded", cut, len(b))
		}
	}
}

func TestSegments(t *testing.T) {
	segs := []Segment{{7, 1}, {8, 0}, {9, 500}}
	v := FormatSegments(segs)
	got, err := ParseSegments(v, 501)
	if err != nil || !slices.Equal(got, segs) {
		t.Fatalf("ParseSegments(%q) = %v, %v; want %v", v, got, err, segs)
	}
	for _, tc := range []struct {
		v     string
		total int
	}{{v, 500}, {"", 0}, {"7", 1}, {"7:x", 1}, {"-1:1", 1}, {"7:1,", 1}} {
		if _, err := ParseSegments(tc.v, tc.total); err == nil {
			t.Errorf("ParseSegments(%q, %d) accepted", tc.v, tc.total)
		}
	}
}
