package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsjs "github.com/nats-io/nats.go/jetstream"
	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"github.com/switchyardhq/switchyard/services/ingest/internal/events"
	"github.com/switchyardhq/switchyard/services/ingest/internal/geo"
	"github.com/switchyardhq/switchyard/services/ingest/internal/geo/geotest"
	"github.com/switchyardhq/switchyard/services/ingest/internal/httpapi"
	"github.com/switchyardhq/switchyard/services/ingest/internal/tracking"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
)

const (
	wk      = "WK_TEST"
	wkOff   = "WK_DISABLED"
	ws, src = "ws1", "src1"
)

type env struct {
	t      *testing.T
	srv    *httptest.Server
	h      *httpapi.Handler
	js     natsjs.JetStream
	pub    *events.Publisher
	stream natsjs.Stream
	ns     *server.Server
	gen    int
}

func keys() *httpapi.Keys {
	k := &httpapi.Keys{}
	k.Update([]*catalogv1.ConfigSnapshot{{Sources: []*catalogv1.Source{
		{Id: src, WorkspaceId: ws, Enabled: true, WriteKeys: []string{wk}},
		{Id: "src-off", WorkspaceId: ws, Enabled: false, WriteKeys: []string{wkOff}},
	}}})
	return k
}

// newEnv starts a handler over a real embedded JetStream with the EVENTS
// stream (cfg adjusts its configuration) and the dedupe bucket.
func newEnv(t *testing.T, cfg func(*natsjs.StreamConfig), dedupeWindow time.Duration) *env {
	t.Helper()
	ns, conn := testenv.NATS(t)
	sc := streams.EventsConfig(streams.DefaultOptions)
	sc.Replicas = 1
	if cfg != nil {
		cfg(&sc)
	}
	stream, err := jetstream.EnsureStream(t.Context(), conn.JS, sc)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	dd, err := events.NewDedupe(t.Context(), conn.JS, events.DedupeOptions{Window: dedupeWindow, FilterBits: 1 << 16}, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = dd.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	pub := &events.Publisher{JS: conn.JS, Dedupe: dd, Timeout: 2 * time.Second}
	h := &httpapi.Handler{Keys: keys(), Parser: tracking.NewParser(), Publisher: pub, Logger: logger}
	e := &env{t: t, h: h, js: conn.JS, pub: pub, stream: stream, ns: ns}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// freshStream replaces EVENTS by a new stream (new name, same subjects),
// which has forgotten the stream's own short duplicate window, as if it had
// passed: what still drops a repeat is the dedupe bucket.
func (e *env) freshStream() {
	e.t.Helper()
	name := e.stream.CachedInfo().Config.Name
	if err := e.js.DeleteStream(e.t.Context(), name); err != nil {
		e.t.Fatal(err)
	}
	e.gen++
	sc := streams.EventsConfig(streams.DefaultOptions)
	sc.Name = fmt.Sprintf("EVENTS_%d", e.gen)
	s, err := jetstream.EnsureStream(e.t.Context(), e.js, sc)
	if err != nil {
		e.t.Fatal(err)
	}
	e.stream = s
}

type result struct {
	status int
	header http.Header
	body   map[string]any
}

func (e *env) do(method, path string, body []byte, hdr map[string]string) result {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if hdr == nil {
		hdr = map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(wk+":"))}
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, header: resp.Header}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// stored returns the events in EVENTS, in order.
func (e *env) stored() []map[string]any {
	e.t.Helper()
	info, err := e.stream.Info(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	var out []map[string]any
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := e.stream.GetMsg(e.t.Context(), seq)
		if err != nil {
			continue
		}
		if m.Subject != "events."+ws+"."+src {
			e.t.Errorf("message %d: subject %s", seq, m.Subject)
		}
		packed, err := jetstream.UnpackData(m.Header, m.Data)
		if err != nil {
			e.t.Fatalf("message %d: %v", seq, err)
		}
		if !jetstream.IsPack(m.Header) && m.Header.Get(natsjs.MsgIDHeader) != ws+"/"+packed[0].MessageID {
			e.t.Errorf("message %d: Nats-Msg-Id %q, Switchyard-Message-Id %q", seq, m.Header.Get(natsjs.MsgIDHeader), packed[0].MessageID)
		}
		for _, p := range packed {
			var ev map[string]any
			if err := json.Unmarshal(p.JSON, &ev); err != nil {
				e.t.Fatal(err)
			}
			if ev["messageId"] != p.MessageID || ev["type"] != p.Type {
				e.t.Errorf("message %d event %d: messageId %v type %v, headers say %q %q", seq, p.Index, ev["messageId"], ev["type"], p.MessageID, p.Type)
			}
			out = append(out, ev)
		}
	}
	return out
}

func messageIDs(evs []map[string]any) []string {
	var ids []string
	for _, ev := range evs {
		ids = append(ids, ev["messageId"].(string))
	}
	return ids
}

func track(id string) string {
	return `{"type":"track","userId":"u","event":"E","messageId":"` + id + `"}`
}

func TestEndpoints(t *testing.T) {
	e := newEnv(t, nil, time.Hour)
	single := `{"userId":"u","event":"E","name":"N","groupId":"g","previousId":"p"}`
	for _, path := range []string{"identify", "track", "page", "screen", "group", "alias", "i", "t", "p", "s", "g", "a"} {
		t.Run("POST /v1/"+path+" accepts one event", func(t *testing.T) {
			if r := e.do("POST", "/v1/"+path, []byte(single), nil); r.status != 200 || r.body["success"] != true {
				t.Errorf("status %d %v", r.status, r.body)
			}
		})
	}
	for _, path := range []string{"batch", "b", "import", "import/"} {
		t.Run("POST /v1/"+path+" accepts a batch", func(t *testing.T) {
			if r := e.do("POST", "/v1/"+path, []byte(`{"batch":[{"type":"track","userId":"u","event":"E"}]}`), nil); r.status != 200 {
				t.Errorf("status %d %v", r.status, r.body)
			}
		})
	}
	t.Run("POST /v1/m is accepted and discarded", func(t *testing.T) {
		before := len(e.stored())
		if r := e.do("POST", "/v1/m", []byte(`{"series":[]}`), map[string]string{"Content-Type": "text/plain"}); r.status != 200 {
			t.Errorf("status %d", r.status)
		}
		if got := len(e.stored()); got != before {
			t.Errorf("stored %d events, want %d", got, before)
		}
	})
	t.Run("text/plain bodies are JSON", func(t *testing.T) {
		r := e.do("POST", "/v1/t", []byte(`{"userId":"u","event":"E","writeKey":"`+wk+`"}`), map[string]string{"Content-Type": "text/plain"})
		if r.status != 200 {
			t.Errorf("status %d %v", r.status, r.body)
		}
	})
	t.Run("CORS preflight allows any origin and the asked headers", func(t *testing.T) {
		r := e.do("OPTIONS", "/v1/t", nil, map[string]string{"Origin": "https://shop.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,authorization,x-custom"})
		if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://shop.example" ||
			r.header.Get("Access-Control-Allow-Headers") != "content-type,authorization,x-custom" ||
			!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "POST") {
			t.Errorf("status %d headers %v", r.status, r.header)
		}
	})
	t.Run("gzip bodies are decompressed", func(t *testing.T) {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write([]byte(`{"batch":[` + track("gz-1") + `]}`))
		_ = zw.Close()
		r := e.do("POST", "/v1/batch", b.Bytes(), map[string]string{"Content-Encoding": "gzip", "Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(wk+":"))})
		if r.status != 200 {
			t.Errorf("status %d %v", r.status, r.body)
		}
	})
	t.Run("a gzip bomb stops at the decompressed limit", func(t *testing.T) {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write([]byte(`{"batch":[{"type":"track","userId":"u","event":"` + strings.Repeat("A", 50<<20) + `"}]}`))
		_ = zw.Close()
		r := e.do("POST", "/v1/batch", b.Bytes(), map[string]string{"Content-Encoding": "gzip"})
		if r.status != 400 || r.body["code"] != "request_too_large" {
			t.Errorf("status %d %v", r.status, r.body)
		}
	})
	t.Run("unknown endpoint is 404", func(t *testing.T) {
		if r := e.do("POST", "/v1/purchase", []byte(`{}`), nil); r.status != 404 {
			t.Errorf("status %d", r.status)
		}
	})
}

func TestAuth(t *testing.T) {
	e := newEnv(t, nil, time.Hour)
	body := `{"userId":"u","event":"E"}`
	withKey := `{"userId":"u","event":"E","writeKey":"` + wk + `"}`
	basic := func(k string) map[string]string {
		return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(k+":"))}
	}
	raw := func(cred string) map[string]string { return map[string]string{"Authorization": "Basic " + cred} }
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	const how = `; send base64("WRITE_KEY:") with the write key as the username`
	tests := []struct {
		name   string
		body   string
		hdr    map[string]string
		status int
		code   string
		msg    string // exact message of a refusal
	}{
		{"Basic username", body, basic(wk), 200, "", ""},
		{"Basic username with a password (ignored)", body, raw(b64(wk + ":secret")), 200, "", ""},
		{"Basic without the colon (Segment docs)", body, raw(b64(wk)), 200, "", ""},
		{"Basic without base64 padding", body, raw(strings.TrimRight(b64(wk+":"), "=")), 200, "", ""},
		{"lower-case scheme", body, map[string]string{"Authorization": "basic " + b64(wk+":")}, 200, "", ""},
		{"Basic that is not base64", body, raw("%%%not-base64%%%"), 401, "malformed_authorization", "the Basic credentials are not base64" + how},
		{"Basic with the key as the password", body, raw(b64(":" + wk)), 401, "malformed_authorization", "the Basic-auth username is empty and the password is set: the write key goes in the username" + how},
		{"Basic with empty credentials", body, map[string]string{"Authorization": "Basic"}, 401, "malformed_authorization", "the Basic credentials are empty" + how},
		{"Basic of only a colon", body, raw(b64(":")), 401, "malformed_authorization", "the Basic credentials hold no write key" + how},
		{"malformed Basic falls back to the body's writeKey", withKey, raw("%%%"), 200, "", ""},
		{"body writeKey without headers (ing-19)", withKey, map[string]string{}, 200, "", ""},
		{"Bearer token plus body writeKey", withKey, map[string]string{"Authorization": "Bearer some-oauth-token"}, 200, "", ""},
		{"no key anywhere", body, map[string]string{}, 401, "missing_write_key", "send the source's write key as the Basic auth username or as writeKey in the body"},
		{"Bearer without a body writeKey", body, map[string]string{"Authorization": "Bearer some-oauth-token"}, 401, "missing_write_key", "send the source's write key as the Basic auth username or as writeKey in the body"},
		{"unknown key (ing-19)", body, map[string]string{"Authorization": "Basic V0tfVU5LTk9XTjo="}, 401, "invalid_write_key", "unknown write key"},
		{"disabled source", body, basic(wkOff), 403, "source_disabled", "the source of this write key is disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("POST", "/v1/track", []byte(tt.body), tt.hdr)
			if r.status != tt.status || (tt.code != "" && (r.body["code"] != tt.code || r.body["message"] != tt.msg)) {
				t.Errorf("status %d %v, want %d %s %q", r.status, r.body, tt.status, tt.code, tt.msg)
			}
		})
	}
	t.Run("a key map update takes effect on the next request", func(t *testing.T) {
		e.h.Keys.Update([]*catalogv1.ConfigSnapshot{{Sources: []*catalogv1.Source{{Id: src, WorkspaceId: ws, Enabled: false, WriteKeys: []string{wk}}}}})
		if r := e.do("POST", "/v1/track", []byte(body), nil); r.status != 403 {
			t.Errorf("status %d after disabling, want 403", r.status)
		}
	})
}

