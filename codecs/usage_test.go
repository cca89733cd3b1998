package codecs

import (
	"errors"
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
	}
	for _, tt := range tests {
		t.Run(tt.row, func(t *testing.T) {
			got, err := h.Sample(strings.Split(tt.row, ","), 7, make([]float64, 2))
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
	})
}
