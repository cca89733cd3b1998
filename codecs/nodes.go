package codecs

import (
	"encoding/json"
	"fmt"
	"strconv"

	"hots/placement"
)

// NodeCapacity is one record of the nodes topic (compacted, key = host):
// a host's capacity per metric, by metric name so producers need not know
// the consumer's metric order, and the domain the host belongs to (empty:
// not declared, the host joins the domain of the first sample naming it;
// see handlers.Placer for the rule when declarations disagree).
type NodeCapacity struct {
	Domain   string             `json:"domain,omitempty"`
	Host     string             `json:"host"`
	Capacity map[string]float64 `json:"capacity"`
	// Schedulable false cordons the host: it is never a move target
	// (placement.Host.Cordoned). Absent means schedulable.
	Schedulable *bool `json:"schedulable,omitempty"`
}

// EncodeNode is the JSON form of a host for the given metric order.
func EncodeNode(domain string, h placement.Host, metrics []string) ([]byte, error) {
	if len(h.Capacity) != len(metrics) {
		return nil, fmt.Errorf("host %s: %d capacities for %d metrics", h.Name, len(h.Capacity), len(metrics))
	}
	nc := NodeCapacity{Domain: domain, Host: h.Name, Capacity: make(map[string]float64, len(metrics))}
	if h.Cordoned {
		f := false
		nc.Schedulable = &f
	}
	for i, m := range metrics {
		nc.Capacity[m] = h.Capacity[i]
	}
	return json.Marshal(nc)
}

// DecodeNode reads a node record; every configured metric must be there.
func DecodeNode(b []byte, pos Position, metrics []string) (NodeCapacity, placement.Host, error) {
	var nc NodeCapacity
	if err := json.Unmarshal(b, &nc); err != nil {
		return nc, placement.Host{}, &RowError{Position: pos, Reason: "not a node record: " + err.Error()}
	}
	if nc.Host == "" {
		return nc, placement.Host{}, &RowError{Position: pos, Field: "host", Reason: "missing host"}
	}
	h := placement.Host{Name: nc.Host, Capacity: make([]float64, len(metrics)), Cordoned: nc.Schedulable != nil && !*nc.Schedulable}
	for i, m := range metrics {
		v, ok := nc.Capacity[m]
		if !ok {
			return nc, placement.Host{}, &RowError{Position: pos, Field: "capacity." + m, Reason: "missing capacity"}
		}
		if reason := capacityProblem(v, nil); reason != "" {
			return nc, placement.Host{}, &RowError{Position: pos, Field: "capacity." + m, Value: strconv.FormatFloat(v, 'g', -1, 64),
				Reason: reason + " (host " + strconv.Quote(nc.Host) + ")"}
		}
		h.Capacity[i] = v
	}
	return nc, h, nil
}
