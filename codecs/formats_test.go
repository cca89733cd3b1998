package codecs

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"hots/placement"
)

func TestReadNodeMeta(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		metrics []string
		hosts   []placement.Host
		dups    []int64 // lines of duplicate rows
		err     string
	}{
		{"upstream", "machine_id,cpu\nn_1,6\nn_2,6\n", nil,
			[]placement.Host{{Name: "n_1", Capacity: []float64{6}}, {Name: "n_2", Capacity: []float64{6}}}, nil, ""},
		{"columns by name", "mem,cpu,machine_id\n100,9600,m_1\n", []string{"cpu", "mem"},
			[]placement.Host{{Name: "m_1", Capacity: []float64{9600, 100}}}, nil, ""},
		{"duplicates: first wins", "machine_id,cpu\nm_1,96\nm_2,50\nm_1,1\nm_1,2\n", nil,
			[]placement.Host{{Name: "m_1", Capacity: []float64{96}}, {Name: "m_2", Capacity: []float64{50}}}, []int64{4, 5}, ""},
		{"missing metric column", "machine_id,cpu\nn_1,6\n", []string{"cpu", "mem"}, nil, nil, `meta.csv: missing column "mem"`},
		{"bad capacity", "machine_id,cpu\nn_1,lots\n", nil, nil, nil, `meta.csv:2: field "cpu": value "lots": capacity is not a number`},
		{"empty", "", nil, nil, nil, "meta.csv: empty file"},
		{"no rows", "machine_id,cpu\n", nil, nil, nil, "meta.csv: no host rows"},
		// Issue 10: a broken quote panicked (FieldPos after a failed Read).
		{"broken quote", "machine_id,cpu,mem\nn_1,8.3,15.2\nn_\"2,8.3,15.2\nn_3,8.3,15.2\n", []string{"cpu", "mem"}, nil, nil,
			`meta.csv:3: not a CSV record: parse error on line 3, column 3: bare " in non-quoted-field`},
		{"unterminated quote", "machine_id,cpu\nn_1,6\n\"n_2,6\nn_3,6\n", nil, nil, nil, `meta.csv:3: not a CSV record: record on line 3; parse error on line 4, column 7`},
		{"zero capacity", "machine_id,cpu,mem\nn_1,6,4\nn_2,0,4\n", []string{"cpu", "mem"}, nil, nil,
			`meta.csv:3: field "cpu": value "0": capacity is zero (a host that can hold nothing: remove its row or give it a capacity) (host "n_2")`},
		{"absurd capacity", "machine_id,cpu\nn_1,6\nn_2,1e300\n", nil, nil, nil,
			`meta.csv:3: field "cpu": value "1e300": capacity is larger than 1e18 (sums of such values overflow) (host "n_2")`},
		{"negative capacity", "machine_id,cpu\nn_1,-6\n", nil, nil, nil, `meta.csv:2: field "cpu": value "-6": capacity is negative (host "n_1")`},
		// Ids are their bytes, as in the usage file: not trimmed, any bytes.
		{"ids are bytes", "machine_id,cpu\n n_1,6\nn_1,7\nn\xff,8\nn\xfe,9\n", nil,
			[]placement.Host{{Name: " n_1", Capacity: []float64{6}}, {Name: "n_1", Capacity: []float64{7}},
				{Name: "n\xff", Capacity: []float64{8}}, {Name: "n\xfe", Capacity: []float64{9}}}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nm, err := ReadNodeMeta(strings.NewReader(tt.in), "meta.csv", "machine_id", tt.metrics)
			if tt.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
					t.Fatalf("err = %v, want prefix %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(nm.Hosts, tt.hosts) {
				t.Errorf("hosts = %v, want %v", nm.Hosts, tt.hosts)
			}
			var lines []int64
			for _, d := range nm.Duplicates {
				lines = append(lines, d.Line)
			}
			if !reflect.DeepEqual(lines, tt.dups) {
				t.Errorf("duplicate lines = %v, want %v", lines, tt.dups)
			}
		})
	}
}

