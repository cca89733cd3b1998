package codecs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"hots/placement"
)

// DecodeSamplesJSON reads one usage record
//
//	{"domain"?, "<tick_field>": int, "<individual_field>": str, "<host_field>": str, "<metric>": number, ..., "<pinned_field>"?: bool}
//
// or upstream's batch {"containers": [record, ...]} (spec 8.1). Unknown
// keys (other metrics) are ignored; a configured one missing is an error.
// The domain comes from the record's domain field, else the batch's, else
// key (the Kafka message key), else f.DefaultDomain. The pinned field is
// optional: true/false, 1/0, null (false) or a string ParsePinned takes. One bad record fails
// the whole message: a Kafka message is the unit the poison queue takes.
func DecodeSamplesJSON(data []byte, pos Position, key string, f UsageFields) ([]placement.Sample, error) {
	f = f.WithDefaults()
	domainKey := f.Domain
	if domainKey == "" {
		domainKey = "domain"
	}
	fail := func(field, value, reason string) error {
		return &RowError{Position: pos, Field: field, Value: value, Reason: reason, Raw: clip(string(data), 512)}
	}
	var top map[string]json.RawMessage
	if err := unmarshalNumber(data, &top); err != nil {
		return nil, fail("", "", "not a JSON object: "+err.Error())
	}
	domain := key
	if raw, ok := top[domainKey]; ok {
		var d string
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, fail(domainKey, string(raw), "domain is not a string")
		}
		if d != "" {
			domain = d
		}
	}
	if domain == "" {
		domain = f.DefaultDomain
	}
	batch, isBatch := top["containers"]
	if !isBatch {
		s, err := decodeRecord(top, "", domain, domainKey, f, fail)
		if err != nil {
			return nil, err
		}
		return []placement.Sample{s}, nil
	}
	var recs []map[string]json.RawMessage
	if err := unmarshalNumber(batch, &recs); err != nil {
		return nil, fail("containers", "", "not an array of objects: "+err.Error())
	}
	out := make([]placement.Sample, 0, len(recs))
	for i, r := range recs {
		s, err := decodeRecord(r, "containers["+strconv.Itoa(i)+"].", domain, domainKey, f, fail)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func unmarshalNumber(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

func decodeRecord(r map[string]json.RawMessage, prefix, domain, domainKey string, f UsageFields,
	fail func(field, value, reason string) error) (placement.Sample, error) {
	if r == nil {
		return placement.Sample{}, fail(prefix, "null", "record is null")
	}
	str := func(k string) (string, error) {
		raw, ok := r[k]
		if !ok {
			return "", fail(prefix+k, "", "missing field")
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fail(prefix+k, string(raw), "not a string")
		}
		if s == "" {
			return "", fail(prefix+k, "", "empty")
		}
		return s, nil
	}
	s := placement.Sample{Domain: domain}
	if raw, ok := r[domainKey]; ok && prefix != "" {
		var d string
		if json.Unmarshal(raw, &d) == nil && d != "" {
			s.Domain = d
		}
	}
	rawTick, ok := r[f.Tick]
	if !ok {
		return s, fail(prefix+f.Tick, "", "missing field")
	}
	var num json.Number
	if err := unmarshalNumber(rawTick, &num); err != nil {
		// Upstream writes ticks as strings in places (spec 6.6); accept "12".
		var str string
		if json.Unmarshal(rawTick, &str) != nil {
			return s, fail(prefix+f.Tick, string(rawTick), "tick is not an integer")
		}
		num = json.Number(str)
	}
	t, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil {
		return s, fail(prefix+f.Tick, string(rawTick), "tick is not an integer")
	}
	if !TickInRange(t) {
		return s, fail(prefix+f.Tick, string(rawTick), tickRangeReason)
	}
	s.Tick = t
	if s.Container, err = str(f.Individual); err != nil {
		return s, err
	}
	if s.Host, err = str(f.Host); err != nil {
		return s, err
	}
	if raw, ok := r[f.Pinned]; ok {
		p, ok := jsonPinned(raw)
		if !ok {
			return s, fail(prefix+f.Pinned, string(raw), pinnedReason)
		}
		s.Pinned = p
	}
	s.Values = make([]float64, len(f.Metrics))
	for i, m := range f.Metrics {
		raw, ok := r[m]
		if !ok {
			return s, fail(prefix+m, "", "missing metric")
		}
		var n json.Number
		// json.Number would take "1" (quoted) too; a metric must be a number.
		if err := unmarshalNumber(raw, &n); err != nil || bytes.HasPrefix(bytes.TrimSpace(raw), []byte(`"`)) {
			return s, fail(prefix+m, string(raw), "metric is not a number")
		}
		v, err := strconv.ParseFloat(string(n), 64)
		if reason := metricProblem(v, err); reason != "" {
			return s, fail(prefix+m, string(raw), reason)
		}
		s.Values[i] = v
	}
	return s, nil
}

// jsonPinned reads a pinned field: a JSON boolean, 0 or 1, null (false) or
// a string ParsePinned accepts.
func jsonPinned(raw json.RawMessage) (pinned, ok bool) {
	switch v := string(bytes.TrimSpace(raw)); v {
	case "true", "1":
		return true, true
	case "false", "0", "null":
		return false, true
	}
	var str string
	if json.Unmarshal(raw, &str) != nil {
		return false, false
	}
	return ParsePinned(str)
}
