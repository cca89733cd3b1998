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
// exactly encoding/csv's, with one exception: a record that starts on a
// line and fails on a later one (one stray quote makes encoding/csv read
// the rest of the file as one field), or spans more than maxContinuation
// bytes after its first line, is confined to its first line. That line is
// the error (errQuoteSpan, with the column of the quote), and reading goes
// on with the line after it, so one bad quote costs one line.
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
	// first is the first line of the last quoted record (a copy: the
	// buffer moves while the record's other lines are read); on an error
	// it is the record's raw text.
	first []byte
	// pushback holds lines read for a record that was then confined to
	// its first line; they are read again before the buffer.
	pushback []byte
	// maxCont bounds the bytes a quoted record may span after its first
	// line (0: maxContinuation).
	maxCont int
}

const readChunk = 256 << 10

// maxContinuation is how far a quoted field may run past its line. Real
// multi-line fields are short; the bound keeps a stray quote from making
// the reader hold, then re-read, the rest of a large file.
const maxContinuation = 64 << 10

// errQuoteSpan is the error of a record confined to its first line.
var errQuoteSpan = errors.New(`quote not closed into a valid record on this line or within 64 KiB after it (extraneous or missing " in quoted-field); the line is set aside alone and reading goes on with the next one`)

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
	if len(rr.pushback) > 0 {
		line = rr.pushback
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i+1]
		}
		rr.pushback = rr.pushback[len(line):]
		rr.off += int64(len(line))
		return line, true, nil
	}
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
	start, startOff := rr.line, rr.off
	if rr.quoted == nil {
		rr.feed.rr = rr
		rr.quoted = csv.NewReader(&rr.feed)
		rr.quoted.FieldsPerRecord = -1
		rr.quoted.ReuseRecord = true
	}
	rr.first = append(rr.first[:0], raw...)
	rr.feed.pending = rr.first
	rr.feed.cont = rr.feed.cont[:0]
	rr.feed.limit = rr.maxCont
	if rr.feed.limit <= 0 {
		rr.feed.limit = maxContinuation
	}
	rr.feed.capped = false
	base := rr.csvLine // the csv Reader's count of lines before this record
	rr.csvLine++
	rr.feed.eof = false
	rec, err := rr.quoted.Read()
	spanned := rr.line > start
	if rr.feed.eof {
		// encoding/csv counts the end of input as a line: a Reader that
		// saw it would number the records after it one too far.
		rr.quoted, rr.csvLine = nil, 0
	}
	var pe *csv.ParseError
	switch {
	case err != nil && errors.As(err, &pe) && spanned, err == nil && rr.feed.capped:
		// Give the other lines back: they are read again as records of
		// their own.
		rest := rr.pushback
		rr.pushback = make([]byte, 0, len(rr.feed.cont)+len(rest))
		rr.pushback = append(append(rr.pushback, rr.feed.cont...), rest...)
		rr.line, rr.off = start, startOff
		return nil, start, &csv.ParseError{StartLine: int(start), Line: int(start), Column: openQuoteColumn(rr.first), Err: errQuoteSpan}
	case err != nil && pe != nil:
		// Its line numbers count only the lines fed to it.
		pe.StartLine = int(start) + pe.StartLine - int(base) - 1
		pe.Line = int(start) + pe.Line - int(base) - 1
		return nil, start, pe
	case errors.Is(err, io.EOF):
		return nil, start, &csv.ParseError{StartLine: int(start), Line: int(rr.line), Err: csv.ErrQuote}
	case err != nil:
		return nil, start, err
	}
	rr.fields = rr.fields[:0]
	for _, f := range rec {
		rr.fields = append(rr.fields, []byte(f))
	}
	return rr.fields, start, nil
}

// rawRecord is the text of the record the last error was about, without
// its line terminator; valid until the next call of next.
func (rr *recordReader) rawRecord() []byte {
	return bytes.TrimRight(rr.first, "\r\n")
}

// openQuoteColumn is the 1-based column of the quote that opens the field
// left open at the end of line (1 if none is: the caller only asks about
// lines whose record ran on).
func openQuoteColumn(line []byte) int {
	l := bytes.TrimRight(line, "\r\n")
	for i := 0; i < len(l); {
		if l[i] != '"' {
			j := bytes.IndexByte(l[i:], ',')
			if j < 0 {
				return 1
			}
			i += j + 1
			continue
		}
		open := i
		for i++; ; {
			j := bytes.IndexByte(l[i:], '"')
			if j < 0 {
				return open + 1
			}
			i += j + 1
			if i < len(l) && l[i] == '"' {
				i++
				continue
			}
			break
		}
		if i >= len(l) || l[i] != ',' {
			return 1
		}
		i++
	}
	return 1
}

// lineFeeder gives the csv Reader one line per Read, so its buffer never
// holds bytes past the line it asked for. The lines after the first are
// also kept (cont), to be given back if the record is confined; past
// limit bytes of them it reports the end of the input (capped).
type lineFeeder struct {
	rr      *recordReader
	pending []byte
	err     error
	cont    []byte
	limit   int
	capped  bool
	eof     bool // io.EOF was returned
}

func (f *lineFeeder) Read(p []byte) (int, error) {
	if len(f.pending) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		if f.capped {
			f.eof = true
			return 0, io.EOF
		}
		line, ok, err := f.rr.readLine()
		if err != nil {
			f.err = err
			return 0, err
		}
		if !ok {
			f.eof = true
			return 0, io.EOF
		}
		f.rr.line++
		// A copy: the reader's buffer moves when it fills.
		f.cont = append(f.cont, line...)
		if len(f.cont) > f.limit {
			f.capped, f.eof = true, true
			return 0, io.EOF
		}
		f.pending = f.cont[len(f.cont)-len(line):]
		f.rr.csvLine++
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	return n, nil
}