func TestRequestErrorsAndBatchAnswers(t *testing.T) {
	e := newEnv(t, nil, time.Hour)
	tests := []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"no identifiable event (ing-18)", "/v1/batch", `{"batch":[{"data":"x"}]}`, 400, "no_valid_events"},
		{"invalid JSON (ing-18)", "/v1/batch", `not-json`, 400, "invalid_json"},
		{"empty body (ing-18)", "/v1/batch", ``, 400, "empty_body"},
		{"empty batch (ing-18)", "/v1/batch", `{"batch":[]}`, 400, "empty_batch"},
		{"invalid single event", "/v1/track", `{"userId":"u"}`, 400, "missing_event"},
		{"invalid UTF-8", "/v1/track", "{\"userId\":\"\xff\",\"event\":\"e\"}", 400, "invalid_utf8"},
		{"over 500 KB (ing-02)", "/v1/batch", `{"batch":[` + strings.Repeat(`{"type":"track","userId":"u","event":"`+strings.Repeat("y", 30000)+`"},`, 17) + `{"type":"track","userId":"u","event":"` + strings.Repeat("y", 30000) + `"}]}`, 400, "request_too_large"},
		{"over 32 KB single (ing-01)", "/v1/track", `{"userId":"u","event":"E","properties":{"blob":"` + strings.Repeat("x", 33000) + `"}}`, 400, "event_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("POST", tt.path, []byte(tt.body), nil)
			if r.status != tt.status || r.body["code"] != tt.code || r.body["message"] == "" {
				t.Errorf("status %d %v, want %d %s", r.status, r.body, tt.status, tt.code)
			}
		})
	}
	if n := len(e.stored()); n != 0 {
		t.Errorf("%d events stored by refused requests", n)
	}
	t.Run("a batch stores its valid items and lists the others (ing-03)", func(t *testing.T) {
		r := e.do("POST", "/v1/batch", []byte(`{"batch":[{"type":"track","event":"Button Clicked"},`+track("ok-1")+`]}`), nil)
		rej, _ := r.body["rejected"].([]any)
		if r.status != 200 || len(rej) != 1 || rej[0].(map[string]any)["index"] != 0.0 || rej[0].(map[string]any)["code"] != "missing_user_id" {
			t.Errorf("status %d %v", r.status, r.body)
		}
		if ids := messageIDs(e.stored()); strings.Join(ids, ",") != "ok-1" {
			t.Errorf("stored %v", ids)
		}
	})
}

