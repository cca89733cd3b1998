package connectors

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
)

// WatermillLogger is the adapter every Watermill part of hots logs
// through: Watermill's info lines (a handler started, a subscriber
// closed) go to debug, and a level the logger does not print costs
// nothing. Watermill's own slog adapter builds its attributes before
// slog drops the line; with one Trace call per record in watermill-kafka
// and the router, that was a tenth of a service's CPU.
func WatermillLogger(log *slog.Logger) watermill.LoggerAdapter {
	if log == nil {
		log = slog.Default()
	}
	return gatedLogger{log: log, inner: watermill.NewSlogLoggerWithLevelMapping(log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})}
}

type gatedLogger struct {
	log   *slog.Logger
	inner watermill.LoggerAdapter
}

func (g gatedLogger) on(l slog.Level) bool { return g.log.Enabled(context.Background(), l) }

func (g gatedLogger) Error(msg string, err error, fields watermill.LogFields) {
	g.inner.Error(msg, err, fields)
}

func (g gatedLogger) Info(msg string, fields watermill.LogFields) {
	if g.on(slog.LevelDebug) {
		g.inner.Info(msg, fields)
	}
}

func (g gatedLogger) Debug(msg string, fields watermill.LogFields) {
	if g.on(slog.LevelDebug) {
		g.inner.Debug(msg, fields)
	}
}

func (g gatedLogger) Trace(msg string, fields watermill.LogFields) {
	if g.on(watermill.LevelTrace) {
		g.inner.Trace(msg, fields)
	}
}

func (g gatedLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return gatedLogger{log: g.log, inner: g.inner.With(fields)}
}
