package file

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
)

// DefaultBatchRows is how many records go in one message: enough to make
// per-message costs (router, gochannel, ack) negligible per sample.
const DefaultBatchRows = 1000

// Config configures a Subscriber.
type Config struct {
	// UsagePath is container_usage.csv.
	UsagePath string
	Fields    codecs.UsageFields
	BatchRows int
	// KnownHosts are node_meta's hosts; a host outside it is warned about
	// once. Nil disables the check.
	KnownHosts map[string]bool
	// Reject receives bad rows (required: bad rows are never dropped silently).
	Reject func(*codecs.RowError)
	// Progress, if set, gets bytes consumed and file size after each tick.
	Progress func(done, total int64)
	Logger   *slog.Logger
}

// Subscriber replays a usage CSV in tick order (see the package doc).
// Subscribe may be called once; the topic name is not used.
type Subscriber struct {
	cfg    Config
	hdr    *codecs.UsageHeader
	size   int64
	info   os.FileInfo // at the scan: the file the run replays
	sorted bool
	// lastTick is the largest valid tick seen by the scan (anyTick: one was).
	lastTick int64
	anyTick  bool
	ticks    []int64             // ascending (unsorted files)
	index    map[int64]*spanList // tick -> rows in file order (unsorted files)
	long     map[int64]int64     // offset -> length of rows too long for a rowSpan
	rows     int64               // data rows seen by the scan

	once      sync.Once
	closing   chan struct{}
	closeOnce sync.Once
	failMu    sync.Mutex
	failErr   error
	done      chan struct{}
	wg        sync.WaitGroup
	err       error

	// Counts, updated per row without a lock.
	nRows, nTicks, nRejected atomic.Int64
	grown                    atomic.Int64 // bytes appended during the run (not replayed)
	unknownMu                sync.Mutex
	unknownHosts             []string
}

// rowSpan is where one record is in the file, in 16 bytes: offset and
// length packed in pos (offset < 16 TiB; a length that does not fit is
// kept in Subscriber.long), and its line.
type rowSpan struct {
	pos  uint64
	line int64
}

const (
	spanLenBits = 20
	spanLong    = 1<<spanLenBits - 1
	maxSpanOff  = 1<<(64-spanLenBits) - 1
)

// span is a rowSpan unpacked, for reading it back.
type span struct {
	off, n, line int64
}

func (s *Subscriber) pack(off, n, line int64) (rowSpan, error) {
	if off > maxSpanOff {
		return rowSpan{}, fmt.Errorf("%s: larger than 16 TiB, too large to index", s.cfg.UsagePath)
	}
	ln := uint64(n)
	if n >= spanLong {
		if s.long == nil {
			s.long = map[int64]int64{}
		}
		s.long[off], ln = n, spanLong
	}
	return rowSpan{pos: uint64(off)<<spanLenBits | ln, line: line}, nil
}

func (s *Subscriber) unpack(sp rowSpan) span {
	off, n := int64(sp.pos>>spanLenBits), int64(sp.pos&spanLong)
	if n == spanLong {
		n = s.long[off]
	}
	return span{off: off, n: n, line: sp.line}
}

// spanList is one tick's rows in file order, in blocks that are never
// copied: appending to one slice would copy it at every growth and leave
// the old arrays to the collector, doubling the index at its peak.
type spanList struct {
	blocks [][]rowSpan
}

func (l *spanList) add(sp rowSpan) {
	n := len(l.blocks)
	if n == 0 || len(l.blocks[n-1]) == cap(l.blocks[n-1]) {
		size := 8
		if n > 0 {
			size = min(2*cap(l.blocks[n-1]), 8192)
		}
		l.blocks = append(l.blocks, make([]rowSpan, 0, size))
		n++
	}
	l.blocks[n-1] = append(l.blocks[n-1], sp)
}

// Stats are the Subscriber's counts, final once Done is closed.
type Stats struct {
	Rows         int64 // data rows read (good and bad)
	Ticks        int64 // ticks emitted (watermarks acked)
	Rejected     int64 // rows rejected by the connector itself
	UnknownHosts []string
	Sorted       bool
	// Grown is how many bytes were appended to the file during the run;
	// they were not replayed.
	Grown int64
}