// FuzzReadNodeMeta: no input panics, and what is accepted is usable: every
// host named, once, with one finite capacity in (0, MaxValue] per metric.
func FuzzReadNodeMeta(f *testing.F) {
	for _, s := range []string{"machine_id,cpu\nn_1,6\n", "machine_id,cpu,mem\nn_1,8.3,15.2\nn_\"2,8.3,15.2\n",
		"machine_id,cpu\n\"n_1,6\nn_2,6\n", "machine_id,cpu\nn_1,0\n", "\ufeffmachine_id,cpu\r\nn_1,1e18\r\n",
		"machine_id,cpu\nn_1,6\nn_1,7\n", "cpu,machine_id\n6\n", "machine_id,cpu\n\"a\nb\",3\n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		nm, err := ReadNodeMeta(strings.NewReader(in), "m.csv", "machine_id", []string{"cpu"})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "m.csv") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, h := range nm.Hosts {
			if h.Name == "" || seen[h.Name] || len(h.Capacity) != 1 || !(h.Capacity[0] > 0 && h.Capacity[0] <= MaxValue) {
				t.Fatalf("accepted %+v from %q", h, in)
			}
			seen[h.Name] = true
		}
	})
}

func TestDecodeSamplesJSON(t *testing.T) {
	two := UsageFields{Metrics: []string{"cpu", "mem"}}
	tests := []struct {
		name   string
		in     string
		key    string
		f      UsageFields
		want   []placement.Sample
		field  string
		reason string
	}{
		{"record, key gives domain", `{"timestamp":4,"container_id":"c","machine_id":"n","cpu":1.5,"mem":2,"disk":9}`, "pool-a", two,
			[]placement.Sample{{Domain: "pool-a", Tick: 4, Container: "c", Host: "n", Values: []float64{1.5, 2}}}, "", ""},
		{"record, field beats key", `{"domain":"d1","timestamp":4,"container_id":"c","machine_id":"n","cpu":1,"mem":2}`, "k", two,
			[]placement.Sample{{Domain: "d1", Tick: 4, Container: "c", Host: "n", Values: []float64{1, 2}}}, "", ""},
		{"upstream batch", `{"containers":[{"timestamp":1,"container_id":"a","machine_id":"n","cpu":1},{"timestamp":"2","container_id":"b","machine_id":"m","cpu":0}]}`, "", UsageFields{},
			[]placement.Sample{{Domain: "default", Tick: 1, Container: "a", Host: "n", Values: []float64{1}}, {Domain: "default", Tick: 2, Container: "b", Host: "m", Values: []float64{0}}}, "", ""},
		{"custom names", `{"time":1,"container_id":"a","host":"h","value":3}`, "", UsageFields{Tick: "time", Host: "host", Metrics: []string{"value"}},
			[]placement.Sample{{Domain: "default", Tick: 1, Container: "a", Host: "h", Values: []float64{3}}}, "", ""},
		{"missing metric", `{"timestamp":4,"container_id":"c","machine_id":"n","cpu":1}`, "", two, nil, "mem", "missing metric"},
		{"missing metric in batch", `{"containers":[{"timestamp":1,"container_id":"a","machine_id":"n"}]}`, "", UsageFields{}, nil, "containers[0].cpu", "missing metric"},
		{"float tick", `{"timestamp":4.5,"container_id":"c","machine_id":"n","cpu":1}`, "", UsageFields{}, nil, "timestamp", "tick is not an integer"},
		{"negative", `{"timestamp":4,"container_id":"c","machine_id":"n","cpu":-1}`, "", UsageFields{}, nil, "cpu", "metric is negative"},
		{"string metric", `{"timestamp":4,"container_id":"c","machine_id":"n","cpu":"1"}`, "", UsageFields{}, nil, "cpu", "metric is not a number"},
		{"empty host", `{"timestamp":4,"container_id":"c","machine_id":"","cpu":1}`, "", UsageFields{}, nil, "machine_id", "empty"},
		{"not json", `{"timestamp":`, "", UsageFields{}, nil, "", "not a JSON object"},
		{"containers not array", `{"containers":{}}`, "", UsageFields{}, nil, "containers", "not an array of objects"},
		{"pinned true", `{"timestamp":4,"container_id":"c","machine_id":"n","cpu":1,"pinned":true}`, "", UsageFields{},
			[]placement.Sample{{Domain: "default", Tick: 4, Container: "c", Host: "n", Values: []float64{1}, Pinned: true}}, "", ""},
		{"pinned false, 1, \"yes\", null, absent in a batch", `{"containers":[` +
			`{"timestamp":1,"container_id":"a","machine_id":"n","cpu":1,"pinned":false},` +
			`{"timestamp":1,"container_id":"b","machine_id":"n","cpu":1,"pinned":1},` +
			`{"timestamp":1,"container_id":"c","machine_id":"n","cpu":1,"pinned":"yes"},` +
			`{"timestamp":1,"container_id":"d","machine_id":"n","cpu":1,"pinned":null},` +
			`{"timestamp":1,"container_id":"e","machine_id":"n","cpu":1}]}`, "", UsageFields{},
			[]placement.Sample{{Domain: "default", Tick: 1, Container: "a", Host: "n", Values: []float64{1}},
				{Domain: "default", Tick: 1, Container: "b", Host: "n", Values: []float64{1}, Pinned: true},
				{Domain: "default", Tick: 1, Container: "c", Host: "n", Values: []float64{1}, Pinned: true},
				{Domain: "default", Tick: 1, Container: "d", Host: "n", Values: []float64{1}},
				{Domain: "default", Tick: 1, Container: "e", Host: "n", Values: []float64{1}}}, "", ""},
		{"pinned_field names the key", `{"timestamp":4,"container_id":"c","machine_id":"n","cpu":1,"pinned":"junk","keep":"TRUE"}`, "", UsageFields{Pinned: "keep"},
			[]placement.Sample{{Domain: "default", Tick: 4, Container: "c", Host: "n", Values: []float64{1}, Pinned: true}}, "", ""},
		{"bad pinned", `{"timestamp":4,"container_id":"c","machine_id":"n","cpu":1,"pinned":"maybe"}`, "", UsageFields{}, nil, "pinned", "pinned is not one of"},
		{"bad pinned in batch", `{"containers":[{"timestamp":1,"container_id":"a","machine_id":"n","cpu":1,"pinned":2}]}`, "", UsageFields{}, nil, "containers[0].pinned", "pinned is not one of"},
		{"pinned object", `{"timestamp":4,"container_id":"c","machine_id":"n","cpu":1,"pinned":{}}`, "", UsageFields{}, nil, "pinned", "pinned is not one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pos := Position{Source: "usage", Partition: 1, Offset: 9}
			got, err := DecodeSamplesJSON([]byte(tt.in), pos, tt.key, tt.f)
			if tt.reason != "" {
				var re *RowError
				if !errors.As(err, &re) || re.Field != tt.field || !strings.HasPrefix(re.Reason, tt.reason) || re.Position != pos {
					t.Fatalf("err = %#v, want field %q reason %q at %v", err, tt.field, tt.reason, pos)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzDecodeSamplesJSON(f *testing.F) {
	for _, s := range []string{`{"timestamp":1,"container_id":"a","machine_id":"n","cpu":1}`,
		`{"containers":[{"timestamp":1,"container_id":"a","machine_id":"n","cpu":1},null]}`,
		`{"containers":null}`, `[]`, `{"timestamp":1e3}`, `{"domain":3}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ss, err := DecodeSamplesJSON(b, Position{Source: "t"}, "", UsageFields{})
		if err != nil {
			return
		}
		for _, s := range ss {
			if s.Container == "" || s.Host == "" || len(s.Values) != 1 || s.Values[0] < 0 || math.IsInf(s.Values[0], 0) {
				t.Fatalf("accepted a bad sample %+v from %q", s, b)
			}
		}
	})
}

func TestMoveRoundTrip(t *testing.T) {
	m := placement.Move{ID: placement.MoveID("d", 5, "c_6"), Domain: "d", Tick: 5, Container: "c_6", OldHost: "n_2", NewHost: "n_1",
		Reason: placement.ReasonConflict, TargetPeakBefore: 0.5, TargetPeakAfter: 0.75, SourcePeakBefore: 1, SourcePeakAfter: 0.25}
	b, err := EncodeMove(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"id":`, `"domain":"d"`, `"tick":5`, `"container_name":"c_6"`, `"old_host":"n_2"`, `"new_host":"n_1"`, `"reason":"placement_conflict"`, `"target_peak_after":0.75`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("%s lacks %s", b, k)
		}
	}
	got, err := DecodeMove(b)
	if err != nil || got != m {
		t.Fatalf("round trip = %+v, %v; want %+v", got, err, m)
	}
}

func TestDecodeMove(t *testing.T) {
	tests := []struct {
		in   string
		want placement.Move
		err  string
	}{
		{`{"container_name": "c_6", "old_host": "n_2", "new_host": "n_1", "time": "5"}`,
			placement.Move{ID: placement.MoveID("default", 5, "c_6"), Domain: "default", Tick: 5, Container: "c_6", OldHost: "n_2", NewHost: "n_1"}, ""},
		{`{"container_name":"c","old_host":"a","new_host":"b"}`, placement.Move{}, `missing field "tick"`},
		{`{"tick":1,"old_host":"a","new_host":"b"}`, placement.Move{}, `missing field "container_name"`},
		{`{"tick":1,"container_name":"c","old_host":"a","new_host":"b","time":"x"}`,
			placement.Move{ID: placement.MoveID("default", 1, "c"), Domain: "default", Tick: 1, Container: "c", OldHost: "a", NewHost: "b"}, ""},
		{`{"time":"x","container_name":"c","old_host":"a","new_host":"b"}`, placement.Move{}, `"time" is not an integer tick`},
		{`nope`, placement.Move{}, "move: invalid character"},
	}
	for _, tt := range tests {
		got, err := DecodeMove([]byte(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestNodeRecord(t *testing.T) {
	metrics := []string{"cpu", "mem"}
	b, err := EncodeNode("d", placement.Host{Name: "m_1", Capacity: []float64{96, 100}}, metrics)
	if err != nil {
		t.Fatal(err)
	}
	nc, h, err := DecodeNode(b, Position{Source: "nodes"}, metrics)
	if err != nil || nc.Domain != "d" || h.Name != "m_1" || !reflect.DeepEqual(h.Capacity, []float64{96, 100}) {
		t.Fatalf("round trip: %+v %+v %v", nc, h, err)
	}
	// schedulable: false cordons the host; absent or true does not.
	for rec, want := range map[string]bool{
		`{"host":"m","capacity":{"cpu":1,"mem":1},"schedulable":false}`: true,
		`{"host":"m","capacity":{"cpu":1,"mem":1},"schedulable":true}`:  false,
		`{"host":"m","capacity":{"cpu":1,"mem":1}}`:                     false,
	} {
		if _, h, err := DecodeNode([]byte(rec), Position{Source: "nodes"}, metrics); err != nil || h.Cordoned != want {
			t.Errorf("%s: cordoned %v (err %v), want %v", rec, h.Cordoned, err, want)
		}
	}
	b, _ = EncodeNode("d", placement.Host{Name: "m", Capacity: []float64{1, 1}, Cordoned: true}, metrics)
	if _, h, _ := DecodeNode(b, Position{}, metrics); !h.Cordoned || !strings.Contains(string(b), `"schedulable":false`) {
		t.Errorf("cordoned round trip: %s -> %+v", b, h)
	}
	_, _, err = DecodeNode([]byte(`{"host":"m","capacity":{"cpu":1}}`), Position{Source: "nodes", Offset: 3}, metrics)
	var re *RowError
	if !errors.As(err, &re) || re.Field != "capacity.mem" || re.Offset != 3 {
		t.Errorf("err = %v, want missing capacity.mem at offset 3", err)
	}
	_, _, err = DecodeNode([]byte(`{"host":"m","capacity":{"cpu":-1,"mem":1}}`), Position{Source: "nodes"}, metrics)
	if !errors.As(err, &re) || re.Field != "capacity.cpu" {
		t.Errorf("err = %v, want bad capacity.cpu", err)
	}
	for _, c := range []string{"0", "1e300"} {
		_, _, err = DecodeNode([]byte(`{"host":"m","capacity":{"cpu":`+c+`,"mem":1}}`), Position{Source: "nodes"}, metrics)
		if !errors.As(err, &re) || re.Field != "capacity.cpu" || !strings.Contains(re.Reason, `(host "m")`) {
			t.Errorf("capacity %s: err = %v, want bad capacity.cpu naming host m", c, err)
		}
	}
}

func TestBinaryBatchesRoundTrip(t *testing.T) {
	rb := RawBatch{Source: "x.csv", Header: []string{"timestamp", "container_id", "machine_id", "cpu"},
		Rows: []RawRow{{Line: 2, Fields: []string{"0", "c_1", "n_1", "1.5"}}, {Line: 9, Fields: []string{"0", "c_2", "n_2", ""}}}}
	b, _ := rb.MarshalBinary()
	var got RawBatch
	if err := got.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(got, rb) {
		t.Fatalf("raw batch round trip = %+v, %v", got, err)
	}
	ss := []placement.Sample{{Domain: "d", Tick: -3, Container: "c", Host: "h", Values: []float64{1, math.MaxFloat64}, TraceHost: "t"},
		{Domain: "default", Tick: 1 << 40, Container: "c2", Host: "h2", Values: []float64{0}},
		{Domain: "default", Tick: 2, Container: "c3", Host: "h2", Values: []float64{0}, Pinned: true},
		{Domain: "d", Tick: 2, Container: "c4", Host: "h3", Values: []float64{}, TraceHost: "h", Pinned: true}}
	data := EncodeSamples(ss)
	gs, err := DecodeSamples(data)
	if err != nil || !reflect.DeepEqual(gs, ss) {
		t.Fatalf("samples round trip = %+v, %v", gs, err)
	}
	// The writer appending sample by sample makes the same bytes, and the
	// reader (views) reads the same samples, pins included.
	var w SampleWriter
	for i := range ss {
		w.Append(&ss[i])
	}
	if !bytes.Equal(w.Bytes(), data) {
		t.Error("SampleWriter differs from EncodeSamples")
	}
	var sr SampleReader
	if err := sr.Reset(data); err != nil {
		t.Fatal(err)
	}
	var s placement.Sample
	for i := 0; sr.Next(&s); i++ {
		if !reflect.DeepEqual(s, ss[i]) {
			t.Errorf("reader sample %d = %+v, want %+v", i, s, ss[i])
		}
	}
	if sr.Err() != nil {
		t.Fatal(sr.Err())
	}
	// The mark is the low bit of the values head (count×2 + pinned), so
	// it costs no byte: sample 0's head follows domain "d", tick -3, "c",
	// "h" and trace host "t"; setting its bit pins it and nothing else.
	headAt := 4 + 2 + 1 + 2 + 2 + 2
	if data[headAt] != 2*2 {
		t.Fatalf("byte %d = %d, not sample 0's head (2 values, unpinned)", headAt, data[headAt])
	}
	flipped := bytes.Clone(data)
	flipped[headAt] |= 1
	fs, err := DecodeSamples(flipped)
	want := slices.Clone(ss)
	want[0].Pinned = true
	if err != nil || !reflect.DeepEqual(fs, want) {
		t.Errorf("pinned bit set: %+v, %v", fs, err)
	}
	if len(EncodeSamples(ss[2:3])) != len(EncodeSamples([]placement.Sample{{Domain: "default", Tick: 2, Container: "c3", Host: "h2", Values: []float64{0}}})) {
		t.Error("the pinned mark costs bytes")
	}
	if _, err := DecodeSamples(EncodeSamples(ss)[:20]); err == nil {
		t.Error("truncated samples decoded without error")
	}
}

func FuzzBinaryBatches(f *testing.F) {
	rb := RawBatch{Source: "x", Header: []string{"a"}, Rows: []RawRow{{Line: 2, Fields: []string{"0"}}}}
	b, _ := rb.MarshalBinary()
	f.Add(b)
	f.Add(EncodeSamples([]placement.Sample{{Domain: "d", Container: "c", Host: "h", Values: []float64{1}}}))
	f.Add(EncodeSamples([]placement.Sample{{Domain: "d", Container: "c", Host: "h", Values: []float64{1}, Pinned: true}, {Container: "x"}}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var rb RawBatch
		uerr := rb.UnmarshalBinary(b)
		ds, derr := DecodeSamples(b)
		var sr SampleReader // must agree with DecodeSamples
		var rs []placement.Sample
		if sr.Reset(b) == nil {
			var s placement.Sample
			for sr.Next(&s) {
				rs = append(rs, s)
			}
		}
		if (sr.Err() == nil) != (derr == nil) || (derr == nil && !bytes.Equal(EncodeSamples(rs), EncodeSamples(ds))) { // bytes: NaN values
			t.Fatalf("sample reader %+v %v, DecodeSamples %+v %v", rs, sr.Err(), ds, derr)
		}
		var rd RowBatchReader // must agree with UnmarshalBinary
		var rows []RawRow
		if err := rd.Reset(b); err == nil {
			for line, fields, ok := rd.Next(); ok; line, fields, ok = rd.Next() {
				rows = append(rows, RawRow{Line: line, Fields: Strings(fields)})
			}
		}
		if (rd.Err() == nil) != (uerr == nil) || (uerr == nil && len(rows) != len(rb.Rows)) {
			t.Fatalf("reader err %v rows %d, UnmarshalBinary err %v rows %d", rd.Err(), len(rows), uerr, len(rb.Rows))
		}
	})
}

// Issue 10: ids that are not UTF-8 stay distinct in the moves log and
// read back to their exact bytes (JSON alone would make both "n\ufffd").
func TestMoveIDsAreBytes(t *testing.T) {
	for _, m := range []placement.Move{
		{ID: "1", Domain: "default", Tick: 3, Container: "c\xff", OldHost: "n\xfe", NewHost: "n\xff", Reason: "r"},
		{ID: "2", Domain: "d\x80", Tick: 3, Container: " c 1 ", OldHost: "n_1", NewHost: "ñ", Reason: "r"},
	} {
		b, err := EncodeMove(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeMove(b)
		if err != nil || got.Container != m.Container || got.OldHost != m.OldHost || got.NewHost != m.NewHost || got.Domain != m.Domain {
			t.Errorf("%s: decoded %+v, %v; want %+v", b, got, err, m)
		}
	}
	b, _ := EncodeMove(placement.Move{ID: "1", Domain: "default", Tick: 3, Container: "c_1", OldHost: "n_1", NewHost: "n_2"})
	if bytes.Contains(b, []byte("_bytes")) {
		t.Errorf("UTF-8 ids got a bytes twin: %s", b)
	}
}

// node_meta's domain column (named by domain_field): each host's declared
// domain and its line; an empty cell declares nothing; a later row naming
// the host in another domain is set aside, naming both domains; without
// domain_field the column is just another column.
func TestReadNodeMetaDomains(t *testing.T) {
	in := "machine_id,domain,cpu\na_1,a,6\nb_1,b,8\nx_1,,4\na_1,b,6\na_1,a,7\n"
	f := UsageFields{Host: "machine_id", Domain: "domain", Metrics: []string{"cpu"}}
	nm, err := ReadNodeMetaFields(strings.NewReader(in), "meta.csv", f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]HostDomain{
		"a_1": {Domain: "a", Where: Position{Source: "meta.csv", Line: 2}},
		"b_1": {Domain: "b", Where: Position{Source: "meta.csv", Line: 3}},
	}
	if !reflect.DeepEqual(nm.Domains, want) {
		t.Errorf("domains = %v, want %v", nm.Domains, want)
	}
	if len(nm.Hosts) != 3 || nm.Hosts[2].Name != "x_1" {
		t.Errorf("hosts = %v, want a_1, b_1, x_1", nm.Hosts)
	}
	if len(nm.Duplicates) != 2 {
		t.Fatalf("duplicates = %v, want lines 5 and 6", nm.Duplicates)
	}
	if got, want := nm.Duplicates[0].Error(), `meta.csv:5: field "domain": value "b": host "a_1" declared again in domain "b", first row (line 2) declared domain "a" and is kept`; !strings.HasPrefix(got, want) {
		t.Errorf("conflict = %q, want prefix %q", got, want)
	}
	if got := nm.Duplicates[1].Reason; !strings.HasPrefix(got, "duplicate host, first row (line 2) kept") {
		t.Errorf("same-domain duplicate = %q", got)
	}
	f.Domain = ""
	nm, err = ReadNodeMetaFields(strings.NewReader(in), "meta.csv", f)
	if err != nil || nm.Domains != nil {
		t.Errorf("without domain_field: domains %v err %v, want none", nm.Domains, err)
	}
	f.Domain = "cluster" // no such column: every host undeclared
	if nm, err = ReadNodeMetaFields(strings.NewReader(in), "meta.csv", f); err != nil || nm.Domains != nil {
		t.Errorf("without the column: domains %v err %v, want none", nm.Domains, err)
	}
}

// BenchmarkDecodeSamplesJSON decodes the records hots produce writes: one
// sample per message, and upstream's batch of 500.
func BenchmarkDecodeSamplesJSON(b *testing.B) {
	rec := func(i int) string {
		return fmt.Sprintf(`{"timestamp":%d,"container_id":"container_%d","machine_id":"node_%d","cpu":%.4f}`, i%24, i, i%100, float64(i%97)/7)
	}
	recs := make([]string, 500)
	for i := range recs {
		recs[i] = rec(i)
	}
	for _, c := range []struct {
		name    string
		payload string
		samples int
	}{
		{"record", rec(7), 1},
		{"batch500", `{"domain":"d","containers":[` + strings.Join(recs, ",") + `]}`, 500},
	} {
		b.Run(c.name, func(b *testing.B) {
			data := []byte(c.payload)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				ss, err := DecodeSamplesJSON(data, Position{Source: "u"}, "", UsageFields{})
				if err != nil || len(ss) != c.samples {
					b.Fatal(len(ss), err)
				}
			}
			b.ReportMetric(float64(c.samples*b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
