package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"hots/codecs"
	"hots/connectors"
	"hots/handlers"
	"hots/placement"
)

type routerConfig struct {
	conn    connectors.Connector
	decoder *handlers.Decoder
	window  *handlers.Window
	placer  *handlers.Placer
	poison  message.Publisher
	retries int
	// stopping reports a shutdown in progress: errors then are not bad
	// messages and are never poisoned (the record is redelivered).
	stopping func() bool
	// onPanic, if set, gets a panic of any stage: the run stops with it.
	onPanic func(*PanicError)
	log     *slog.Logger
}

// router is the pipeline's router. Its sources subscribe only once the
// inner stages run: gochannel drops a message nobody listens to yet, and
// a record acked into nowhere (or a tick closed by a restore at
// assignment) would be lost.
type router struct {
	r          *message.Router
	inner      *gochannel.GoChannel
	closing    atomic.Bool // set before inner closes
	addSources func()
	ready      chan struct{}
}

// build returns the router: decode → window → placement → publish, with
// one middleware stack for every connector: poison queue (outermost: what
// survived the retries is set aside, never dropped nor blocking), bounded
// retry that skips permanent errors, recoverer.
func build(c routerConfig) (*router, error) {
	logger := connectors.WatermillLogger(c.log)
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, logger)
	if err != nil {
		return nil, err
	}
	poisonSink := c.conn.Poison()
	poison, err := middleware.PoisonQueueWithFilter(c.poison, poisonSink.Topic, func(err error) bool {
		var pe *PanicError
		if errors.As(err, &pe) {
			return true // a bug: set aside even while stopping, never redelivered to panic again
		}
		if c.stopping() {
			return false
		}
		return !errors.Is(err, context.Canceled)
	})
	if err != nil {
		return nil, err
	}
	retry := middleware.Retry{MaxRetries: c.retries, InitialInterval: 10 * time.Millisecond, Multiplier: 2, MaxInterval: time.Second,
		Logger: logger, ShouldRetry: func(p middleware.RetryParams) bool { return !handlers.IsPermanent(p.Err) }}
	// A panic is a bug, never retried: failOnPanic stands where
	// watermill's Recoverer would.
	r.AddMiddleware(poison, retry.Middleware, failOnPanic(c.onPanic))

	inner := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, logger)
	p := &router{r: r, inner: inner, ready: make(chan struct{})}
	// The inner topics are sharded: a gochannel Publish holds its topic
	// until every subscriber acked, so one topic per stage would let one
	// record (or one tick) through at a time, whatever the window's locks.
	// Records go to a window shard by source partition, ticks and
	// decisions to a placement and publish shard by domain; each shard
	// has its own handlers. A shard keeps its messages' order, and every
	// source and every domain has one message in flight at a time, so the
	// order per partition and per domain is the same as with one topic.
	samples := newSharder(inner, shards, codecs.MetaPartition)
	ticks := newSharder(inner, shards, codecs.MetaDomain)
	c.window.Emit = func(msgs []*message.Message) error {
		err := ticks.Publish(TopicTicks, msgs...)
		// A gochannel closing under a blocked Publish returns nil without
		// the ack: the tick's moves may not be through. Say so, or the
		// window would count the tick closed (and checkpoint it).
		if err == nil && p.closing.Load() {
			err = handlers.Permanent(errRouterClosing) // retrying cannot help: the run stops
		}
		return err
	}
	sink := c.conn.Sink()
	for i := range shards {
		r.AddConsumerHandler(shardName("window", i), shardTopic(TopicSamples, i), inner, c.window.Handle)
		r.AddHandler(shardName("placement", i), shardTopic(TopicTicks, i), inner, TopicDecisions, ticks, c.placer.Handle)
		r.AddHandler(shardName("publish", i), shardTopic(TopicDecisions, i), inner, sink.Topic, sink.Publisher, handlers.PublishMoves)
	}
	src := c.conn.Source()
	addSources := func() {
		for _, t := range src.Topics {
			r.AddHandler("decode:"+t, t, src.Subscriber, TopicSamples, samples, decode(c.decoder, c.window, c.poison, poisonSink.Topic, c.onPanic))
		}
	}
	p.addSources = addSources
	return p, nil
}

var errRouterClosing = errors.New("pipeline closing: the closed tick did not reach every stage")

