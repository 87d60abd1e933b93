package tracking

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Every body any test of this package parses (case fixtures, unit tests,
// the fuzz seed corpus) is parsed again by the fast and the full path after
// the tests ran; any difference fails the run (TestMain).
var observed struct {
	sync.Mutex
	calls []observedCall
}

type observedCall struct {
	body     []byte
	pathType string // "" for a batch
	meta     Meta
}

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		os.Exit(m.Run()) // fuzzing: FuzzParse compares both paths on each input
	}
	observeParse = func(body []byte, pathType string, meta Meta) {
		observed.Lock()
		observed.calls = append(observed.calls, observedCall{bytes.Clone(body), pathType, meta})
		observed.Unlock()
	}
	code := m.Run()
	observeParse = nil
	if code == 0 {
		n := 0
		for _, c := range observed.calls {
			if d := diffPaths(c.body, c.pathType, c.meta); d != "" {
				fmt.Fprintf(os.Stderr, "fast and full path differ on %q (path %q): %s\n", c.body, c.pathType, d)
				n++
			}
		}
		if n > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: the fast path differs from the full path on %d of %d parsed bodies\n", n, len(observed.calls))
			code = 1
		}
	}
	os.Exit(code)
}

// pathParser is a test parser with deterministic generated ids.
func pathParser(fullOnly bool) *Parser {
	n := 0
	return &Parser{Now: func() time.Time { return fixedNow }, NewID: func() string { n++; return "gen-" + strconv.Itoa(n) }, fullOnly: fullOnly}
}

// diffPaths parses body with the fast and the full path and describes the
// first difference: errors, rejections, warnings, write key, events (type,
// messageId, Size, and the stored JSON compared token by token: the same
// values with every object's keys in the same order).
func diffPaths(body []byte, pathType string, meta Meta) string {
	run := func(full bool) (*Request, error) {
		p := pathParser(full)
		if pathType == "" {
			return p.ParseBatch(body, meta)
		}
		return p.ParseSingle(body, pathType, meta)
	}
	fr, ferr := run(false)
	sr, serr := run(true)
	if fmt.Sprint(ferr) != fmt.Sprint(serr) {
		return fmt.Sprintf("error %v vs %v", ferr, serr)
	}
	if ferr != nil {
		fe, se := ferr.(*RequestError), serr.(*RequestError)
		if !reflect.DeepEqual(fe, se) {
			return fmt.Sprintf("error %+v vs %+v", fe, se)
		}
	}
	if (fr == nil) != (sr == nil) {
		return fmt.Sprintf("request %v vs %v", fr, sr)
	}
	if fr == nil {
		return ""
	}
	if fr.WriteKey != sr.WriteKey || !reflect.DeepEqual(fr.Rejected, sr.Rejected) || !reflect.DeepEqual(fr.Warnings, sr.Warnings) {
		return fmt.Sprintf("request %+v vs %+v", *fr, *sr)
	}
	if len(fr.Events) != len(sr.Events) {
		return fmt.Sprintf("%d events vs %d", len(fr.Events), len(sr.Events))
	}
	for i := range fr.Events {
		f, s := fr.Events[i], sr.Events[i]
		if f.Type != s.Type || f.MessageID != s.MessageID || f.Size != s.Size {
			return fmt.Sprintf("event %d: %s/%s/%d bytes vs %s/%s/%d bytes", i, f.Type, f.MessageID, f.Size, s.Type, s.MessageID, s.Size)
		}
		ft, err := tokens(f.JSON)
		if err != nil {
			return fmt.Sprintf("event %d: fast JSON %s: %v", i, f.JSON, err)
		}
		st, err := tokens(s.JSON)
		if err != nil {
			return fmt.Sprintf("event %d: full JSON %s: %v", i, s.JSON, err)
		}
		if !slices.Equal(ft, st) {
			return fmt.Sprintf("event %d (values or key order):\n fast %s\n full %s", i, f.JSON, s.JSON)
		}
	}
	return ""
}

