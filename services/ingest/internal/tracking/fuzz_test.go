package tracking

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// FuzzParse feeds arbitrary bodies to both parsers. Invariants: no panic;
// every failure is a *RequestError; every accepted event is a valid UTF-8
// JSON object without NUL, with a known type, a user or anonymous id, a
// messageId of at most 100 characters, receivedAt and timestamp; its Size
// is within the event limit, the Sizes of a request's events within the
// request limit, and its stored JSON within its Size plus
// EnrichmentAllowance; the fast and the full path give the same answers,
// Sizes and stored JSON, key order included (diffPaths); the full path's
// decoder and encoder agree with encoding/json (decoderMismatch). The seed corpus (testdata/seeds/*.json and
// testdata/fuzz/FuzzParse) runs in every `go test`.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "seeds", "*.json"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "track")
	}
	f.Fuzz(func(t *testing.T, body []byte, pathType string) {
		p := newTestParser()
		check := func(req *Request, err error) {
			if err != nil {
				var re *RequestError
				if !errors.As(err, &re) {
					t.Fatalf("error %v is not a RequestError", err)
				}
				return
			}
			total := 0
			for _, ev := range req.Events {
				total += ev.Size
				if ev.Size <= 0 || ev.Size > MaxEventBytes || len(ev.JSON) > ev.Size+EnrichmentAllowance {
					t.Fatalf("event of Size %d stored in %d bytes", ev.Size, len(ev.JSON))
				}
				if !utf8.Valid(ev.JSON) || len(ev.JSON) == 0 {
					t.Fatalf("invalid stored JSON %q", ev.JSON)
				}
				var m map[string]any
				if err := json.Unmarshal(ev.JSON, &m); err != nil {
					t.Fatalf("stored event is not a JSON object: %v", err)
				}
				for _, c := range ev.JSON {
					if c == 0 {
						t.Fatal("stored event holds a NUL byte")
					}
				}
				if !KnownTypes[m["type"].(string)] || (m["userId"] == nil && m["anonymousId"] == nil) {
					t.Fatalf("accepted an event without type or id: %s", ev.JSON)
				}
				if id, _ := m["messageId"].(string); id == "" || utf8.RuneCountInString(id) > MaxMessageIDLen || id != ev.MessageID {
					t.Fatalf("messageId %q / %q", m["messageId"], ev.MessageID)
				}
				if m["receivedAt"] == nil || m["timestamp"] == nil {
					t.Fatalf("missing server timestamps: %s", ev.JSON)
				}
			}
			if total > MaxRequestBytes {
				t.Fatalf("the request's events are %d bytes", total)
			}
		}
		if d := decoderMismatch(body); d != "" {
			t.Fatalf("the full path's decoder or encoder differs from encoding/json: %s", d)
		}
		check(p.ParseBatch(body, Meta{IP: "127.0.0.1"}))
		if d := diffPaths(body, "", Meta{IP: "127.0.0.1"}); d != "" {
			t.Fatalf("fast and full path differ on the batch: %s", d)
		}
		if KnownTypes[pathType] {
			check(p.ParseSingle(body, pathType, Meta{}))
			if d := diffPaths(body, pathType, Meta{}); d != "" {
				t.Fatalf("fast and full path differ on the %s call: %s", pathType, d)
			}
		}
	})
}
