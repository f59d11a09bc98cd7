package bgp

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestSpeakerLogFlags(t *testing.T) {
	for _, tc := range []struct {
		name   string
		log    *slog.Logger
		format string
		want   string
	}{
		{"json info", slog.New(slog.NewJSONHandler(io.Discard, nil)).With("subsystem", "bgp"), "", "-log-format json -log-level INFO"},                   //nolint:sloglint // the handler kind is under test
		{"text debug", slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug})), "", "-log-format text -log-level DEBUG"}, //nolint:sloglint // the handler kind is under test
		{"text warn", slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})), "", "-log-format text -log-level WARN"},    //nolint:sloglint // the handler kind is under test
		{"discard", slog.New(slog.DiscardHandler), "", "-log-format text -log-level ERROR"},
		{"explicit format", slog.New(slog.NewTextHandler(io.Discard, nil)), "json", "-log-format json -log-level INFO"}, //nolint:sloglint // the handler kind is under test
	} {
		if got := strings.Join(speakerLogFlags(tc.log, tc.format), " "); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestNewSpeakerLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := newSpeakerLogger(&buf, "json", "WARN")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	(&gobgpLogger{log: log, level: gobgpLevel(log)}).Warn("shown", map[string]any{"Error": "boom"})
	if got := buf.String(); !strings.HasPrefix(got, `{"time":`) || strings.Contains(got, "hidden") || !strings.Contains(got, `"error":"boom"`) {
		t.Errorf("json/warn output:\n%s", got)
	}
	for _, bad := range [][2]string{{"yaml", "info"}, {"text", "loud"}} {
		if _, err := newSpeakerLogger(io.Discard, bad[0], bad[1]); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