func TestDedupe(t *testing.T) {
	e := newEnv(t, nil, 24*time.Hour)
	resetStream := func() {
		t.Helper()
		e.freshStream()
	}
	order := `{"type":"track","userId":"u-1007","event":"Order Completed","properties":{"total":12.5},"messageId":"m-dup-0001"}`
	t.Run("a batch repeating a messageId stores it once (ing-07)", func(t *testing.T) {
		if r := e.do("POST", "/v1/batch", []byte(`{"batch":[`+order+`,`+order+`]}`), nil); r.status != 200 {
			t.Fatalf("status %d %v", r.status, r.body)
		}
		if ids := messageIDs(e.stored()); strings.Join(ids, ",") != "m-dup-0001" {
			t.Errorf("stored %v", ids)
		}
	})
	t.Run("a repeat after the stream's duplicate window is dropped (ing-07 after 1h)", func(t *testing.T) {
		resetStream()
		if r := e.do("POST", "/v1/batch", []byte(`{"batch":[`+order+`,`+track("fresh-1")+`]}`), nil); r.status != 200 {
			t.Fatalf("status %d %v", r.status, r.body)
		}
		if ids := messageIDs(e.stored()); strings.Join(ids, ",") != "fresh-1" {
			t.Errorf("stored %v, want only fresh-1", ids)
		}
		if e.pub.Duplicates() != 1 {
			t.Errorf("Duplicates = %d, want 1", e.pub.Duplicates())
		}
	})
	t.Run("a new replica indexes the stream and drops what it holds", func(t *testing.T) {
		// The stream now holds fresh-1 (the subtest before), not m-dup-0001.
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		dir := t.TempDir()
		dd, err := events.NewDedupe(t.Context(), e.js, events.DedupeOptions{Window: 24 * time.Hour, FilterBits: 1 << 16, Dir: dir}, logger)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { _ = dd.Run(ctx); close(done) }()
		deadline := time.Now().Add(10 * time.Second)
		for !dd.Filter().Warm() {
			if time.Now().After(deadline) {
				t.Fatal("index not caught up after 10 s")
			}
			time.Sleep(10 * time.Millisecond)
		}
		pub := &events.Publisher{JS: e.js, Dedupe: dd}
		evs := []tracking.Event{{Type: "track", MessageID: "fresh-1", JSON: []byte(track("fresh-1"))}, {Type: "track", MessageID: "fresh-2", JSON: []byte(track("fresh-2"))}}
		if err := pub.Publish(t.Context(), ws, src, evs); err != nil {
			t.Fatal(err)
		}
		if ids := messageIDs(e.stored()); strings.Join(ids, ",") != "fresh-1,fresh-2" {
			t.Errorf("stored %v, want fresh-1 (before) and fresh-2 only", ids)
		}
		cancel()
		<-done
		if err := dd.Close(); err != nil {
			t.Fatal(err)
		}
		// Restarted on the same directory, it remembers without the stream:
		// the stream is replaced by an empty one.
		resetStream()
		dd, err = events.NewDedupe(t.Context(), e.js, events.DedupeOptions{Window: 24 * time.Hour, FilterBits: 1 << 16, Dir: dir}, logger)
		if err != nil {
			t.Fatal(err)
		}
		defer dd.Close()
		pub = &events.Publisher{JS: e.js, Dedupe: dd}
		if err := pub.Publish(t.Context(), ws, src, evs); err != nil {
			t.Fatal(err)
		}
		if ids := messageIDs(e.stored()); len(ids) != 0 || pub.Duplicates() != 2 {
			t.Errorf("after the restart: stored %v, duplicates %d; want nothing stored, 2 duplicates", ids, pub.Duplicates())
		}
	})
}

