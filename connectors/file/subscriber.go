package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"

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
	// Relocations re-attributes rows after the replay's own moves (may be nil).
	Relocations *Relocations
	// Reject receives bad rows (required: bad rows are never dropped silently).
	Reject func(*codecs.RowError)
	// Ready, if set, holds emission back until it is closed: gochannel drops
	// messages published before the next stage subscribed.
	Ready <-chan struct{}
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
	sorted bool
	ticks  []int64             // ascending (unsorted files)
	index  map[int64][]rowSpan // tick -> rows in file order (unsorted files)
	rows   int64               // data rows seen by the scan

	once    sync.Once
	closing chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
	err     error
	stats   Stats
	statsMu sync.Mutex
}

// rowSpan is where one record is in the file.
type rowSpan struct {
	off  int64
	line int64
	n    int32
}

// Stats are the Subscriber's counts, final once Done is closed.
type Stats struct {
	Rows         int64 // data rows read (good and bad)
	Ticks        int64 // ticks emitted (watermarks acked)
	Rejected     int64 // rows rejected by the connector itself
	Relocated    int64 // rows re-attributed to a moved container's new host
	UnknownHosts []string
	Sorted       bool
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

func openCSV(path string) (*os.File, *csv.Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	cr := csv.NewReader(bufio.NewReaderSize(f, 1<<16))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	return f, cr, nil
}

func (s *Subscriber) readHeader(cr *csv.Reader) error {
	h, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: empty file (no header)", s.cfg.UsagePath)
	}
	if err != nil {
		return fmt.Errorf("%s: header: %w", s.cfg.UsagePath, err)
	}
	s.hdr, err = codecs.NewUsageHeader(s.cfg.UsagePath, slices.Clone(h), s.cfg.Fields)
	return err
}

// scan checks sortedness (stopping at the first tick that goes back) and,
// for an unsorted file, builds the index in a second pass.
func (s *Subscriber) scan() error {
	f, cr, err := openCSV(s.cfg.UsagePath)
	if err != nil {
		return fmt.Errorf("usage file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("usage file: %w", err)
	}
	s.size = st.Size()
	if err := s.readHeader(cr); err != nil {
		return err
	}
	s.sorted = true
	var last int64
	var any bool
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		s.rows++
		if err != nil {
			continue // rejected when emitted
		}
		t, err := s.hdr.ParseTick(rec, 0)
		if err != nil {
			continue
		}
		if any && t < last {
			s.sorted = false
			break
		}
		last, any = t, true
	}
	if s.rows == 0 {
		return fmt.Errorf("%s: no data rows", s.cfg.UsagePath)
	}
	if s.sorted {
		return nil
	}
	return s.buildIndex()
}

func (s *Subscriber) buildIndex() error {
	f, cr, err := openCSV(s.cfg.UsagePath)
	if err != nil {
		return fmt.Errorf("usage file: %w", err)
	}
	defer f.Close()
	if err := s.readHeader(cr); err != nil {
		return err
	}
	s.index = map[int64][]rowSpan{}
	s.rows = 0
	start := cr.InputOffset()
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		end := cr.InputOffset()
		line, _ := cr.FieldPos(0)
		s.rows++
		if err != nil {
			s.stats.Rows++ // rows in the index are counted when emitted
			s.reject(csvError(s.cfg.UsagePath, err, int64(line)))
		} else if t, err := s.hdr.ParseTick(rec, int64(line)); err != nil {
			s.stats.Rows++
			s.reject(err.(*codecs.RowError))
		} else {
			if _, ok := s.index[t]; !ok {
				s.ticks = append(s.ticks, t)
			}
			s.index[t] = append(s.index[t], rowSpan{off: start, line: int64(line), n: int32(end - start)})
		}
		start = end
	}
	slices.Sort(s.ticks)
	return nil
}