// NewSubscriber opens and checks the file (header, columns, at least one
// data row) and indexes it when it is not sorted by tick. Errors name the
// file and, for a missing column, the column.
func NewSubscriber(cfg Config) (*Subscriber, error) {
	if cfg.Reject == nil {
		return nil, errors.New("file subscriber: Config.Reject is required")
	}
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = DefaultBatchRows
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Fields = cfg.Fields.WithDefaults()
	s := &Subscriber{cfg: cfg, closing: make(chan struct{}), done: make(chan struct{})}
	if err := s.scan(); err != nil {
		return nil, err
	}
	return s, nil
}

func openRecords(path string) (*os.File, *recordReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return f, newStreamReader(f), nil
}

// isParseError tells a malformed record (reject it and go on) from an I/O
// error (stop).
func isParseError(err error) bool {
	var pe *csv.ParseError
	return errors.As(err, &pe)
}

func (s *Subscriber) readHeader(rr *recordReader) error {
	h, _, err := rr.next()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: empty file (no header)", s.cfg.UsagePath)
	}
	if err != nil {
		return fmt.Errorf("%s: header: %w", s.cfg.UsagePath, err)
	}
	s.hdr, err = codecs.NewUsageHeader(s.cfg.UsagePath, codecs.Strings(h), s.cfg.Fields)
	return err
}

// scan checks sortedness (stopping at the first tick that goes back) and,
// for an unsorted file, builds the index in a second pass. Records are
// split without strings and only the tick is parsed.
func (s *Subscriber) scan() error {
	f, rr, err := openRecords(s.cfg.UsagePath)
	if err != nil {
		return fmt.Errorf("usage file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("usage file: %w", err)
	}
	s.size, s.info = st.Size(), st
	if err := s.readHeader(rr); err != nil {
		return err
	}
	s.sorted = true
	var last int64
	var any bool
	for {
		rec, _, err := rr.next()
		if err != nil && errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !isParseError(err) {
			return fmt.Errorf("%s: %w", s.cfg.UsagePath, err)
		}
		s.rows++
		if err != nil {
			continue // rejected when emitted
		}
		t, ok := s.hdr.TickOf(rec)
		if !ok {
			continue
		}
		if any && t < last {
			s.sorted = false
			break
		}
		last, any = t, true
	}
	s.lastTick, s.anyTick = last, any
	if s.rows == 0 {
		return fmt.Errorf("%s: no data rows", s.cfg.UsagePath)
	}
	if s.sorted {
		return nil
	}
	return s.buildIndex()
}

func (s *Subscriber) buildIndex() error {
	f, rr, err := openRecords(s.cfg.UsagePath)
	if err != nil {
		return fmt.Errorf("usage file: %w", err)
	}
	defer f.Close()
	if err := s.readHeader(rr); err != nil {
		return err
	}
	s.index = map[int64]*spanList{}
	s.rows = 0
	start := rr.offset()
	for {
		rec, line, err := rr.next()
		if err != nil && errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !isParseError(err) {
			return fmt.Errorf("%s: %w", s.cfg.UsagePath, err)
		}
		end := rr.offset()
		s.rows++
		if err != nil {
			s.nRows.Add(1) // rows in the index are counted when emitted
			s.reject(csvError(s.cfg.UsagePath, err, line, rr.rawRecord()))
		} else if t, ok := s.hdr.TickOf(rec); !ok {
			s.nRows.Add(1)
			s.reject(s.tickError(rec, line))
		} else {
			l := s.index[t]
			if l == nil {
				l = &spanList{}
				s.index[t] = l
				s.ticks = append(s.ticks, t)
			}
			sp, err := s.pack(start, end-start, line)
			if err != nil {
				return err
			}
			l.add(sp)
		}
		start = end
	}
	slices.Sort(s.ticks)
	if n := len(s.ticks); n > 0 {
		s.lastTick, s.anyTick = s.ticks[n-1], true
	}
	return nil
}

// LastTick is the largest valid tick of the file (ok false: none).
func (s *Subscriber) LastTick() (tick int64, ok bool) { return s.lastTick, s.anyTick }

// sameFile refuses a file that is not the one scanned (replaced by a
// rename, as sed -i does), since the index and the checks describe the
// other one.
func (s *Subscriber) sameFile(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("usage file: %w", err)
	}
	if !os.SameFile(st, s.info) {
		return fmt.Errorf("%s: changed while replaying: replaced by another file since the run started", s.cfg.UsagePath)
	}
	return nil
}

