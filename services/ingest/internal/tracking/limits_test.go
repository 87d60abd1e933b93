package tracking

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The size limits hold for the events as stored: a batch's context,
// integrations and sentAt are copied into every item, so they count in
// each item that receives them (32 KB per event) and in the request's
// total (500 KB), and the server's own fields add at most
// EnrichmentAllowance to each.

const tinyTrack = `{"type":"track","userId":"u","event":"E"}`

func items(n int, item string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = item
	}
	return out
}

// batchWith is a batch body with top-level members top (JSON text without
// braces, e.g. `"context":{…}`) and the given items.
func batchWith(top string, items ...string) []byte {
	return []byte(`{` + top + `,"batch":[` + strings.Join(items, ",") + `]}`)
}

func blob(name string, n int) string {
	return `{"` + name + `":"` + strings.Repeat("c", n) + `"}`
}

func TestBatchFieldsCountInTheEventLimit(t *testing.T) {
	t.Parallel()
	// A context member "blob" of n bytes adds `"blob":"…",` = n+10 bytes.
	atLimit := MaxEventBytes - len(tinyTrack) - 10
	tests := []struct {
		name     string
		body     []byte
		code     string   // request error; "" = accepted
		accepted []int    // sizes of the accepted events
		rejected []string // "index:code:message" of the rejected items
	}{
		{
			name: "a 50 KB context with 200 tiny tracks stores nothing (tester's report)",
			body: batchWith(`"context":`+blob("blob", 50000), items(200, tinyTrack)...),
			code: "no_valid_events",
			rejected: func() []string {
				var r []string
				for i := range 200 {
					r = append(r, fmt.Sprintf("%d:event_too_large:event is %d bytes with what the batch's context, integrations and sentAt add to it; the limit is 32768", i, len(tinyTrack)+50010))
				}
				return r
			}(),
		},
		{
			name:     "a 200 KB context with one track is refused as /v1/track would refuse the event",
			body:     batchWith(`"context":`+blob("blob", 200000), tinyTrack),
			code:     "no_valid_events",
			rejected: []string{fmt.Sprintf("0:event_too_large:event is %d bytes with what the batch's context, integrations and sentAt add to it; the limit is 32768", len(tinyTrack)+200010)},
		},
		{
			name:     "integrations count as context does",
			body:     batchWith(`"integrations":`+blob("X", 40000), tinyTrack),
			code:     "no_valid_events",
			rejected: []string{fmt.Sprintf("0:event_too_large:event is %d bytes with what the batch's context, integrations and sentAt add to it; the limit is 32768", len(tinyTrack)+40007)},
		},
		{
			name:     "a context that brings the item to exactly 32,768 bytes is accepted",
			body:     batchWith(`"context":`+blob("blob", atLimit), tinyTrack),
			accepted: []int{MaxEventBytes},
		},
		{
			name:     "one byte more is rejected",
			body:     batchWith(`"context":`+blob("blob", atLimit+1), tinyTrack),
			code:     "no_valid_events",
			rejected: []string{"0:event_too_large:event is 32769 bytes with what the batch's context, integrations and sentAt add to it; the limit is 32768"},
		},
		{
			name: "keys the item sets itself are not merged and do not count",
			body: batchWith(`"context":{"blob":"`+strings.Repeat("c", 40000)+`","app":{"v":1}}`,
				`{"type":"track","userId":"u","event":"E","context":{"blob":"mine"}}`, tinyTrack),
			accepted: []int{len(`{"type":"track","userId":"u","event":"E","context":{"blob":"mine"}}`) + len(`"app":{"v":1},`)},
			rejected: []string{fmt.Sprintf("1:event_too_large:event is %d bytes with what the batch's context, integrations and sentAt add to it; the limit is 32768", len(tinyTrack)+40010+14)},
		},
		{
			name:     "a long batch sentAt counts in items without their own (fast path)",
			body:     batchWith(`"sentAt":"2026-12-03T12:00:10.`+strings.Repeat("0", 33000)+`Z"`, tinyTrack, `{"type":"track","userId":"u","event":"E","sentAt":"2026-12-03T12:00:10Z"}`),
			accepted: []int{len(`{"type":"track","userId":"u","event":"E","sentAt":"2026-12-03T12:00:10Z"}`)},
			rejected: []string{fmt.Sprintf("0:event_too_large:event is %d bytes with what the batch's context, integrations and sentAt add to it; the limit is 32768", len(tinyTrack)+len(`"sentAt":"2026-12-03T12:00:10.Z",`)+33000)},
		},
		{
			name:     "a short batch sentAt counts too",
			body:     batchWith(`"sentAt":1764763210000`, tinyTrack),
			accepted: []int{len(tinyTrack) + len(`"sentAt":1764763210000,`)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := newTestParser().ParseBatch(tt.body, Meta{})
			if requestCode(err) != tt.code {
				t.Fatalf("error %v, want %q", err, tt.code)
			}
			var rejected []Rejection
			var sizes []int
			if req != nil {
				rejected = req.Rejected
				for _, ev := range req.Events {
					sizes = append(sizes, ev.Size)
				}
			}
			var re *RequestError
			if errors.As(err, &re) && len(re.Rejected) > 0 {
				rejected = re.Rejected
			}
			var got []string
			for _, r := range rejected {
				got = append(got, fmt.Sprintf("%d:%s:%s", r.Index, r.Code, r.Message))
			}
			if strings.Join(got, "\n") != strings.Join(tt.rejected, "\n") {
				t.Errorf("rejected\n %s\nwant\n %s", strings.Join(got, "\n "), strings.Join(tt.rejected, "\n "))
			}
			if fmt.Sprint(sizes) != fmt.Sprint(tt.accepted) {
				t.Errorf("accepted sizes %v, want %v", sizes, tt.accepted)
			}
		})
	}
}

