package file

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
)

// recordReader splits CSV records as encoding/csv does (comma separator,
// FieldsPerRecord -1, empty lines skipped, \r\n as \n, a final \r dropped)
// but without a string per record: fields are views of its buffer, valid
// until the next call. A line without a quote character is split here
// (encoding/csv does exactly that with such a line); a line with one is
// handed to an encoding/csv Reader, fed line by line so that it reads no
// further than its record, which keeps quoted fields, multi-line records
// and the errors (bare or missing quotes, with their line and column)
// exactly encoding/csv's.
type recordReader struct {
	rd      io.Reader // nil: buf[r:w] is all the input
	buf     []byte
	r, w    int
	eof     bool
	line    int64 // physical lines consumed
	off     int64 // bytes consumed before buf[r]
	fields  [][]byte
	quoted  *csv.Reader
	feed    lineFeeder
	csvLine int64 // lines fed to quoted so far
}

const readChunk = 256 << 10

func newStreamReader(rd io.Reader) *recordReader {
	return &recordReader{rd: rd, buf: make([]byte, readChunk)}
}

// newBytesReader reads records from b, whose first line is line+1 and
// first byte is at offset off of its file.
func newBytesReader(b []byte, line, off int64) *recordReader {
	return &recordReader{buf: b, w: len(b), eof: true, line: line, off: off}
}

// resetBytes points the reader at another piece of the same file.
func (rr *recordReader) resetBytes(b []byte, line, off int64) {
	rr.buf, rr.r, rr.w, rr.eof, rr.line, rr.off = b, 0, len(b), true, line, off
}

// offset is the file offset after the last record returned.
func (rr *recordReader) offset() int64 { return rr.off }

// readLine returns the next physical line with its terminator (the last
// one may have none); ok is false at the end of the input.
func (rr *recordReader) readLine() (line []byte, ok bool, err error) {
	scanned := 0
	for {
		if i := bytes.IndexByte(rr.buf[rr.r+scanned:rr.w], '\n'); i >= 0 {
			end := rr.r + scanned + i + 1
			line = rr.buf[rr.r:end]
			rr.off += int64(end - rr.r)
			rr.r = end
			return line, true, nil
		}
		scanned = rr.w - rr.r
		if rr.eof {
			if rr.r == rr.w {
				return nil, false, nil
			}
			line = rr.buf[rr.r:rr.w]
			rr.off += int64(rr.w - rr.r)
			rr.r = rr.w
			return line, true, nil
		}
		if err := rr.fill(); err != nil {
			return nil, false, err
		}
	}
}

// fill moves unread bytes to the front (growing the buffer for a line
// longer than it) and reads more.
func (rr *recordReader) fill() error {
	if rr.r > 0 {
		n := copy(rr.buf, rr.buf[rr.r:rr.w])
		rr.r, rr.w = 0, n
	}
	if rr.w == len(rr.buf) {
		rr.buf = append(rr.buf, make([]byte, len(rr.buf))...)
	}
	n, err := io.ReadAtLeast(rr.rd, rr.buf[rr.w:], 1)
	rr.w += n
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		rr.eof = true
		return nil
	}
	return err
}

// next returns the next record and the line it starts on. At the end it
// returns io.EOF. A *csv.ParseError (line numbers of the file) means the
// record was malformed and consumed: the caller rejects it and goes on;
// any other error is an I/O error.
func (rr *recordReader) next() (fields [][]byte, line int64, err error) {
	for {
		raw, ok, err := rr.readLine()
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			return nil, 0, io.EOF
		}
		rr.line++
		l := raw
		if n := len(l); n > 0 && l[n-1] == '\n' {
			l = l[:n-1]
			if n := len(l); n > 0 && l[n-1] == '\r' {
				l = l[:n-1]
			}
		} else if n > 0 && l[n-1] == '\r' { // last line, no newline
			l = l[:n-1]
		}
		if len(l) == 0 {
			continue
		}
		// One pass over the (short) line finds the commas and any quote.
		rr.fields = rr.fields[:0]
		start := 0
		for i, c := range l {
			if c == ',' {
				rr.fields = append(rr.fields, l[start:i:i])
				start = i + 1
			} else if c == '"' {
				return rr.slowRecord(raw)
			}
		}
		rr.fields = append(rr.fields, l[start:])
		return rr.fields, rr.line, nil
	}
}

// slowRecord parses a record whose first line (raw) has a quote with
// encoding/csv.
func (rr *recordReader) slowRecord(raw []byte) ([][]byte, int64, error) {
	start := rr.line
	if rr.quoted == nil {
		rr.feed.rr = rr
		rr.quoted = csv.NewReader(&rr.feed)
		rr.quoted.FieldsPerRecord = -1
		rr.quoted.ReuseRecord = true
	}
	rr.feed.pending = raw
	base := rr.csvLine // the csv Reader's count of lines before this record
	rr.csvLine++
	rec, err := rr.quoted.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			// Its line numbers count only the lines fed to it.
			pe.StartLine = int(start) + pe.StartLine - int(base) - 1
			pe.Line = int(start) + pe.Line - int(base) - 1
			return nil, start, pe
		}
		if errors.Is(err, io.EOF) {
			return nil, start, &csv.ParseError{StartLine: int(start), Line: int(rr.line), Err: csv.ErrQuote}
		}
		return nil, start, err
	}
	rr.fields = rr.fields[:0]
	for _, f := range rec {
		rr.fields = append(rr.fields, []byte(f))
	}
	return rr.fields, start, nil
}

// lineFeeder gives the csv Reader one line per Read, so its buffer never
// holds bytes past the line it asked for.
type lineFeeder struct {
	rr      *recordReader
	pending []byte
	err     error
}

func (f *lineFeeder) Read(p []byte) (int, error) {
	if len(f.pending) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		line, ok, err := f.rr.readLine()
		if err != nil {
			f.err = err
			return 0, err
		}
		if !ok {
			return 0, io.EOF
		}
		// The view stays valid until the next readLine, which only comes
		// once all of it was handed over.
		f.pending = line
		f.rr.line++
		f.rr.csvLine++
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	return n, nil
}
