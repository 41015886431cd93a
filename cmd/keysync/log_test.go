package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestNewLoggerLevels: the level names keysync takes (any case, "warning"
// for warn, info when empty), and a clear refusal of anything else.
func TestNewLoggerLevels(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		want slog.Level
		err  bool
	}{
		{"", slog.LevelInfo, false},
		{"debug", slog.LevelDebug, false},
		{"INFO", slog.LevelInfo, false},
		{"warn", slog.LevelWarn, false},
		{"warning", slog.LevelWarn, false},
		{"Warning", slog.LevelWarn, false},
		{"error", slog.LevelError, false},
		{"verbose", 0, true},
	} {
		log, err := newLogger(&bytes.Buffer{}, c.name)
		switch {
		case c.err:
			if err == nil || !strings.Contains(err.Error(), "want debug, info, warn (or warning) or error") {
				t.Errorf("%q: %v, want a refusal naming the levels", c.name, err)
			}
		case err != nil:
			t.Errorf("%q: %v", c.name, err)
		case !log.Enabled(t.Context(), c.want) || c.want > slog.LevelDebug && log.Enabled(t.Context(), c.want-1):
			t.Errorf("%q: not at level %s", c.name, c.want)
		}
	}
}