func TestBatchFieldsCountInTheRequestLimit(t *testing.T) {
	t.Parallel()
	// overTotal is the answer to a batch of equal items of size bytes:
	// refused at the first item that takes the total over 500 KB.
	overTotal := func(size int) string {
		n := MaxRequestBytes/size + 1
		return fmt.Sprintf("the events are over 512000 bytes with the batch's context, integrations and sentAt merged into each (%d bytes by item %d); send fewer events per request or less in the batch's context", n*size, n-1)
	}
	tests := []struct {
		name     string
		body     []byte
		code     string // request error; "" = accepted
		msg      string
		accepted int
	}{
		{
			// Each item is ~20 KB with the context: 200 of them would store 4 MB.
			name: "a 20 KB context with 200 tiny tracks is refused whole",
			body: batchWith(`"context":`+blob("blob", 20000), items(200, tinyTrack)...),
			code: "request_too_large",
			msg:  overTotal(len(tinyTrack) + 20010),
		},
		{
			// The fast path applies a batch's sentAt itself.
			name: "a 3 KB batch sentAt with 200 tiny tracks is refused whole",
			body: batchWith(`"sentAt":"2026-12-03T12:00:10.`+strings.Repeat("0", 3000)+`Z"`, items(200, tinyTrack)...),
			code: "request_too_large",
			msg:  overTotal(len(tinyTrack) + len(`"sentAt":"2026-12-03T12:00:10.Z",`) + 3000),
		},
		{
			name:     "a 2 KB context with 200 tiny tracks is within 500 KB",
			body:     batchWith(`"context":`+blob("blob", 2000), items(200, tinyTrack)...),
			accepted: 200,
		},
		{
			// Without batch-level fields the sizes add up to less than the body.
			name:     "a 499 KB batch of 16 KB events is accepted",
			body:     batchOf(items(31, `{"type":"track","userId":"u","event":"E","properties":{"p":"`+strings.Repeat("p", 16000)+`"}}`)...),
			accepted: 31,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if len(tt.body) > MaxRequestBytes {
				t.Fatalf("fixture is %d bytes", len(tt.body))
			}
			req, err := newTestParser().ParseBatch(tt.body, Meta{})
			if tt.code != "" {
				var re *RequestError
				if !errors.As(err, &re) || re.Code != tt.code || re.Message != tt.msg || req != nil {
					t.Fatalf("error %v (request %v)\nwant %s: %s and nothing accepted", err, req != nil, tt.code, tt.msg)
				}
				return
			}
			if err != nil || len(req.Events) != tt.accepted {
				t.Fatalf("error %v, want %d events accepted", err, tt.accepted)
			}
			total := 0
			for _, ev := range req.Events {
				total += ev.Size
			}
			if total > MaxRequestBytes {
				t.Errorf("accepted %d bytes", total)
			}
		})
	}
}

