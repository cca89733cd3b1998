package main

import (
	"encoding/json"
	"math"
	"testing"

	"hots/codecs"
)

// produce writes each usage row as json.Marshal wrote the map of its
// fields, byte for byte, without the map.
func TestRecordEncoderWritesWhatJSONMarshalWrote(t *testing.T) {
	fields := []codecs.UsageFields{
		codecs.UsageFields{Metrics: []string{"cpu", "mem"}, Pinned: "pinned"}.WithDefaults(),
		codecs.UsageFields{Tick: "t", Individual: "z", Host: "a", Metrics: []string{"m"}}.WithDefaults(),
		codecs.UsageFields{Metrics: []string{"machine_id"}}.WithDefaults(), // a metric named as the host field: the map decides
	}
	rows := []traceRow{
		{tick: 0, container: "c_1", host: "n_1", values: []float64{0, 1}},
		{tick: -3, container: "<a&b>", host: "ünï\u2028", values: []float64{1e-7, 1e21}, pinned: true},
		{tick: 1 << 60, container: "q\"\\\n\x00", host: "\xff\xfe", values: []float64{123.456, math.Copysign(0, -1)}},
		{tick: 7, container: "x", host: "y", values: []float64{5e-324, 1e20}, pinned: true},
	}
	for _, f := range fields {
		for _, hasPinned := range []bool{false, true} {
			enc := newRecordEncoder(f, hasPinned)
			for _, r := range rows {
				r.values = r.values[:len(f.Metrics)]
				r.pinned = r.pinned && hasPinned
				got, err := enc.encode(r)
				if err != nil {
					t.Fatal(err)
				}
				obj := map[string]any{f.Tick: r.tick, f.Individual: r.container, f.Host: r.host}
				for i, m := range f.Metrics {
					obj[m] = r.values[i]
				}
				if r.pinned {
					obj[f.Pinned] = true
				}
				want, _ := json.Marshal(obj)
				if string(got) != string(want) {
					t.Errorf("fields %v: %s, want %s", f, got, want)
				}
			}
		}
	}
	if _, err := newRecordEncoder(fields[0], false).encode(traceRow{container: "c", host: "h", values: []float64{math.NaN(), 1}}); err == nil {
		t.Error("a NaN metric was written")
	}
}