// checkUnchanged runs after the replay: a file that shrank was not
// replayed whole, which fails the run; one that grew had rows appended
// after the start, which the run did not read (it replays the file as it
// was), and that is said loudly.
func (s *Subscriber) checkUnchanged(f *os.File, lastTick int64) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("usage file: %w", err)
	}
	switch {
	case st.Size() < s.size:
		return fmt.Errorf("%s: changed while replaying: %d bytes now, %d when the run started (truncated); ticks after %d may be missing",
			s.cfg.UsagePath, st.Size(), s.size, lastTick)
	case st.Size() > s.size:
		s.cfg.Logger.Warn("usage file grew during the run: the rows appended after the start were not replayed",
			"file", s.cfg.UsagePath, "bytes_at_start", s.size, "bytes_now", st.Size())
		s.grown.Store(st.Size() - s.size)
	case !st.ModTime().Equal(s.info.ModTime()):
		s.cfg.Logger.Warn("usage file was modified during the run (same size): the replay may mix old and new rows",
			"file", s.cfg.UsagePath)
	}
	return nil
}

// tickError is the RowError of a record TickOf refused (the string path
// says why).
func (s *Subscriber) tickError(rec [][]byte, line int64) *codecs.RowError {
	_, err := s.hdr.ParseTick(codecs.Strings(rec), line)
	if re, ok := err.(*codecs.RowError); ok {
		return re
	}
	return &codecs.RowError{Position: codecs.Position{Source: s.cfg.UsagePath, Line: line}, Reason: "tick is not an integer"}
}

// csvError is the reject of a malformed record; raw is its line as read,
// so the rejects file shows what to fix.
func csvError(src string, err error, line int64, raw []byte) *codecs.RowError {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		line = int64(pe.StartLine)
	}
	return &codecs.RowError{Position: codecs.Position{Source: src, Line: line}, Reason: "not a CSV record: " + err.Error(), Raw: string(raw)}
}

func (s *Subscriber) reject(e *codecs.RowError) {
	s.nRejected.Add(1)
	s.cfg.Reject(e)
}

// Sorted reports whether the file was sorted by tick (and so streamed).
func (s *Subscriber) Sorted() bool { return s.sorted }

// Header is the file's located columns.
func (s *Subscriber) Header() *codecs.UsageHeader { return s.hdr }

// Subscribe starts the replay. The channel is closed by Close or when ctx
// is done.
func (s *Subscriber) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	started := false
	s.once.Do(func() {
		started = true
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer close(out)
			err := s.emit(ctx, out)
			if errors.Is(err, errClosed) {
				err = errors.New("file subscriber closed before the end of the trace")
				if f := s.failure(); f != nil {
					err = f
				}
			}
			s.err = err
			close(s.done)
			// Keep the channel open until Close or until the subscription's
			// context ends: Watermill subscribers close it on either.
			select {
			case <-s.closing:
			case <-ctx.Done():
			}
		}()
	})
	if !started {
		return nil, errors.New("file subscriber: Subscribe called twice")
	}
	return out, nil
}

// Done is closed when every tick was emitted and acked (or emission failed:
// see Err).
func (s *Subscriber) Done() <-chan struct{} { return s.done }

// Err is the reason emission stopped early, nil after a full replay.
func (s *Subscriber) Err() error { return s.err }

// Stats returns the counts so far.
func (s *Subscriber) Stats() Stats {
	s.unknownMu.Lock()
	defer s.unknownMu.Unlock()
	return Stats{Rows: s.nRows.Load(), Ticks: s.nTicks.Load(), Rejected: s.nRejected.Load(),
		UnknownHosts: slices.Clone(s.unknownHosts), Sorted: s.sorted, Grown: s.grown.Load()}
}

// Close stops the replay and closes the channel.
func (s *Subscriber) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	s.wg.Wait()
	return nil
}

// fail ends the replay with err (bad_input stop). It may be called from
// the emitting goroutine itself: emission stops at its next send.
func (s *Subscriber) fail(err error) {
	s.failMu.Lock()
	if s.failErr == nil {
		s.failErr = err
	}
	s.failMu.Unlock()
	s.closeOnce.Do(func() { close(s.closing) })
}

func (s *Subscriber) failure() error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	return s.failErr
}

var errClosed = errors.New("file subscriber closed")