// TestEnrichmentAllowanceBoundsWhatTheServerAdds sends events that get
// every field the server sets, at its longest: a stored event is within
// its Size plus EnrichmentAllowance.
func TestEnrichmentAllowanceBoundsWhatTheServerAdds(t *testing.T) {
	t.Parallel()
	ipv6 := Meta{IP: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}
	singles := []struct{ body, typ string }{
		{`{"userId":0,"anonymousId":1}`, "identify"},
		{`{"type":null,"userId":0,"anonymousId":1,"groupId":2,"previousId":3,"timestamp":0,"sentAt":0,"messageId":null,"receivedAt":0}`, "alias"},
		{`{"userId":0,"timestamp":"","originalTimestamp":0,"sentAt":0,"context":null}`, "identify"},
		{`{"userId":0,"context":{"ip":""},"timestamp":"x"}`, "identify"},
	}
	check := func(t *testing.T, req *Request, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range req.Events {
			if extra := len(ev.JSON) - ev.Size; extra > EnrichmentAllowance || ev.Size <= 0 {
				t.Errorf("stored %d bytes for Size %d: %d added\n %s", len(ev.JSON), ev.Size, extra, ev.JSON)
			}
		}
	}
	for _, s := range singles {
		for _, full := range []bool{false, true} {
			p := pathParser(full)
			req, err := p.ParseSingle([]byte(s.body), s.typ, ipv6)
			check(t, req, err)
		}
	}
	batch := batchWith(`"sentAt":0,"context":{"a":1},"integrations":{"b":2}`,
		`{"type":"alias","userId":0,"anonymousId":1,"previousId":3,"timestamp":0}`,
		`{"type":"group","userId":0,"groupId":2,"originalTimestamp":0,"context":null,"integrations":null}`)
	req, err := newTestParser().ParseBatch(batch, ipv6)
	check(t, req, err)
}

// A gRPC event is a map: its size is the length of its JSON as marshal
// writes it (compact, keys sorted), and it is stored with its keys sorted,
// the server's fields after them.
func TestParseObjectSizeAndOrder(t *testing.T) {
	t.Parallel()
	obj := map[string]any{"type": "track", "userId": "u", "event": "E", "properties": map[string]any{"bad": "\xff", "n": json.Number("1.50"), "s": "\u2028<>", "B": true}}
	sent := "{\"event\":\"E\",\"properties\":{\"B\":true,\"bad\":\"\\ufffd\",\"n\":1.50,\"s\":\"\u2028<>\"},\"type\":\"track\",\"userId\":\"u\"}"
	ev, rej := newTestParser().ParseObject(obj, Meta{})
	if rej != nil || ev.Size != len(sent) {
		t.Fatalf("Size %d, want %d (%s): %v", ev.Size, len(sent), sent, rej)
	}
	want := "{\"event\":\"E\",\"properties\":{\"B\":true,\"bad\":\"\uFFFD\",\"n\":1.50,\"s\":\"\u2028<>\"},\"userId\":\"u\"," +
		`"type":"track","timestamp":"2026-12-03T12:00:00.000Z","receivedAt":"2026-12-03T12:00:00.000Z","messageId":"generated-id"}`
	if string(ev.JSON) != want {
		t.Errorf("stored\n %s\nwant\n %s", ev.JSON, want)
	}
}

// U+2028 and U+2029 are stored as themselves: encoding/json's escapes made
// the full path store up to twice what the client sent.
func TestLineSeparatorsAreStoredAsSent(t *testing.T) {
	t.Parallel()
	text := strings.Repeat("\u2028\u2029", 5000)
	body := `{"type":"track","userId":"u","event":"E","properties":{"s":"` + text + `","t":"\u2028","u":"\\u2029"},"timestamp":"bad"}`
	req, err := newTestParser().ParseSingle([]byte(body), "track", Meta{}) // full path: a warning
	if err != nil || len(req.Warnings) != 1 {
		t.Fatalf("error %v, warnings %v", err, req.Warnings)
	}
	js := req.Events[0].JSON
	var ev struct {
		Properties map[string]string `json:"properties"`
	}
	if err := json.Unmarshal(js, &ev); err != nil || ev.Properties["s"] != text || ev.Properties["t"] != "\u2028" || ev.Properties["u"] != `\u2029` {
		t.Fatalf("stored %q…: %v", js[:min(len(js), 200)], err)
	}
	if len(js) > len(body)+EnrichmentAllowance {
		t.Errorf("stored %d bytes for a %d-byte body", len(js), len(body))
	}
	if got := string(unescapeLineSeparators([]byte(`{"a":"\\u2028\u2029\\\u2028x"}`))); got != "{\"a\":\"\\\\u2028\u2029\\\\\u2028x\"}" {
		t.Errorf("unescape: %s", got)
	}
}
