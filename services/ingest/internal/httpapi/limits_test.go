package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/switchyardhq/switchyard/services/ingest/internal/tracking"
)

// A batch's context and integrations are merged into every item: the
// limits hold for the events as stored, so a small request cannot store
// much more than it carries (a tester stored 10 MB with a 65 KB request).
func TestBatchFieldsCountInTheLimits(t *testing.T) {
	e := newEnv(t, nil, time.Hour)
	tiny := func(id string) string { return `{"type":"track","userId":"u","event":"E","messageId":"` + id + `"}` }
	batch := func(top string, items ...string) []byte {
		return []byte(`{` + top + `,"batch":[` + strings.Join(items, ",") + `]}`)
	}
	ctxBlob := func(n int) string { return `"context":{"blob":"` + strings.Repeat("c", n) + `"}` }
	many := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = tiny(fmt.Sprintf("m-%03d", i))
		}
		return out
	}
	rejectedCodes := func(r result) string {
		rej, _ := r.body["rejected"].([]any)
		var codes []string
		for _, x := range rej {
			codes = append(codes, fmt.Sprint(x.(map[string]any)["code"]))
		}
		return strings.Join(codes, ",")
	}
	t.Run("a 50 KB context with 200 tiny tracks is refused: each item would be over 32 KB", func(t *testing.T) {
		r := e.do("POST", "/v1/batch", batch(ctxBlob(50000), many(200)...), nil)
		if r.status != 400 || r.body["code"] != "no_valid_events" || rejectedCodes(r) != strings.TrimSuffix(strings.Repeat("event_too_large,", 200), ",") {
			t.Errorf("status %d code %v rejected %s", r.status, r.body["code"], rejectedCodes(r))
		}
	})
	t.Run("a 200 KB context with one track is refused as /v1/track refuses a 200 KB event", func(t *testing.T) {
		r := e.do("POST", "/v1/batch", batch(ctxBlob(200000), tiny("big-1")), nil)
		if r.status != 400 || r.body["code"] != "no_valid_events" || rejectedCodes(r) != "event_too_large" {
			t.Errorf("status %d %v", r.status, r.body)
		}
		single := `{"userId":"u","event":"E","context":{"blob":"` + strings.Repeat("c", 200000) + `"}}`
		if r := e.do("POST", "/v1/track", []byte(single), nil); r.status != 400 || r.body["code"] != "event_too_large" {
			t.Errorf("the same event on /v1/track: status %d %v", r.status, r.body)
		}
	})
	t.Run("a 20 KB context with 200 tiny tracks is refused whole: 4 MB would be stored", func(t *testing.T) {
		r := e.do("POST", "/v1/batch", batch(ctxBlob(20000), many(200)...), nil)
		if r.status != 400 || r.body["code"] != "request_too_large" {
			t.Errorf("status %d %v", r.status, r.body)
		}
	})
	t.Run("integrations count as context does", func(t *testing.T) {
		r := e.do("POST", "/v1/batch", batch(`"integrations":{"X":"`+strings.Repeat("i", 40000)+`"}`, tiny("int-1")), nil)
		if r.status != 400 || r.body["code"] != "no_valid_events" || rejectedCodes(r) != "event_too_large" {
			t.Errorf("status %d %v", r.status, r.body)
		}
	})
	if n := len(e.stored()); n != 0 {
		t.Fatalf("%d events stored by refused requests", n)
	}
	t.Run("an item that sets the big key itself is stored, the others are listed", func(t *testing.T) {
		own := `{"type":"track","userId":"u","event":"E","messageId":"own-1","context":{"blob":"mine"}}`
		r := e.do("POST", "/v1/batch", batch(`"context":{"blob":"`+strings.Repeat("c", 40000)+`","app":{"name":"shop"}}`, tiny("other-1"), own), nil)
		if r.status != 200 || rejectedCodes(r) != "event_too_large" {
			t.Fatalf("status %d %v", r.status, r.body)
		}
		evs := e.stored()
		if len(evs) != 1 || evs[0]["messageId"] != "own-1" {
			t.Fatalf("stored %v", messageIDs(evs))
		}
		ctx := evs[0]["context"].(map[string]any)
		if ctx["blob"] != "mine" || ctx["app"].(map[string]any)["name"] != "shop" {
			t.Errorf("context %v", ctx)
		}
	})
	t.Run("a 2 KB context with 200 tiny tracks is stored, within 500 KB plus the server's fields", func(t *testing.T) {
		before := len(e.stored())
		if r := e.do("POST", "/v1/batch", batch(ctxBlob(2000), many(200)...), nil); r.status != 200 {
			t.Fatalf("status %d %v", r.status, r.body)
		}
		evs := e.stored()[before:]
		total := 0
		for _, ev := range evs {
			b, _ := json.Marshal(ev)
			total += len(b)
		}
		if len(evs) != 200 || total > tracking.MaxRequestBytes+200*tracking.EnrichmentAllowance {
			t.Errorf("stored %d events, %d bytes", len(evs), total)
		}
	})
}

// context.ip never carries an IPv6 zone (local to a host; from
// X-Forwarded-For it could be of any length).
func TestClientIPHasNoZone(t *testing.T) {
	e := newEnv(t, nil, time.Hour)
	e.h.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	hdr := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(wk+":")),
		"X-Forwarded-For": "fe80::1%" + strings.Repeat("z", 5000)}
	if r := e.do("POST", "/v1/track", []byte(track("zone-1")), hdr); r.status != 200 {
		t.Fatalf("status %d %v", r.status, r.body)
	}
	if evs := e.stored(); len(evs) != 1 || evs[0]["context"].(map[string]any)["ip"] != "fe80::1" {
		t.Errorf("stored %v", evs)
	}
}
