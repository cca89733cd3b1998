package codecs

import (
	"math"
	"strconv"
	"strings"

	"hots/placement"
)

// UsageFields names the columns (CSV) or keys (JSON) of a usage sample, as
// upstream's connector.parameters do.
type UsageFields struct {
	Tick       string   // tick_field, default "timestamp"
	Individual string   // individual_field, default "container_id"
	Host       string   // host_field, default "machine_id"
	Domain     string   // domain_field; empty = no column (JSON still reads "domain")
	Metrics    []string // default ["cpu"]
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
	if len(f.Metrics) == 0 {
		f.Metrics = []string{"cpu"}
	}
	if f.DefaultDomain == "" {
		f.DefaultDomain = placement.DefaultDomain
	}
	return f
}

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
	h := &UsageHeader{Source: source, Names: names, Domain: -1, fields: f}
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
	return t, nil
}

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
	return s, nil
}

// metricProblem says why a usage value is unusable ("" when it is fine):
// capacities and loads are sums, so NaN, infinities and negatives would
// poison every figure computed from them.
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
	}
	return ""
}