func csvError(src string, err error, line int64) *codecs.RowError {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		line = int64(pe.StartLine)
	}
	return &codecs.RowError{Position: codecs.Position{Source: src, Line: line}, Reason: "not a CSV record: " + err.Error()}
}

func (s *Subscriber) reject(e *codecs.RowError) {
	s.statsMu.Lock()
	s.stats.Rejected++
	s.statsMu.Unlock()
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
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	st := s.stats
	st.UnknownHosts = slices.Clone(st.UnknownHosts)
	st.Sorted = s.sorted
	return st
}

// Close stops the replay and closes the channel.
func (s *Subscriber) Close() error {
	select {
	case <-s.closing:
	default:
		close(s.closing)
	}
	s.wg.Wait()
	return nil
}

var errClosed = errors.New("file subscriber closed")

// emitter accumulates one tick's records into batches.
type emitter struct {
	s        *Subscriber
	ctx      context.Context
	out      chan<- *message.Message
	tick     int64
	batch    codecs.RawBatch
	seen     map[string]map[string]int64 // domain -> container -> line kept
	unknown  map[string]bool
	consumed int64
	flat     []string
}

func (s *Subscriber) emit(ctx context.Context, out chan<- *message.Message) error {
	if s.cfg.Ready != nil {
		select {
		case <-s.cfg.Ready:
		case <-s.closing:
			return errClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	e := &emitter{s: s, ctx: ctx, out: out, unknown: map[string]bool{}}
	e.batch = codecs.RawBatch{Source: s.cfg.UsagePath, Header: s.hdr.Names}
	if s.sorted {
		return e.stream()
	}
	return e.indexed()
}

// stream replays a tick-sorted file in one pass.
func (e *emitter) stream() error {
	f, cr, err := openCSV(e.s.cfg.UsagePath)
	if err != nil {
		return fmt.Errorf("usage file: %w", err)
	}
	defer f.Close()
	if _, err := cr.Read(); err != nil {
		return fmt.Errorf("%s: header: %w", e.s.cfg.UsagePath, err)
	}
	open := false
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		e.consumed = cr.InputOffset()
		line, _ := cr.FieldPos(0)
		e.count(1)
		if err != nil {
			e.s.reject(csvError(e.s.cfg.UsagePath, err, int64(line)))
			continue
		}
		t, err := e.s.hdr.ParseTick(rec, int64(line))
		if err != nil {
			e.s.reject(err.(*codecs.RowError))
			continue
		}
		if open && t < e.tick {
			e.s.reject(&codecs.RowError{Position: codecs.Position{Source: e.s.cfg.UsagePath, Line: int64(line)},
				Field: e.s.hdr.Names[e.s.hdr.Tick], Value: rec[e.s.hdr.Tick], Raw: joinFields(rec),
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
		if err := e.add(rec, int64(line)); err != nil {
			return err
		}
	}
	if open {
		return e.endTick()
	}
	return nil
}

// indexed replays an unsorted file tick by tick from the index.
func (e *emitter) indexed() error {
	f, err := os.Open(e.s.cfg.UsagePath)
	if err != nil {
		return fmt.Errorf("usage file: %w", err)
	}
	defer f.Close()
	var buf []byte
	for _, t := range e.s.ticks {
		e.startTick(t)
		spans := e.s.index[t]
		for len(spans) > 0 {
			// Read up to BatchRows records with one ReadAt per run of
			// adjacent rows, then parse them with one csv.Reader.
			n := min(len(spans), e.s.cfg.BatchRows)
			chunk := spans[:n]
			spans = spans[n:]
			buf = buf[:0]
			for i := 0; i < len(chunk); {
				j, end := i+1, chunk[i].off+int64(chunk[i].n)
				for j < len(chunk) && chunk[j].off == end {
					end += int64(chunk[j].n)
					j++
				}
				l := len(buf)
				buf = slices.Grow(buf, int(end-chunk[i].off)+1)[:l+int(end-chunk[i].off)]
				if _, err := f.ReadAt(buf[l:], chunk[i].off); err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("%s: %w", e.s.cfg.UsagePath, err)
				}
				if buf[len(buf)-1] != '\n' {
					buf = append(buf, '\n') // last line of a file without a final newline
				}
				i = j
			}
			cr := csv.NewReader(bytes.NewReader(buf))
			cr.FieldsPerRecord = -1
			cr.ReuseRecord = true
			for _, sp := range chunk {
				rec, err := cr.Read()
				e.count(1)
				e.consumed += int64(sp.n)
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
	return nil
}

func (e *emitter) count(rows int64) {
	e.s.statsMu.Lock()
	e.s.stats.Rows += rows
	e.s.statsMu.Unlock()
}

func (e *emitter) startTick(t int64) {
	e.tick = t
	e.seen = map[string]map[string]int64{}
}

// add checks a record of the current tick (duplicate, relocation, unknown
// host) and appends it to the batch. The rest of the validation is the
// decode stage's.
func (e *emitter) add(rec []string, line int64) error {
	h := e.s.hdr
	if err := h.CheckWidth(rec, line); err != nil {
		e.s.reject(err.(*codecs.RowError))
		return nil
	}
	dom, c, host := h.DomainOf(rec), rec[h.Container], rec[h.Host]
	seen := e.seen[dom]
	if seen == nil {
		seen = map[string]int64{}
		e.seen[dom] = seen
	}
	if kept, dup := seen[c]; dup && c != "" {
		e.s.reject(&codecs.RowError{Position: codecs.Position{Source: e.s.cfg.UsagePath, Line: line},
			Field: h.Names[h.Container], Value: c, Raw: joinFields(rec),
			Reason: fmt.Sprintf("duplicate (tick %d, container): first row (line %d) kept", e.tick, kept)})
		return nil
	}
	seen[c] = line
	if e.s.cfg.KnownHosts != nil && host != "" && !e.s.cfg.KnownHosts[host] && !e.unknown[host] {
		e.unknown[host] = true
		e.s.statsMu.Lock()
		e.s.stats.UnknownHosts = append(e.s.stats.UnknownHosts, host)
		e.s.statsMu.Unlock()
		e.s.cfg.Logger.Warn("host not in node_meta: samples kept, host has no known capacity and is never a move target",
			"file", e.s.cfg.UsagePath, "line", line, "host", host)
	}
	// Fields of a batch are carved from one allocation (ReuseRecord hands
	// us the same slice every time); a full block is left to its batch.
	if cap(e.flat)-len(e.flat) < len(rec) {
		e.flat = make([]string, 0, e.s.cfg.BatchRows*len(rec))
	}
	n := len(e.flat)
	e.flat = append(e.flat, rec...)
	row := codecs.RawRow{Line: line, Fields: e.flat[n:len(e.flat):len(e.flat)]}
	if r := e.s.cfg.Relocations; r != nil {
		if nh, ok := r.Lookup(dom, c, e.tick); ok && nh != host {
			row.TraceHost = host
			row.Fields[h.Host] = nh
			e.s.statsMu.Lock()
			e.s.stats.Relocated++
			e.s.statsMu.Unlock()
		}
	}
	e.batch.Rows = append(e.batch.Rows, row)
	if len(e.batch.Rows) >= e.s.cfg.BatchRows {
		return e.flush()
	}
	return nil
}

func (e *emitter) flush() error {
	if len(e.batch.Rows) == 0 {
		return nil
	}
	payload, _ := e.batch.MarshalBinary()
	first := e.batch.Rows[0].Line
	e.batch.Rows = e.batch.Rows[:0]
	m := message.NewMessage(fmt.Sprintf("%s:%d", e.s.cfg.UsagePath, first), payload)
	e.meta(m, codecs.KindRows)
	m.Metadata.Set(codecs.MetaFirstLine, strconv.FormatInt(first, 10))
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
	e.s.statsMu.Lock()
	e.s.stats.Ticks++
	e.s.statsMu.Unlock()
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
