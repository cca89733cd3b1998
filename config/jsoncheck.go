package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// checkJSON finds what encoding/json (and so koanf's JSON parser) lets
// through or reports without a place: a key given twice in one object
// (the last would silently win) and, for a syntax error, its line and
// column.
func checkJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	type frame struct {
		object  bool
		wantKey bool
		path    string
		keys    map[string]int64 // key -> offset where it ended
		index   int
	}
	var stack []*frame
	// valueDone moves the enclosing container past one value.
	valueDone := func() {
		if n := len(stack); n > 0 {
			if f := stack[n-1]; f.object {
				f.wantKey = true
			} else {
				f.index++
			}
		}
	}
	child := func(f *frame, key string) string {
		switch {
		case f == nil:
			return ""
		case !f.object:
			return f.path + "[" + strconv.Itoa(f.index) + "]"
		case f.path == "":
			return key
		}
		return f.path + "." + key
	}
	var key string
	for first := true; ; first = false {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if first {
				return errors.New("empty")
			}
			if len(stack) > 0 {
				return fmt.Errorf("%s: unexpected end of JSON input", position(b, int64(len(b))))
			}
			return nil
		}
		if err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return fmt.Errorf("%s: %v", position(b, se.Offset), se)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%s: unexpected end of JSON input", position(b, int64(len(b))))
			}
			return fmt.Errorf("%s: %v", position(b, dec.InputOffset()), err)
		}
		var top *frame
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		if top == nil && !first {
			return fmt.Errorf("%s: data after the end of the top-level object", position(b, dec.InputOffset()))
		}
		if top != nil && top.object && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				valueDone()
				continue
			}
			key = tok.(string) // encoding/json only returns string keys here
			end := dec.InputOffset()
			if prev, dup := top.keys[key]; dup {
				return fmt.Errorf("%s: duplicate key %q (first at %s): the last would silently win",
					position(b, keyStart(b, end)), child(top, key), position(b, keyStart(b, prev)))
			}
			top.keys[key] = end
			top.wantKey = false
			continue
		}
		switch d, _ := tok.(json.Delim); d {
		case '{', '[':
			if first && d != '{' {
				return fmt.Errorf("%s: the configuration must be a JSON object", position(b, dec.InputOffset()-1))
			}
			stack = append(stack, &frame{object: d == '{', wantKey: true, path: child(top, key), keys: map[string]int64{}})
		case '}', ']':
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			if first {
				return fmt.Errorf("%s: the configuration must be a JSON object", position(b, 0))
			}
			valueDone()
		}
	}
}

// keyStart is the offset of the opening quote of the key token ending at
// end (encoding/json reports offsets after tokens).
func keyStart(b []byte, end int64) int64 {
	i := int64(bytes.LastIndexByte(b[:max(end-1, 0)], '"'))
	for i > 0 && b[i-1] == '\\' { // an escaped quote inside the key
		i = int64(bytes.LastIndexByte(b[:i-1], '"'))
	}
	return max(i, 0)
}

// position is "line L, column C" (1-based, columns in bytes) of offset.
func position(b []byte, off int64) string {
	off = min(max(off, 0), int64(len(b)))
	before := b[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return "line " + strconv.Itoa(line) + ", column " + strconv.Itoa(col)
}