func TestDedupeWindowExpires(t *testing.T) {
	e := newEnv(t, nil, time.Second)
	if r := e.do("POST", "/v1/track", []byte(track("short-1")), nil); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	// The 1 s window passes (the index compares the time an id was stored).
	deadline := time.Now().Add(15 * time.Second)
	for {
		seen, err := e.pub.Dedupe.Seen(t.Context(), []string{events.Key(ws, "short-1")})
		if err != nil {
			t.Fatal(err)
		}
		if !seen[0] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("short-1 still seen 15 s after a 1 s window")
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.freshStream()
	if r := e.do("POST", "/v1/track", []byte(track("short-1")), nil); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if ids := messageIDs(e.stored()); strings.Join(ids, ",") != "short-1" {
		t.Errorf("after the window: stored %v, want short-1 again", ids)
	}
}

func TestBackPressure(t *testing.T) {
	// A publish that timed out may have been stored: the answer must not
	// claim otherwise, and tells how to retry safely.
	const storeMsg = "events may not have been stored; retry with the same messageIds (duplicates are dropped)"
	t.Run("a full stream (DiscardNew) answers 503 with Retry-After, and nothing is marked seen", func(t *testing.T) {
		e := newEnv(t, func(c *natsjs.StreamConfig) { c.MaxBytes = 4096; c.Discard = natsjs.DiscardNew }, time.Hour)
		var last result
		for i := 0; i < 50; i++ {
			last = e.do("POST", "/v1/track", []byte(`{"userId":"u","event":"E","messageId":"full-`+string(rune('a'+i%26))+string(rune('a'+i/26))+`","properties":{"pad":"`+strings.Repeat("p", 400)+`"}}`), nil)
			if last.status != 200 {
				break
			}
		}
		if last.status != 503 || last.header.Get("Retry-After") != "1" || last.body["code"] != "store_unavailable" || last.body["message"] != storeMsg {
			t.Fatalf("status %d Retry-After %q %v", last.status, last.header.Get("Retry-After"), last.body)
		}
	})
	t.Run("JetStream down answers 503 with Retry-After (ing-18 outage)", func(t *testing.T) {
		e := newEnv(t, nil, time.Hour)
		e.ns.Shutdown()
		e.ns.WaitForShutdown()
		r := e.do("POST", "/v1/track", []byte(track("down-1")), nil)
		if r.status != 503 || r.header.Get("Retry-After") != "1" || r.body["code"] != "store_unavailable" || r.body["message"] != storeMsg {
			t.Errorf("status %d Retry-After %q %v", r.status, r.header.Get("Retry-After"), r.body)
		}
	})
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, nil, time.Hour)
	e.h.Limiter = &httpapi.RateLimiter{EventsPerSecond: 1}
	items := make([]string, 2500)
	for i := range items {
		items[i] = `{"type":"track","userId":"u","event":"E"}`
	}
	// The burst is one full batch; the next request exceeds it.
	if r := e.do("POST", "/v1/batch", []byte(`{"batch":[`+strings.Join(items, ",")+`]}`), nil); r.status != 200 {
		t.Fatalf("first batch: %d", r.status)
	}
	r := e.do("POST", "/v1/track", []byte(track("rl-1")), nil)
	if r.status != 429 || r.header.Get("Retry-After") != "1" || r.header.Get("X-RateLimit-Reset") != "1" || r.body["code"] != "rate_limited" {
		t.Errorf("status %d headers %v body %v", r.status, r.header, r.body)
	}
}

