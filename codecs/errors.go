package codecs

import (
	"fmt"
	"strings"
)

// Position says where a record came from: a file line, or a Kafka topic,
// partition and offset (Line is 0 for Kafka records).
type Position struct {
	Source    string
	Line      int64
	Partition int32
	Offset    int64
}

func (p Position) String() string {
	if p.Line > 0 || p.Source == "" {
		return fmt.Sprintf("%s:%d", p.Source, p.Line)
	}
	return fmt.Sprintf("%s[%d]@%d", p.Source, p.Partition, p.Offset)
}

// RowError is one bad input record: where, which column or field, the
// offending value and why it was refused. Raw holds the record as read
// (for the rejects file) when the decoder has it.
type RowError struct {
	Position
	Field  string
	Value  string
	Reason string
	Raw    string
}

func (e *RowError) Error() string {
	var b strings.Builder
	b.WriteString(e.Position.String())
	if e.Field != "" {
		fmt.Fprintf(&b, ": field %q", e.Field)
	}
	if e.Value != "" {
		fmt.Fprintf(&b, ": value %q", clip(e.Value, 80))
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// MissingColumnError is a header (or a record) without a configured column:
// the whole input is unusable, so callers stop rather than reject rows.
type MissingColumnError struct {
	Source string
	Column string
	Header []string
}

func (e *MissingColumnError) Error() string {
	return fmt.Sprintf("%s: missing column %q (header has %s)", e.Source, e.Column, strings.Join(e.Header, ","))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
