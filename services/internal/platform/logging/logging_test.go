package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		level      string
		format     string
		wantErr    string
		wantDebug  bool
		wantJSON   bool
		wantOutput bool
	}{
		{name: "debug text logs debug", level: "debug", format: "text", wantDebug: true, wantOutput: true},
		{name: "info json skips debug", level: "info", format: "json", wantJSON: true, wantOutput: true},
		{name: "error level drops info", level: "error", format: "text"},
		{name: "bad level names allowed values", level: "loud", format: "text", wantErr: "debug, info, warn, error"},
		{name: "bad format names allowed values", level: "info", format: "xml", wantErr: "text, json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			l, err := New(&buf, tt.level, tt.format)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l.Debug("dbg")
			l.Info("inf")
			out := buf.String()
			if got := strings.Contains(out, "dbg"); got != tt.wantDebug {
				t.Errorf("debug logged = %v, want %v (%q)", got, tt.wantDebug, out)
			}
			if got := out != ""; got != tt.wantOutput {
				t.Errorf("output = %q, want output %v", out, tt.wantOutput)
			}
			if tt.wantJSON {
				var m map[string]any
				if err := json.Unmarshal([]byte(strings.Split(out, "\n")[0]), &m); err != nil {
					t.Errorf("not JSON: %q: %v", out, err)
				}
			}
		})
	}
}

func TestTraceIDsOnLogLines(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger, err := New(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34a4ea0f0b3a1c2d3e4f5")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	logger.With("service", "ingest").InfoContext(ctx, "stored")
	logger.Info("no request")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines: %q", len(lines), buf.String())
	}
	var first, second map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &first)
	_ = json.Unmarshal([]byte(lines[1]), &second)
	if first["trace_id"] != tid.String() || first["span_id"] != sid.String() || first["service"] != "ingest" {
		t.Errorf("line with a span context = %v, want trace_id, span_id and service", first)
	}
	if _, ok := second["trace_id"]; ok {
		t.Errorf("line without a span context has a trace_id: %v", second)
	}
}