// decode runs the decoder and tells the window about a record that did
// not reach it (poisoned, or without samples), so that its partition
// counts as read past it. A records message (several records a log
// connector bundled) is taken record by record, each as if it had come
// alone: a bad one is poisoned by itself, as written, and the others'
// samples go on as one message listing its records (codecs.MetaRecords),
// one hand-over to the window, which still folds them one by one.
func decode(d *handlers.Decoder, w *handlers.Window, poison message.Publisher, poisonTopic string, onPanic func(*PanicError)) message.HandlerFunc {
	consumed := func(m *message.Message) {
		if src, part, off := handlers.Position(m); off >= 0 {
			w.Consumed(src, part, off)
		}
	}
	// usage is a JSON record's samples, checked against the domains'
	// clocks and those the records before it in its bundle will set.
	usage := func(m *message.Message, ahead map[string]int64) ([]placement.Sample, error) {
		ss, err := d.Samples(m)
		if err == nil {
			if cerr := w.CheckSamples(ss, ahead); cerr != nil {
				err = handlers.Permanent(cerr)
			}
		}
		if err != nil || len(ss) == 0 {
			consumed(m)
			return nil, err
		}
		return ss, nil
	}
	bundle := func(msg *message.Message) ([]*message.Message, error) {
		recs, err := codecs.DecodeRecords(msg.Payload)
		if err != nil {
			return nil, handlers.Permanent(err)
		}
		ahead := map[string]int64{}
		var got []placement.Sample
		alone := failOnPanic(onPanic)(func(m *message.Message) (_ []*message.Message, err error) {
			got, err = usage(m, ahead)
			return nil, err
		})
		var sw codecs.SampleWriter
		var segs []codecs.Segment
		var first *message.Message
		n := 0
		for _, r := range recs {
			rec := message.NewMessage(r.UUID, r.Payload)
			rec.Metadata = r.Metadata
			rec.SetContext(msg.Context())
			if _, err := alone(rec); err != nil {
				if !handlers.IsPermanent(err) {
					return nil, err // the whole bundle again: the window skips what it folded
				}
				// What watermill's poison queue would have written for it.
				rec.Metadata.Set(middleware.ReasonForPoisonedKey, err.Error())
				rec.Metadata.Set(middleware.PoisonedTopicKey, message.SubscribeTopicFromCtx(msg.Context()))
				rec.Metadata.Set(middleware.PoisonedHandlerKey, message.HandlerNameFromCtx(msg.Context()))
				rec.Metadata.Set(middleware.PoisonedSubscriberKey, message.SubscriberNameFromCtx(msg.Context()))
				if err := poison.Publish(poisonTopic, rec); err != nil {
					return nil, err
				}
				continue
			}
			if len(got) == 0 {
				continue
			}
			if first == nil {
				first = rec
				sw.Reset(len(msg.Payload))
			}
			for i := range got {
				sw.Append(&got[i])
			}
			_, _, off := handlers.Position(rec)
			segs, n = append(segs, codecs.Segment{Offset: off, Samples: len(got)}), n+len(got)
		}
		if first == nil {
			return nil, nil
		}
		out := d.Out(first, sw.Bytes(), n)
		out.Metadata.Set(codecs.MetaRecords, codecs.FormatSegments(segs))
		return []*message.Message{out}, nil
	}
	return func(msg *message.Message) ([]*message.Message, error) {
		switch msg.Metadata.Get(codecs.MetaKind) {
		case codecs.KindRecords:
			return bundle(msg)
		case codecs.KindJSON, "":
			ss, err := usage(msg, nil)
			if err != nil || len(ss) == 0 {
				return nil, err
			}
			return []*message.Message{d.Out(msg, codecs.EncodeSamples(ss), len(ss))}, nil
		}
		out, err := d.Handle(msg) // row batches and watermarks
		for _, o := range out {
			if err == nil && o.Metadata.Get(codecs.MetaKind) == codecs.KindSamples {
				if cerr := w.CheckTicks(o.Payload); cerr != nil {
					out, err = nil, handlers.Permanent(cerr)
				}
			}
		}
		if err != nil || len(out) == 0 {
			consumed(msg)
		}
		return out, err
	}
}

// run runs the inner stages, then subscribes the sources, until ctx ends
// or close is called.
func (p *router) run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { p.closing.Store(true); p.inner.Close() })
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- p.r.Run(ctx) }()
	select {
	case <-p.r.Running():
	case err := <-errc:
		return err
	}
	p.addSources()
	if err := p.r.RunHandlers(ctx); err != nil {
		p.close()
		<-errc
		return fmt.Errorf("subscribing the sources: %w", err)
	}
	close(p.ready)
	return <-errc
}

// close stops the router. The inner Pub/Sub goes first: a stage blocked
// publishing to a stage that is already stopping would otherwise hold the
// router for its whole close timeout.
func (p *router) close() error {
	p.closing.Store(true)
	err := p.inner.Close()
	if e := p.r.Close(); err == nil {
		err = e
	}
	return err
}
