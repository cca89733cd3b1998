package codecs

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"hots/placement"
)

// NodeMeta is node_meta.csv: hosts in file order (the order matters to the
// method, spec 1.2) and the duplicate rows that were set aside.
type NodeMeta struct {
	Hosts []placement.Host
	// Duplicates are later rows of a host already listed: the first row
	// wins (as upstream's LP and thesis code do; its re-assignment heuristic
	// takes the last, spec 1.2), the others are reported here.
	Duplicates []*RowError
}

// ReadNodeMeta reads host_field plus one capacity column per metric.
// A missing column, a bad capacity or a file without hosts is an error:
// capacities are configuration, not data, so a run must not guess them.
func ReadNodeMeta(r io.Reader, source, hostField string, metrics []string) (*NodeMeta, error) {
	if hostField == "" {
		hostField = "machine_id"
	}
	if len(metrics) == 0 {
		metrics = []string{"cpu"}
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: empty file (no header)", source)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	ix := map[string]int{}
	for i, n := range header {
		n = strings.TrimSpace(strings.TrimPrefix(n, "\ufeff"))
		header[i] = n
		if _, dup := ix[n]; !dup {
			ix[n] = i
		}
	}
	cols := make([]int, 0, len(metrics)+1)
	for _, c := range append([]string{hostField}, metrics...) {
		i, ok := ix[c]
		if !ok {
			return nil, &MissingColumnError{Source: source, Column: c, Header: append([]string(nil), header...)}
		}
		cols = append(cols, i)
	}
	nm := &NodeMeta{}
	first := map[string]int64{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		pos := Position{Source: source, Line: int64(line)}
		if len(rec) != len(header) {
			return nil, &RowError{Position: pos, Reason: fmt.Sprintf("has %d fields, header has %d", len(rec), len(header)), Raw: strings.Join(rec, ",")}
		}
		name := strings.TrimSpace(rec[cols[0]])
		if name == "" {
			return nil, &RowError{Position: pos, Field: hostField, Reason: "empty host id", Raw: strings.Join(rec, ",")}
		}
		if l, dup := first[name]; dup {
			nm.Duplicates = append(nm.Duplicates, &RowError{Position: pos, Field: hostField, Value: name,
				Reason: fmt.Sprintf("duplicate host, first row (line %d) kept", l), Raw: strings.Join(rec, ",")})
			continue
		}
		h := placement.Host{Name: name, Capacity: make([]float64, len(metrics))}
		for k, c := range cols[1:] {
			v, err := strconv.ParseFloat(strings.TrimSpace(rec[c]), 64)
			if reason := metricProblem(v, err); reason != "" {
				return nil, &RowError{Position: pos, Field: metrics[k], Value: rec[c], Reason: strings.Replace(reason, "metric", "capacity", 1), Raw: strings.Join(rec, ",")}
			}
			h.Capacity[k] = v
		}
		first[name] = int64(line)
		nm.Hosts = append(nm.Hosts, h)
	}
	if len(nm.Hosts) == 0 {
		return nil, fmt.Errorf("%s: no host rows", source)
	}
	return nm, nil
}
