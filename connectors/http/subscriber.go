package httpconn

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
)

// errClosed is a delivery cut short by Close.
var errClosed = errors.New("the connector is shutting down")

// subscriber is the usage source: a message.Subscriber with one
// subscription, fed by the usage endpoint. Deliveries are serialised
// (one request's records in a row, each acked before the next is sent,
// as a log consumer does), and each record gets the next offset of this
// process, so a reject names it.
type subscriber struct {
	source string

	mu         sync.Mutex
	out        chan *message.Message
	subscribed chan struct{} // closed at Subscribe
	closed     chan struct{} // closed at Close
	closeOnce  sync.Once
	watch      map[string]*string // uuid of a record in flight -> its poison reason
	next       int64              // offset of the next record

	turn chan struct{} // held by the request delivering
	// sending is held while a delivery may send on out: Close takes it
	// before closing out.
	sending sync.RWMutex
}

func newSubscriber(source string) *subscriber {
	return &subscriber{source: source, out: make(chan *message.Message),
		subscribed: make(chan struct{}), closed: make(chan struct{}), watch: map[string]*string{}, turn: make(chan struct{}, 1)}
}

// Subscribe implements message.Subscriber. There is one stream, hence
// one subscription; it ends when ctx ends or at Close.
func (s *subscriber) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		return nil, errors.New("http connector: subscriber closed")
	case <-s.subscribed:
		return nil, errors.New("http connector: already subscribed (one stream, one subscription)")
	default:
	}
	close(s.subscribed)
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.closed:
		}
	}()
	return s.out, nil
}

// Close implements message.Subscriber: the subscription ends and usage
// requests are answered 503. Idempotent.
func (s *subscriber) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.sending.Lock() // no delivery is between its check of closed and its send
		close(s.out)
		s.sending.Unlock()
	})
	return nil
}

// record is one message to deliver: a usage record or a watermark.
type record struct {
	payload   []byte
	watermark *int64
	line      int // in the request body (1-based; 0 for a watermark)
}

// outcome is what became of a delivered record.
type outcome struct {
	offset int64
	reason string // poisoned, and why
}

// deliver sends recs in order, each once it was acked, and says what
// became of each. It stops at ctx's end only between records (a record
// in flight is waited for: the next must not overtake it), and at Close.
func (s *subscriber) deliver(ctx context.Context, key string, recs []record) ([]outcome, error) {
	select {
	case <-s.subscribed:
	case <-s.closed:
		return nil, errClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case s.turn <- struct{}{}:
	case <-s.closed:
		return nil, errClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.turn }()
	out := make([]outcome, 0, len(recs))
	for _, r := range recs {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		o, err := s.deliverOne(key, r)
		if err != nil {
			return out, err
		}
		out = append(out, o)
	}
	return out, nil
}

func (s *subscriber) deliverOne(key string, r record) (outcome, error) {
	s.mu.Lock()
	off := s.next
	s.next++
	id := watermill.NewUUID()
	var reason string
	s.watch[id] = &reason
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watch, id)
		s.mu.Unlock()
	}()
	for {
		msg := message.NewMessage(id, r.payload)
		msg.Metadata.Set(codecs.MetaSource, s.source)
		msg.Metadata.Set(codecs.MetaPartition, "0")
		msg.Metadata.Set(codecs.MetaOffset, strconv.FormatInt(off, 10))
		if key != "" {
			msg.Metadata.Set(codecs.MetaKey, key)
		}
		if r.watermark != nil {
			msg.Metadata.Set(codecs.MetaKind, codecs.KindWatermark)
			msg.Metadata.Set(codecs.MetaTick, strconv.FormatInt(*r.watermark, 10))
		} else {
			msg.Metadata.Set(codecs.MetaKind, codecs.KindJSON)
		}
		if err := s.send(msg); err != nil {
			return outcome{}, err
		}
		select {
		case <-msg.Acked():
			s.mu.Lock()
			o := outcome{offset: off, reason: reason}
			s.mu.Unlock()
			return o, nil
		case <-msg.Nacked():
			// Redelivered, as a log consumer re-reads a record it could
			// not commit (the pipeline nacks only while stopping).
			select {
			case <-time.After(50 * time.Millisecond):
			case <-s.closed:
				return outcome{}, errClosed
			}
		case <-s.closed:
			return outcome{}, errClosed
		}
	}
}

func (s *subscriber) send(msg *message.Message) error {
	s.sending.RLock()
	defer s.sending.RUnlock()
	select {
	case <-s.closed:
		return errClosed
	default:
	}
	select {
	case s.out <- msg:
		return nil
	case <-s.closed:
		return errClosed
	}
}

// poisoned is the poison sink's report: the message with this UUID (or
// one derived from it by a later stage, "<uuid>/samples") was poisoned.
// It runs before the record is acked.
func (s *subscriber) poisoned(uuid, reason string) {
	if i := strings.IndexByte(uuid, '/'); i >= 0 {
		uuid = uuid[:i]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.watch[uuid]; ok && *p == "" {
		*p = reason
	}
}
