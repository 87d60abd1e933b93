// Package logging builds the slog.Logger every Switchyard service logs with.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Levels lists the accepted level names, in increasing severity.
var Levels = []string{"debug", "info", "warn", "error"}

// Formats lists the accepted output formats.
var Formats = []string{"text", "json"}

// ParseLevel maps a level name (debug, info, warn, error; case-insensitive)
// to its slog.Level.
func ParseLevel(level string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q: use one of %s", level, strings.Join(Levels, ", "))
}

// New returns a logger writing to w at the given level (debug, info, warn,
// error) in the given format (text or json). An empty level means info and
// an empty format means text; any other value is an error naming the
// allowed values.
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(strings.TrimSpace(format)) {
	case "text", "":
		return slog.New(traceHandler{slog.NewTextHandler(w, opts)}), nil
	case "json":
		return slog.New(traceHandler{slog.NewJSONHandler(w, opts)}), nil
	}
	return nil, fmt.Errorf("log format %q: use one of %s", format, strings.Join(Formats, ", "))
}

// traceHandler adds trace_id and span_id to every record logged with a
// context that carries a recording or remote OpenTelemetry span (use the
// *Context logging methods), so a log line leads to its trace.
type traceHandler struct{ slog.Handler }

// Handle implements slog.Handler.
func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}

// Discard returns a logger that drops everything; handy in tests.
func Discard() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}
