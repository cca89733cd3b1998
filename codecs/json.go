package codecs

import (
	"fmt"
	"strconv"

	"github.com/valyala/fastjson"

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
	// fastjson, not encoding/json: decoding was half of a service's CPU
	// with batches (a map of raw messages per record, a reflective decode
	// per field). Its values point into the parser, so every string kept
	// is copied out before the parser goes back to the pool.
	p := jsonParsers.Get()
	defer jsonParsers.Put(p)
	top, err := p.ParseBytes(data)
	if err == nil && top.Type() != fastjson.TypeObject {
		err = fmt.Errorf("a JSON %s", top.Type())
	}
	if err != nil {
		return nil, fail("", "", "not a JSON object: "+err.Error())
	}
	domain := key
	if raw := top.Get(domainKey); raw != nil {
		d, err := raw.StringBytes()
		if err != nil {
			return nil, fail(domainKey, raw.String(), "domain is not a string")
		}
		if len(d) != 0 {
			domain = string(d)
		}
	}
	if domain == "" {
		domain = f.DefaultDomain
	}
	batch := top.Get("containers")
	if batch == nil {
		s, err := decodeRecord(top, "", domain, domainKey, f, fail)
		if err != nil {
			return nil, err
		}
		return []placement.Sample{s}, nil
	}
	recs, err := batch.Array()
	if err != nil {
		return nil, fail("containers", "", "not an array of objects: "+err.Error())
	}
	out := make([]placement.Sample, 0, len(recs))
	for i, r := range recs {
		if r.Type() != fastjson.TypeObject && r.Type() != fastjson.TypeNull {
			return nil, fail("containers", "", "not an array of objects: element "+strconv.Itoa(i)+" is a JSON "+r.Type().String())
		}
		s, err := decodeRecord(r, "containers["+strconv.Itoa(i)+"].", domain, domainKey, f, fail)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

var jsonParsers fastjson.ParserPool

func decodeRecord(r *fastjson.Value, prefix, domain, domainKey string, f UsageFields,
	fail func(field, value, reason string) error) (placement.Sample, error) {
	if r.Type() == fastjson.TypeNull {
		return placement.Sample{}, fail(prefix, "null", "record is null")
	}
	str := func(k string) (string, error) {
		raw := r.Get(k)
		if raw == nil {
			return "", fail(prefix+k, "", "missing field")
		}
		s, err := raw.StringBytes()
		if err != nil {
			return "", fail(prefix+k, raw.String(), "not a string")
		}
		if len(s) == 0 {
			return "", fail(prefix+k, "", "empty")
		}
		return string(s), nil
	}
	s := placement.Sample{Domain: domain}
	if raw := r.Get(domainKey); raw != nil && prefix != "" {
		if d, err := raw.StringBytes(); err == nil && len(d) != 0 {
			s.Domain = string(d)
		}
	}
	rawTick := r.Get(f.Tick)
	if rawTick == nil {
		return s, fail(prefix+f.Tick, "", "missing field")
	}
	var num []byte
	switch rawTick.Type() {
	case fastjson.TypeNumber:
		num = rawTick.MarshalTo(nil) // the number as written
	case fastjson.TypeString:
		num = rawTick.GetStringBytes() // upstream writes ticks as strings in places (spec 6.6): accept "12"
	default:
		return s, fail(prefix+f.Tick, rawTick.String(), "tick is not an integer")
	}
	t, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil {
		return s, fail(prefix+f.Tick, rawTick.String(), "tick is not an integer")
	}
	if !TickInRange(t) {
		return s, fail(prefix+f.Tick, rawTick.String(), tickRangeReason)
	}
	s.Tick = t
	if s.Container, err = str(f.Individual); err != nil {
		return s, err
	}
	if s.Host, err = str(f.Host); err != nil {
		return s, err
	}
	if raw := r.Get(f.Pinned); raw != nil {
		p, ok := jsonPinned(raw)
		if !ok {
			return s, fail(prefix+f.Pinned, raw.String(), pinnedReason)
		}
		s.Pinned = p
	}
	s.Values = make([]float64, len(f.Metrics))
	var buf [32]byte
	for i, m := range f.Metrics {
		raw := r.Get(m)
		if raw == nil {
			return s, fail(prefix+m, "", "missing metric")
		}
		if raw.Type() != fastjson.TypeNumber { // a quoted "1" is not a number
			return s, fail(prefix+m, raw.String(), "metric is not a number")
		}
		v, err := strconv.ParseFloat(string(raw.MarshalTo(buf[:0])), 64)
		if reason := metricProblem(v, err); reason != "" {
			return s, fail(prefix+m, raw.String(), reason)
		}
		s.Values[i] = v
	}
	return s, nil
}

// jsonPinned reads a pinned field: a JSON boolean, 0 or 1, null (false) or
// a string ParsePinned accepts.
func jsonPinned(raw *fastjson.Value) (pinned, ok bool) {
	switch raw.Type() {
	case fastjson.TypeTrue:
		return true, true
	case fastjson.TypeFalse, fastjson.TypeNull:
		return false, true
	case fastjson.TypeNumber:
		switch raw.String() {
		case "1":
			return true, true
		case "0":
			return false, true
		}
	case fastjson.TypeString:
		return ParsePinned(string(raw.GetStringBytes()))
	}
	return false, false
}