// mapFiles lets tests take the ReadAt path where mapping works.
var mapFiles = true

// emitter accumulates one tick's records into batches.
type emitter struct {
	s        *Subscriber
	ctx      context.Context
	out      chan<- *message.Message
	tick     int64
	tickSeq  uint32 // counts ticks started, for the duplicate stamps
	batch    codecs.RowBatchWriter
	first    int64 // line of the batch's first row
	sizeHint int
	consumed int64

	def     *domainSyms            // the default domain's
	domains map[string]*domainSyms // by domain column value
	hosts   codecs.Symbols         // host names
	unknown map[string]bool
}

// domainSyms interns one domain's container names (codecs.Symbols). Each
// container has a dense id; the per-tick duplicate check is a stamp per id
// instead of a map per tick, and the last host checked against node_meta
// is remembered per container, so a row costs at most one hash lookup.
type domainSyms struct {
	name     string
	ids      codecs.Symbols
	prev     int32    // id of the last container looked up (-1: none)
	stamp    []uint32 // tickSeq of the tick in which the container was last seen
	kept     []int64  // line of that row
	lastHost []int32  // host id last checked against KnownHosts (-1: none)
}

// id returns the container's id, interning a new name (trying first the
// container that followed the previous one last time).
func (d *domainSyms) id(c []byte) int32 {
	id := d.ids.InternBytesAfter(d.prev, c)
	if int(id) == len(d.stamp) {
		d.stamp = append(d.stamp, 0)
		d.kept = append(d.kept, 0)
		d.lastHost = append(d.lastHost, -1)
	}
	d.prev = id
	return id
}

func newDomainSyms(name string) *domainSyms {
	return &domainSyms{name: name, prev: -1}
}

func (e *emitter) domain(d []byte) *domainSyms {
	if d == nil {
		return e.def
	}
	ds := e.domains[string(d)]
	if ds == nil {
		ds = newDomainSyms(string(d))
		e.domains[ds.name] = ds
	}
	return ds
}

func (s *Subscriber) emit(ctx context.Context, out chan<- *message.Message) error {
	e := &emitter{s: s, ctx: ctx, out: out, unknown: map[string]bool{},
		def: newDomainSyms(s.hdr.Fields().DefaultDomain), domains: map[string]*domainSyms{}}
	e.batch.Reset(s.cfg.UsagePath, s.hdr.Names, 0)
	if s.sorted {
		return e.stream()
	}
	return e.indexed()
}

// stream replays a tick-sorted file in one pass.
func (e *emitter) stream() error {
	f, err := os.Open(e.s.cfg.UsagePath)
	if err != nil {
		return fmt.Errorf("usage file: %w", err)
	}
	defer f.Close()
	if err := e.s.sameFile(f); err != nil {
		return err
	}
	// The file as it was at the scan: rows appended since are not part of
	// the run, as they are not in an unsorted file's index.
	rr := newStreamReader(io.LimitReader(f, e.s.size))
	if _, _, err := rr.next(); err != nil {
		return fmt.Errorf("%s: header: %w", e.s.cfg.UsagePath, err)
	}
	h := e.s.hdr
	open := false
	for {
		rec, line, err := rr.next()
		if err != nil && errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !isParseError(err) {
			return fmt.Errorf("%s: %w", e.s.cfg.UsagePath, err)
		}
		e.consumed = rr.offset()
		e.s.nRows.Add(1)
		if err != nil {
			e.s.reject(csvError(e.s.cfg.UsagePath, err, line, rr.rawRecord()))
			continue
		}
		t, ok := h.TickOf(rec)
		if !ok {
			e.s.reject(e.s.tickError(rec, line))
			continue
		}
		if open && t < e.tick {
			e.s.reject(&codecs.RowError{Position: codecs.Position{Source: e.s.cfg.UsagePath, Line: line},
				Field: h.Names[h.Tick], Value: string(rec[h.Tick]), Raw: joinFields(codecs.Strings(rec)),
				Reason: fmt.Sprintf("tick goes backwards (after tick %d) in a file read as sorted", e.tick)})
			continue
		}
		if open && t > e.tick {
			if err := e.endTick(); err != nil {
				return err
			}
		}
		if !open || t > e.tick {
			e.startTick(t)
			open = true
		}
		if err := e.add(rec, line); err != nil {
			return err
		}
	}
	if open {
		if err := e.endTick(); err != nil {
			return err
		}
	}
	return e.s.checkUnchanged(f, e.tick)
}

