package bgp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// A speaker logs like the daemon that started it: the supervisor passes
// its log format and level as flags (-log-format, -log-level).

// speakerLogFlags are the flags that make a speaker log in format ("":
// that of log's handler, JSON or else text) at the lowest level log
// enables.
func speakerLogFlags(log *slog.Logger, format string) []string {
	if format == "" {
		format = "text"
		if _, ok := log.Handler().(*slog.JSONHandler); ok {
			format = "json"
		}
	}
	level := slog.LevelError
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		if log.Enabled(context.Background(), l) {
			level = l
			break
		}
	}
	return []string{"-log-format", format, "-log-level", level.String()}
}

// newSpeakerLogger is the speaker process's logger, writing to w.
func newSpeakerLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch strings.ToLower(format) {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q is neither text nor json", format)
}

// gobgpLogger sends gobgp's logs to slog.
type gobgpLogger struct {
	log   *slog.Logger
	level gobgplog.LogLevel
}

// gobgpLevel is the gobgp level that passes what log enables.
func gobgpLevel(log *slog.Logger) gobgplog.LogLevel {
	if log.Enabled(context.Background(), slog.LevelDebug) {
		return gobgplog.DebugLevel
	}
	return gobgplog.InfoLevel
}

func attrs(f gobgplog.Fields) []any {
	out := make([]any, 0, 2*len(f))
	for k, v := range f {
		if k == "Error" || k == "err" {
			k = "error"
		}
		out = append(out, k, v)
	}
	return out
}

func (l *gobgpLogger) Panic(msg string, f gobgplog.Fields) {
	l.log.Error(msg, attrs(f)...)
	panic(msg)
}
func (l *gobgpLogger) Fatal(msg string, f gobgplog.Fields) {
	l.log.Error(msg, attrs(f)...)
	os.Exit(1)
}
func (l *gobgpLogger) Error(msg string, f gobgplog.Fields) { l.log.Error(msg, attrs(f)...) }
func (l *gobgpLogger) Warn(msg string, f gobgplog.Fields)  { l.log.Warn(msg, attrs(f)...) }
func (l *gobgpLogger) Info(msg string, f gobgplog.Fields) {
	if l.level >= gobgplog.InfoLevel {
		l.log.Info(msg, attrs(f)...)
	}
}
func (l *gobgpLogger) Debug(msg string, f gobgplog.Fields) {
	if l.level >= gobgplog.DebugLevel {
		l.log.Debug(msg, attrs(f)...)
	}
}
func (l *gobgpLogger) SetLevel(v gobgplog.LogLevel) { l.level = v }
func (l *gobgpLogger) GetLevel() gobgplog.LogLevel  { return l.level }