func TestSettings(t *testing.T) {
	e := newEnv(t, nil, time.Hour)
	get := func() map[string]any {
		r := e.do("GET", "/v1/projects/"+wk+"/settings", nil, map[string]string{})
		if r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		return r.body["integrations"].(map[string]any)["Segment.io"].(map[string]any)
	}
	t.Run("apiHost defaults to the request's host", func(t *testing.T) {
		s := get()
		host := strings.TrimPrefix(e.srv.URL, "http://")
		if s["apiKey"] != wk || s["apiHost"] != host+"/v1" || s["protocol"] != "http" {
			t.Errorf("Segment.io = %v", s)
		}
	})
	t.Run("apiHost is the configured public URL", func(t *testing.T) {
		e.h.PublicURL = "https://events.example.com/"
		if s := get(); s["apiHost"] != "events.example.com/v1" || s["protocol"] != "https" {
			t.Errorf("Segment.io = %v", s)
		}
	})
	t.Run("unknown key is 404", func(t *testing.T) {
		if r := e.do("GET", "/v1/projects/nope/settings", nil, map[string]string{}); r.status != 404 {
			t.Errorf("status %d", r.status)
		}
	})
}

func TestClientIP(t *testing.T) {
	e := newEnv(t, nil, time.Hour)
	send := func(id string, xff string) string {
		t.Helper()
		hdr := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(wk+":"))}
		if xff != "" {
			hdr["X-Forwarded-For"] = xff
		}
		if r := e.do("POST", "/v1/track", []byte(track(id)), hdr); r.status != 200 {
			t.Fatalf("status %d %v", r.status, r.body)
		}
		for _, ev := range e.stored() {
			if ev["messageId"] == id {
				return ev["context"].(map[string]any)["ip"].(string)
			}
		}
		t.Fatalf("%s not stored", id)
		return ""
	}
	if got := send("ip-1", "203.0.113.5"); got != "127.0.0.1" {
		t.Errorf("untrusted peer: context.ip = %s, want the connection's 127.0.0.1", got)
	}
	e.h.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	if got := send("ip-2", "198.51.100.9, 203.0.113.5, 10.1.2.3"); got != "203.0.113.5" {
		t.Errorf("trusted peer: context.ip = %s, want 203.0.113.5 (right-most untrusted hop)", got)
	}
}