// indexed replays an unsorted file tick by tick from the index. Where the
// platform allows, the file is memory-mapped, so reading a row back is a
// memory access rather than a system call (the mapping is the page cache:
// it does not count against the heap, and the kernel drops its pages under
// pressure). Otherwise runs of adjacent rows are read with one ReadAt each.
func (e *emitter) indexed() (err error) {
	f, err := os.Open(e.s.cfg.UsagePath)
	if err != nil {
		return fmt.Errorf("usage file: %w", err)
	}
	defer f.Close()
	if err := e.s.sameFile(f); err != nil {
		return err
	}
	var data []byte
	var unmap func()
	if mapFiles {
		data, unmap = mapFile(f)
	}
	if data != nil {
		defer unmap()
		// A file truncated under the mapping faults on access: make that a
		// panic of this goroutine, recovered into an error.
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if r := recover(); r != nil {
				f, fault := r.(interface{ Addr() uintptr })
				base := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
				if !fault || f.Addr() < base || f.Addr() >= base+uintptr(len(data)) {
					panic(r) // not a fault in the mapping: a bug, not the file
				}
				err = fmt.Errorf("%s: changed while replaying: %v", e.s.cfg.UsagePath, r)
			}
		}()
	}
	rr := newBytesReader(nil, 0, 0)
	var buf []byte
	var chunk []span
	for _, t := range e.s.ticks {
		e.startTick(t)
		list := e.s.index[t]
		bi, si := 0, 0 // block, span in block
		for bi < len(list.blocks) {
			chunk = chunk[:0]
			for len(chunk) < e.s.cfg.BatchRows && bi < len(list.blocks) {
				chunk = append(chunk, e.s.unpack(list.blocks[bi][si]))
				if si++; si == len(list.blocks[bi]) {
					bi, si = bi+1, 0
				}
			}
			if data == nil {
				if buf, err = readSpans(f, chunk, buf[:0]); err != nil {
					return fmt.Errorf("%s: %w", e.s.cfg.UsagePath, err)
				}
				rr.resetBytes(buf, 0, 0)
			}
			for _, sp := range chunk {
				if data != nil {
					end := sp.off + sp.n
					if end > int64(len(data)) {
						return fmt.Errorf("%s:%d: changed while replaying: file shorter than indexed", e.s.cfg.UsagePath, sp.line)
					}
					rr.resetBytes(data[sp.off:end], 0, sp.off)
				}
				rec, _, err := rr.next()
				e.s.nRows.Add(1)
				e.consumed += sp.n
				if err != nil { // the index pass parsed it: the file changed under us
					return fmt.Errorf("%s:%d: changed while replaying: %v", e.s.cfg.UsagePath, sp.line, err)
				}
				if err := e.add(rec, sp.line); err != nil {
					return err
				}
			}
		}
		if err := e.endTick(); err != nil {
			return err
		}
	}
	return e.s.checkUnchanged(f, e.tick)
}

// readSpans reads the chunk's records into buf with one ReadAt per run of
// adjacent rows, each run ending with a newline.
func readSpans(f *os.File, chunk []span, buf []byte) ([]byte, error) {
	for i := 0; i < len(chunk); {
		j, end := i+1, chunk[i].off+chunk[i].n
		for j < len(chunk) && chunk[j].off == end {
			end += chunk[j].n
			j++
		}
		l := len(buf)
		buf = slices.Grow(buf, int(end-chunk[i].off)+1)[:l+int(end-chunk[i].off)]
		if n, err := f.ReadAt(buf[l:], chunk[i].off); n < len(buf)-l {
			if err == nil || errors.Is(err, io.EOF) {
				err = errors.New("changed while replaying: file shorter than indexed")
			}
			return buf, err
		}
		if buf[len(buf)-1] != '\n' {
			buf = append(buf, '\n') // last line of a file without a final newline
		}
		i = j
	}
	return buf, nil
}

func (e *emitter) startTick(t int64) {
	e.tick = t
	e.tickSeq++
}

