package main

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/lmittmann/tint"
)

// newLogger builds keysync's one logger: tint with colour when w is a
// terminal, JSON otherwise (journald, Kubernetes). Components receive it
// and add their own attributes.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var lvl slog.Level
	name := cmp.Or(strings.TrimSpace(level), "info")
	if strings.EqualFold(name, "warning") {
		name = "warn" // as syslog and most tools spell it
	}
	if err := lvl.UnmarshalText([]byte(name)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn (or warning) or error", level)
	}
	if isTerminal(w) {
		return slog.New(tint.NewHandler(w, &tint.Options{Level: lvl, TimeFormat: "15:04:05"})), nil
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl})), nil
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
