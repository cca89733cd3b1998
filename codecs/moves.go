package codecs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"hots/placement"
)

// EncodeMove is one JSON line (without the newline) with placement.Move's
// field names, so upstream consumers keep container_name, old_host and
// new_host.
func EncodeMove(m placement.Move) ([]byte, error) { return json.Marshal(m) }

// moveWire accepts upstream's "time" (a string, spec 6.6) besides "tick"
// so that upstream moves logs can be read back too.
type moveWire struct {
	placement.Move
	Tick *int64          `json:"tick"`
	Time json.RawMessage `json:"time"`
}

// DecodeMove reads one move line. A missing id is recomputed from
// (domain, tick, container): it is deterministic by design.
func DecodeMove(b []byte) (placement.Move, error) {
	var w moveWire
	if err := json.Unmarshal(b, &w); err != nil {
		return placement.Move{}, fmt.Errorf("move: %w", err)
	}
	m := w.Move
	switch {
	case w.Tick != nil:
		m.Tick = *w.Tick
	case len(w.Time) > 0:
		var s string
		if err := json.Unmarshal(w.Time, &s); err != nil {
			if err := json.Unmarshal(w.Time, &m.Tick); err != nil {
				return placement.Move{}, errors.New(`move: field "time" is not a tick`)
			}
		} else if m.Tick, err = strconv.ParseInt(s, 10, 64); err != nil {
			return placement.Move{}, errors.New(`move: field "time" is not an integer tick`)
		}
	default:
		return placement.Move{}, errors.New(`move: missing field "tick"`)
	}
	for _, f := range []struct{ name, v string }{{"container_name", m.Container}, {"old_host", m.OldHost}, {"new_host", m.NewHost}} {
		if f.v == "" {
			return placement.Move{}, fmt.Errorf("move: missing field %q", f.name)
		}
	}
	if m.Domain == "" {
		m.Domain = placement.DefaultDomain
	}
	if m.ID == "" {
		m.ID = placement.MoveID(m.Domain, m.Tick, m.Container)
	}
	return m, nil
}