// add checks a record of the current tick (duplicate, unknown host) and appends it to the batch. The rest of the validation is the
// decode stage's.
func (e *emitter) add(rec [][]byte, line int64) error {
	h := e.s.hdr
	if len(rec) != len(h.Names) {
		e.s.reject(h.CheckWidth(codecs.Strings(rec), line).(*codecs.RowError))
		return nil
	}
	ds := e.domain(h.DomainBytes(rec))
	c, host := rec[h.Container], rec[h.Host]
	id := int32(-1)
	if len(c) > 0 { // an empty id is the decode stage's to reject
		id = ds.id(c)
		if ds.stamp[id] == e.tickSeq {
			e.s.reject(&codecs.RowError{Position: codecs.Position{Source: e.s.cfg.UsagePath, Line: line},
				Field: h.Names[h.Container], Value: string(c), Raw: joinFields(codecs.Strings(rec)),
				Reason: fmt.Sprintf("duplicate (tick %d, container): first row (line %d) kept", e.tick, ds.kept[id])})
			return nil
		}
		ds.stamp[id], ds.kept[id] = e.tickSeq, line
	}
	if e.s.cfg.KnownHosts != nil && len(host) > 0 && (id < 0 || ds.lastHost[id] < 0 || e.hosts.Name(ds.lastHost[id]) != string(host)) {
		hid := e.hosts.InternBytes(host)
		if id >= 0 {
			ds.lastHost[id] = hid
		}
		if hs := e.hosts.Name(hid); !e.s.cfg.KnownHosts[hs] && !e.unknown[hs] {
			e.unknown[hs] = true
			e.s.unknownMu.Lock()
			e.s.unknownHosts = append(e.s.unknownHosts, hs)
			e.s.unknownMu.Unlock()
			e.s.cfg.Logger.Warn("host not in node_meta: samples kept, host has no known capacity and is never a move target",
				"file", e.s.cfg.UsagePath, "line", line, "host", hs)
		}
	}
	if e.batch.Rows() == 0 {
		e.first = line
	}
	e.batch.AppendRow(line, rec)
	if e.batch.Rows() >= e.s.cfg.BatchRows {
		return e.flush()
	}
	return nil
}

func (e *emitter) flush() error {
	if e.batch.Rows() == 0 {
		return nil
	}
	e.sizeHint = max(e.sizeHint, e.batch.Len())
	payload := e.batch.Bytes()
	e.batch.Reset(e.s.cfg.UsagePath, e.s.hdr.Names, e.sizeHint)
	m := message.NewMessage(e.s.cfg.UsagePath+":"+strconv.FormatInt(e.first, 10), payload)
	e.meta(m, codecs.KindRows)
	m.Metadata.Set(codecs.MetaFirstLine, strconv.FormatInt(e.first, 10))
	return e.send(m)
}

func (e *emitter) meta(m *message.Message, kind string) {
	m.Metadata.Set(codecs.MetaKind, kind)
	m.Metadata.Set(codecs.MetaTick, strconv.FormatInt(e.tick, 10))
	m.Metadata.Set(codecs.MetaSource, e.s.cfg.UsagePath)
	if e.s.hdr.Domain < 0 {
		m.Metadata.Set(codecs.MetaDomain, e.s.hdr.Fields().DefaultDomain)
	}
}

// endTick flushes the tick's last batch and sends its watermark; when the
// watermark is acked the whole pipeline is done with the tick.
func (e *emitter) endTick() error {
	if err := e.flush(); err != nil {
		return err
	}
	m := message.NewMessage(fmt.Sprintf("%s:tick:%d", e.s.cfg.UsagePath, e.tick), nil)
	e.meta(m, codecs.KindWatermark)
	if err := e.send(m); err != nil {
		return err
	}
	e.s.nTicks.Add(1)
	if e.s.cfg.Progress != nil {
		e.s.cfg.Progress(e.consumed, e.s.size)
	}
	return nil
}

// send delivers one message and waits for its ack; a nack resends it, as
// Watermill subscribers do.
func (e *emitter) send(m *message.Message) error {
	for {
		msg := m.Copy()
		select {
		case e.out <- msg:
		case <-e.s.closing:
			return errClosed
		case <-e.ctx.Done():
			return e.ctx.Err()
		}
		select {
		case <-msg.Acked():
			return nil
		case <-msg.Nacked():
		case <-e.s.closing:
			return errClosed
		case <-e.ctx.Done():
			return e.ctx.Err()
		}
	}
}

func joinFields(rec []string) string {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(rec)
	w.Flush()
	return string(bytes.TrimRight(b.Bytes(), "\n"))
}
