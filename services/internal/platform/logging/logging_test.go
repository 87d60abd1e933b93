package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
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
