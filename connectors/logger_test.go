package connectors

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
)

func TestWatermillLoggerLevels(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  []string // lines printed, as "LEVEL msg"
	}{
		{slog.LevelInfo, []string{"ERROR e"}},
		{slog.LevelDebug, []string{"ERROR e", "DEBUG i", "DEBUG d"}},
		{watermill.LevelTrace, []string{"ERROR e", "DEBUG i", "DEBUG d", "DEBUG-4 t"}},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level,
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				}}))
			l := WatermillLogger(log).With(watermill.LogFields{"topic": "x"})
			l.Error("e", errors.New("boom"), nil)
			l.Info("i", nil)
			l.Debug("d", nil)
			l.Trace("t", watermill.LogFields{"offset": 3})
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				lvl, _, _ := strings.Cut(strings.TrimPrefix(line, "level="), " ")
				_, msg, _ := strings.Cut(line, "msg=")
				msg, _, _ = strings.Cut(msg, " ")
				got = append(got, lvl+" "+msg)
				if !strings.Contains(line, "topic=x") {
					t.Errorf("line %q lost the With fields", line)
				}
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("printed %q, want %q", got, tc.want)
			}
		})
	}
}
