package codecs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"hots/placement"
)

// EncodeMove is one JSON line (without the newline) with placement.Move's
// field names, so upstream consumers keep container_name, old_host and
// new_host.
//
// An id that is not valid UTF-8 cannot be a JSON string as it is (the
// encoder would replace its bad bytes by U+FFFD, so two ids could become
// one): such a field also gets a "<field>_bytes" twin holding the exact
// bytes in base64, which DecodeMove prefers, so a move always matches its
// input back.
func EncodeMove(m placement.Move) ([]byte, error) {
	w := moveOut{Move: m}
	w.ContainerBytes = exactBytes(m.Container)
	w.OldHostBytes = exactBytes(m.OldHost)
	w.NewHostBytes = exactBytes(m.NewHost)
	w.DomainBytes = exactBytes(m.Domain)
	return json.Marshal(w)
}

type moveOut struct {
	placement.Move
	ContainerBytes []byte `json:"container_name_bytes,omitempty"`
	OldHostBytes   []byte `json:"old_host_bytes,omitempty"`
	NewHostBytes   []byte `json:"new_host_bytes,omitempty"`
	DomainBytes    []byte `json:"domain_bytes,omitempty"`
}

func exactBytes(s string) []byte {
	if utf8.ValidString(s) {
		return nil
	}
	return []byte(s)
}

// moveWire accepts upstream's "time" (a string, spec 6.6) besides "tick"
// so that upstream moves logs can be read back too.
type moveWire struct {
	moveOut
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
	for _, f := range []struct {
		b []byte
		s *string
	}{{w.ContainerBytes, &m.Container}, {w.OldHostBytes, &m.OldHost}, {w.NewHostBytes, &m.NewHost}, {w.DomainBytes, &m.Domain}} {
		if f.b != nil {
			*f.s = string(f.b)
		}
	}
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