// tokens is JSON text b as its token stream (strings decoded, numbers as
// written): equal streams are the same values with the keys of every
// object in the same order.
func tokens(b []byte) ([]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var out []any
	for {
		t, err := d.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
}

// TestFastPathMatchesFullPath covers what the fast path splices or hands
// over to the full path; TestMain compares both paths on each body.
func TestFastPathMatchesFullPath(t *testing.T) {
	t.Parallel()
	ctx := `"context":{"library":{"name":"x"},"ip":"10.0.0.9"}`
	bodies := []string{
		`{"type":"track","userId":"u","event":"E","messageId":"m1","properties":{"a":1.50,"b":[1,2,{"c":null}]}}`,
		`{"type":"TRACK","userId":123456789012345678901,"event":"E","timestamp":"2026-01-01T00:00:00+02:00"}`,
		`{"type":"identify","userId":"  ","anonymousId":"a","traits":{"x":true},"writeKey":"k"}`,
		`{"type":"identify","userId":null,"anonymousId":7,"context":null}`,
		`{"type":"identify","anonymousId":"a",` + ctx + `}`,
		`{"type":"identify","anonymousId":"a","context":{}}`,
		`{"type":"identify","anonymousId":"a","context":{"ip":null}}`,
		`{"type":"identify","anonymousId":"a","context":{"ip":"","ip":"x"}}`,
		`{"type":"page","anonymousId":"a","timestamp":1767225600000,"sentAt":1767225601000}`,
		`{"type":"page","anonymousId":"a","timestamp":null,"originalTimestamp":"2026-01-01T00:00:00Z","sentAt":"2026-01-01T00:00:05Z"}`,
		`{"type":"page","anonymousId":"a","timestamp":"","originalTimestamp":""}`,
		`{"type":"page","anonymousId":"a","timestamp":"yesterday"}`,
		`{"type":"page","anonymousId":"a","sentAt":"soon","timestamp":"2026-01-01T00:00:00Z"}`,
		`{"type":"page","anonymousId":"a","receivedAt":"2000-01-01T00:00:00Z","messageId":""}`,
		`{"type":"page","anonymousId":"a","messageId":12.5}`,
		`{"type":"page","anonymousId":"a","messageId":"` + strings.Repeat("é", 100) + `"}`,
		`{"type":"page","anonymousId":"a","messageId":"` + strings.Repeat("é", 101) + `"}`,
		`{"type":"page","anonymousId":"a","messageId":"a\"b"}`,
		`{"type":"page","anonymousId":"a\u0000b"}`,
		`{"type":"page","anonymousId":"a","properties":{"s":"\ud83d"}}`,
		`{"type":"page","anonymousId":"a","properties":{"s":"\ud83d\ude00 \u00e9 \n"}}`,
		`{"type":"page","anonymousId":"a","properties":{"k":1,"k":2}}`,
		`{"type":"page","anonymousId":"a","properties":{"\u006b":1}}`,
		`{"type":"group","anonymousId":"a","groupId":0}`,
		`{"type":"group","anonymousId":"a"}`,
		`{"type":"alias","previousId":"p","userId":"u"}`,
		`{"type":"alias","previousId":"p","anonymousId":"u"}`,
		`{"type":"ſcreen","anonymousId":"a"}`,
		`{"type":"\u0074rack","anonymousId":"a","event":"E"}`,
		`{"type":"track","anonymousId":"a","event":" "}`,
		`{"type":"track","anonymousId":"a","event":"E","properties":[]}`,
		` {"type":"track","anonymousId":"a","event":"E"} `,
		`{"type":"track","anonymousId":"a","event":"E"} {}`,
	}
	for _, meta := range []Meta{{}, {IP: "192.0.2.1"}} {
		for _, b := range bodies {
			for _, path := range []string{"track", "identify", "page", "group", "alias"} {
				if d := diffPaths([]byte(b), path, meta); d != "" {
					t.Errorf("single %s %s: %s", path, b, d)
				}
			}
			for _, top := range []string{``, `"sentAt":"2026-01-01T00:00:10Z",`, `"sentAt":1767225610000,`, `"sentAt":"bad",`, `"sentAt":null,`, `"context":{"a":1},`, `"writeKey":"k",`, `"Batch":[],`} {
				batch := `{` + top + `"batch":[` + b + `,` + b + `,7,{"type":"track"}]}`
				if d := diffPaths([]byte(batch), "", meta); d != "" {
					t.Errorf("batch %s: %s", batch, d)
				}
			}
		}
	}
}