func TestSanctions(t *testing.T) {
	e := newEnv(t, nil, time.Hour)
	path := filepath.Join(t.TempDir(), "country.mmdb")
	if err := geotest.Write(path, map[string]string{"203.0.113.0/24": "IR", "198.51.100.0/24": "DE"}); err != nil {
		t.Fatal(err)
	}
	db, err := geo.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	e.h.Sanctions = geo.NewPolicy(db, nil)
	e.h.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	tests := []struct {
		ip     string
		status int
	}{{"203.0.113.7", 451}, {"198.51.100.7", 200}, {"192.0.2.1", 200}}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			hdr := map[string]string{"X-Forwarded-For": tt.ip, "Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(wk+":"))}
			r := e.do("POST", "/v1/track", []byte(track("s-"+tt.ip)), hdr)
			if r.status != tt.status {
				t.Errorf("status %d %v, want %d", r.status, r.body, tt.status)
			}
		})
	}
	if e.h.Sanctions.Refused() != 1 {
		t.Errorf("Refused = %d, want 1", e.h.Sanctions.Refused())
	}
	for _, ev := range e.stored() {
		if ev["messageId"] == "s-203.0.113.7" {
			t.Error("a refused event was stored")
		}
	}
}

// TestMessagesSpeakTheAPIsTerms replays a hostile client's findings against
// an older build, whose rejections leaked Go formatting (`type %!q(<nil>)`,
// `type map[]`, `cannot unmarshal array into Go value of type
// map[string]interface {}`, `Go struct field .batch of type
// []json.RawMessage`): every message must use the API's terms.
func TestMessagesSpeakTheAPIsTerms(t *testing.T) {
	e := newEnv(t, nil, time.Hour)
	gz := func(s string) string {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write([]byte(s))
		_ = zw.Close()
		return b.String()
	}
	whole := gz(`{"batch":[` + track("gz-trunc") + `]}`)
	const types = "identify, track, page, screen, group, alias"
	tests := []struct {
		name, path, body, encoding string
		code, msg                  string
		rejected                   string // the first rejected item's message, when the answer lists them
	}{
		{"batch without type", "/v1/batch", `{"batch":[{"userId":"u","event":"E"}]}`, "", "no_valid_events",
			"none of the 1 events is valid; first: type is required: one of " + types, "type is required: one of " + types},
		{"batch with a null type", "/v1/batch", `{"batch":[{"type":null,"userId":"u"}]}`, "", "no_valid_events",
			"none of the 1 events is valid; first: type is required: one of " + types, "type is required: one of " + types},
		{"batch with an object type", "/v1/batch", `{"batch":[{"type":{},"userId":"u"}]}`, "", "no_valid_events",
			"none of the 1 events is valid; first: type {} is not one of " + types, "type {} is not one of " + types},
		{"batch with an array item", "/v1/batch", `{"batch":[[1]]}`, "", "no_valid_events",
			"none of the 1 events is valid; first: event must be a JSON object, not an array", "event must be a JSON object, not an array"},
		{"body that is an array (batch)", "/v1/batch", `[{"type":"track"}]`, "", "invalid_json", "body must be a JSON object with a batch array, not an array", ""},
		{"body that is an array (single)", "/v1/track", `[{"userId":"u"}]`, "", "invalid_json", "body must be a JSON object, not an array", ""},
		{"body that is a string", "/v1/track", `"hello"`, "", "invalid_json", "body must be a JSON object, not a string", ""},
		{"body that is null", "/v1/batch", `null`, "", "invalid_json", "body must be a JSON object with a batch array, not null", ""},
		{"batch that is an object", "/v1/batch", `{"batch":{"type":"track"}}`, "", "invalid_batch", "batch must be an array of events, not an object", ""},
		{"batch that is a string", "/v1/batch", `{"batch":"x"}`, "", "invalid_batch", "batch must be an array of events, not a string", ""},
		{"top-level context that is an array", "/v1/batch", `{"batch":[` + track("c-1") + `],"context":[]}`, "", "invalid_context", "top-level context must be an object, not an array", ""},
		{"truncated JSON", "/v1/track", `{"userId":"u"`, "", "invalid_json", "body is not valid JSON: it ends before the JSON value is complete", ""},
		{"a syntax error", "/v1/batch", `{"batch":[}`, "", "invalid_json", "body is not valid JSON: invalid character '}' looking for beginning of value (at byte 11)", ""},
		{"data after the object", "/v1/track", `{"userId":"u","event":"E"} {}`, "", "invalid_json", "body has data after the JSON object", ""},
		{"an object type on a single call", "/v1/track", `{"type":{},"userId":"u","event":"E"}`, "", "type_mismatch", "body type {} does not match the track endpoint", ""},
		{"not gzip", "/v1/batch", `{"batch":[]}`, "gzip", "invalid_encoding", "body is not gzip data (it is sent with Content-Encoding: gzip)", ""},
		{"truncated gzip", "/v1/batch", whole[:len(whole)-6], "gzip", "invalid_encoding", "gzip body is corrupt or truncated", ""},
		{"unknown encoding", "/v1/batch", `{}`, "br", "unsupported_encoding", `Content-Encoding "br" is not supported (use gzip or none)`, ""},
	}
	goisms := []string{"%!", "map[", "interface {}", "Go value", "Go struct", "json.RawMessage", "json:", "gzip:", "flate:", "<nil>", "unexpected EOF"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(wk+":"))}
			if tt.encoding != "" {
				hdr["Content-Encoding"] = tt.encoding
			}
			r := e.do("POST", tt.path, []byte(tt.body), hdr)
			if r.status != 400 || r.body["code"] != tt.code || r.body["message"] != tt.msg {
				t.Errorf("status %d code %v message %q\nwant 400 %s %q", r.status, r.body["code"], r.body["message"], tt.code, tt.msg)
			}
			if tt.rejected != "" {
				rej, _ := r.body["rejected"].([]any)
				if len(rej) == 0 || rej[0].(map[string]any)["message"] != tt.rejected {
					t.Errorf("rejected %v, want first message %q", r.body["rejected"], tt.rejected)
				}
			}
			raw, _ := json.Marshal(r.body)
			for _, g := range goisms {
				if strings.Contains(string(raw), g) {
					t.Errorf("answer %s contains %q", raw, g)
				}
			}
		})
	}
	t.Run("an unreadable timestamp warning shows the value as JSON", func(t *testing.T) {
		r := e.do("POST", "/v1/track", []byte(`{"userId":"u","event":"E","messageId":"w-1","timestamp":{"at":1}}`), nil)
		warn, _ := r.body["warnings"].([]any)
		if r.status != 200 || len(warn) != 1 || warn[0].(map[string]any)["message"] != `timestamp {"at":1} is not an ISO-8601 time or epoch milliseconds; timestamp is receivedAt` {
			t.Errorf("status %d %v", r.status, r.body)
		}
	})
}
