package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"hots/handlers"
)

// Inner topics (gochannel, in process).
const (
	TopicSamples   = "hots.samples"
	TopicTicks     = "hots.ticks"
	TopicDecisions = "hots.decisions"
	// DefaultPoisonTopic is where the poison queue publishes.
	DefaultPoisonTopic = "poison"
)

// Stages are the four stage handlers (the publish stage is stateless).
type Stages struct {
	Decoder *handlers.Decoder
	Window  *handlers.Window
	Placer  *handlers.Placer
}

// RouterConfig says what the router connects: only Source, Sink and
// Poison differ between file replay and Kafka.
type RouterConfig struct {
	Source      message.Subscriber // usage in
	SourceTopic string
	Sink        message.Publisher // moves out
	SinkTopic   string
	Poison      message.Publisher // poisoned messages, with the reason in metadata
	PoisonTopic string            // DefaultPoisonTopic if empty
	Stages      Stages
	// Retries is how often a failing handler is retried before its message
	// is poisoned (default 2); permanent errors are never retried.
	Retries int
	Logger  *slog.Logger
	// OnPanic, if set, gets a panic of any stage (which is then never
	// retried): the run should stop with it.
	OnPanic func(*PanicError)
}

// Pipeline is the router and the in-process Pub/Sub between its stages.
type Pipeline struct {
	Router *message.Router
	inner  *gochannel.GoChannel
}

// Run runs the router until ctx is done or Close is called.
func (p *Pipeline) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { p.inner.Close() })
	defer stop()
	return p.Router.Run(ctx)
}

// Running is closed once every handler has subscribed: publish to the
// source only after it (gochannel drops messages nobody listens to).
func (p *Pipeline) Running() chan struct{} { return p.Router.Running() }

// Close stops the pipeline. The inner Pub/Sub goes first: a stage blocked
// publishing to a stage that is already stopping would otherwise hold the
// router for its whole close timeout.
func (p *Pipeline) Close() error {
	err := p.inner.Close()
	if e := p.Router.Close(); err == nil {
		err = e
	}
	return err
}

// Build returns the pipeline: decode -> window -> placement -> publish,
// gochannel between stages, with recoverer, bounded retry and poison queue.
//
// The inner gochannel blocks every Publish until the next stage acked, and
// the router acks a message only after publishing what its handler
// produced. So the ack of a message from Source comes back only once every
// stage is done with it: that is the backpressure the file replay relies on
// to be causal (a watermark acked = its tick's moves are in the Sink).
func Build(c RouterConfig) (*Pipeline, error) {
	if c.Source == nil || c.Sink == nil || c.Poison == nil {
		return nil, errors.New("pipeline: Source, Sink and Poison are required")
	}
	if c.Stages.Decoder == nil || c.Stages.Window == nil || c.Stages.Placer == nil {
		return nil, errors.New("pipeline: every stage is required")
	}
	if c.PoisonTopic == "" {
		c.PoisonTopic = DefaultPoisonTopic
	}
	if c.Retries == 0 {
		c.Retries = 2
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	// Watermill logs every handler start and stop at info: debug for us.
	logger := watermill.NewSlogLoggerWithLevelMapping(c.Logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		return nil, err
	}
	poison, err := middleware.PoisonQueueWithFilter(c.Poison, c.PoisonTopic, func(error) bool {
		// Whatever survived the retries is set aside: a message must
		// never block the stream, nor be dropped without a trace.
		return true
	})
	if err != nil {
		return nil, err
	}
	retry := middleware.Retry{
		MaxRetries:      c.Retries,
		InitialInterval: 10 * time.Millisecond,
		Multiplier:      2,
		MaxInterval:     time.Second,
		Logger:          logger,
		ShouldRetry:     func(p middleware.RetryParams) bool { return !handlers.IsPermanent(p.Err) },
	}
	r.AddMiddleware(poison, retry.Middleware, failOnPanic(c.OnPanic))

	inner := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, logger)
	r.AddHandler("decode", c.SourceTopic, c.Source, TopicSamples, inner, c.Stages.Decoder.Handle)
	r.AddHandler("window", TopicSamples, inner, TopicTicks, inner, c.Stages.Window.Handle)
	r.AddHandler("placement", TopicTicks, inner, TopicDecisions, inner, c.Stages.Placer.Handle)
	r.AddHandler("publish", TopicDecisions, inner, c.SinkTopic, c.Sink, handlers.PublishMoves)
	return &Pipeline{Router: r, inner: inner}, nil
}

// errStopped wraps the reason a run ended early.
func errStopped(reason error) error { return fmt.Errorf("pipeline stopped: %w", reason) }
