package codecs

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
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
	// Domains is each host's declared domain (the domain column, see
	// ReadNodeMetaFields) and the line that declares it. A host absent here
	// has no declared domain: it joins the domain of the first sample that
	// names it (handlers.Placer). Nil without a domain column.
	Domains map[string]HostDomain
}

// HostDomain is a host's declared domain and where it was declared
// (a node_meta line, a nodes topic offset). An empty Domain declares
// nothing: the record only gives a capacity.
type HostDomain struct {
	Domain string
	Where  Position
}

// ReadNodeMetaFile opens and reads a node_meta.csv with the usage fields'
// names (ReadNodeMetaFields).
func ReadNodeMetaFile(path string, f UsageFields) (*NodeMeta, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("node meta file: %w", err)
	}
	defer fh.Close()
	return ReadNodeMetaFields(fh, path, f)
}

// ReadNodeMetaFields is ReadNodeMeta with the usage fields' names: host,
// metrics, and the domain column, which is read when f.Domain
// (connector.parameters.domain_field) is set and node_meta has that column.
// An empty cell declares nothing for its host.
func ReadNodeMetaFields(r io.Reader, source string, f UsageFields) (*NodeMeta, error) {
	return readNodeMeta(r, source, f.Host, f.Domain, f.Metrics)
}

// ReadNodeMeta reads host_field plus one capacity column per metric.
// A missing column, a bad capacity or a file without hosts is an error:
// capacities are configuration, not data, so a run must not guess them.
func ReadNodeMeta(r io.Reader, source, hostField string, metrics []string) (*NodeMeta, error) {
	return readNodeMeta(r, source, hostField, "", metrics)
}

func readNodeMeta(r io.Reader, source, hostField, domainField string, metrics []string) (*NodeMeta, error) {
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
	domainCol := -1
	if i, ok := ix[domainField]; ok && domainField != "" {
		domainCol = i
	}
	nm := &NodeMeta{}
	if domainCol >= 0 {
		nm.Domains = map[string]HostDomain{}
	}
	first := map[string]int64{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// FieldPos is only defined after a successful Read; the parse
			// error carries the line itself.
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, &RowError{Position: Position{Source: source, Line: int64(pe.StartLine)}, Reason: "not a CSV record: " + pe.Error()}
			}
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		line, _ := cr.FieldPos(0)
		pos := Position{Source: source, Line: int64(line)}
		if len(rec) != len(header) {
			return nil, &RowError{Position: pos, Reason: fmt.Sprintf("has %d fields, header has %d", len(rec), len(header)), Raw: strings.Join(rec, ",")}
		}
		// Not trimmed: an id is its bytes, in every file (usage rows keep
		// theirs as they are), so " n_1" here and "n_1" there stay apart.
		name := rec[cols[0]]
		if name == "" {
			return nil, &RowError{Position: pos, Field: hostField, Reason: "empty host id", Raw: strings.Join(rec, ",")}
		}
		if l, dup := first[name]; dup {
			if domainCol >= 0 && rec[domainCol] != nm.Domains[name].Domain {
				// The first row wins as for capacities; the reason names both
				// domains so the conflict is not lost among duplicates.
				nm.Duplicates = append(nm.Duplicates, &RowError{Position: pos, Field: domainField, Value: rec[domainCol],
					Reason: fmt.Sprintf("host %q declared again in domain %q, first row (line %d) declared domain %q and is kept",
						name, rec[domainCol], l, nm.Domains[name].Domain), Raw: strings.Join(rec, ",")})
				continue
			}
			nm.Duplicates = append(nm.Duplicates, &RowError{Position: pos, Field: hostField, Value: name,
				Reason: fmt.Sprintf("duplicate host, first row (line %d) kept", l), Raw: strings.Join(rec, ",")})
			continue
		}
		h := placement.Host{Name: name, Capacity: make([]float64, len(metrics))}
		for k, c := range cols[1:] {
			v, err := strconv.ParseFloat(strings.TrimSpace(rec[c]), 64)
			reason := capacityProblem(v, err)
			if reason != "" {
				return nil, &RowError{Position: pos, Field: metrics[k], Value: rec[c],
					Reason: reason + " (host " + strconv.Quote(name) + ")", Raw: strings.Join(rec, ",")}
			}
			h.Capacity[k] = v
		}
		first[name] = int64(line)
		nm.Hosts = append(nm.Hosts, h)
		if domainCol >= 0 && rec[domainCol] != "" {
			nm.Domains[name] = HostDomain{Domain: rec[domainCol], Where: pos}
		}
	}
	if len(nm.Hosts) == 0 {
		return nil, fmt.Errorf("%s: no host rows", source)
	}
	return nm, nil
}

// capacityProblem says why a capacity is unusable ("" when it is fine).
// Capacities divide every load: a zero one makes each utilisation
// infinite, and one beyond MaxValue makes the squared and summed figures
// overflow; either would change the results silently, so the run stops.
func capacityProblem(v float64, err error) string {
	if reason := metricProblem(v, err); reason != "" {
		return strings.Replace(reason, "metric", "capacity", 1)
	}
	if v == 0 {
		return "capacity is zero (a host that can hold nothing: remove its row or give it a capacity)"
	}
	return ""
}
