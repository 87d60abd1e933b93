package dev

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestOneTrackCallIsOneTrace runs the whole process in-process with an
// in-memory span exporter: one track call must produce one trace holding
// the ingest (HTTP server), publish, consume and send spans, and the
// webhook receiver must see that trace id in traceparent.
func TestOneTrackCallIsOneTrace(t *testing.T) {
	// Not parallel: Run installs the global OpenTelemetry providers.
	var mu sync.Mutex
	var hookTraceparent string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), "trace-one") {
			mu.Lock()
			hookTraceparent = r.Header.Get("traceparent")
			mu.Unlock()
		}
	}))
	defer hook.Close()

	exp := tracetest.NewInMemoryExporter()
	cfg, err := ParseFlags([]string{"--data-dir", t.TempDir(), "--http-addr", freePort(t), "--grpc-addr", freePort(t), "--log-level", "warn"},
		func(k string) string {
			return map[string]string{"SWITCHYARD_ADMIN_TOKEN": "trace-test-admin-token", "SWITCHYARD_DEV_WRITE_KEY": "trace-test-wk"}[k]
		})
	if err != nil {
		t.Fatal(err)
	}
	cfg.SpanExporter = exp
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, io.Discard, io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	base := "http://" + cfg.HTTPAddr
	waitFor(t, "ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	do := func(method, path, body string, auth func(*http.Request)) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		auth(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	srcID := bootstrapSourceID(t, base)
	if st := do(http.MethodPost, "/api/v1/destinations", `{"name":"hook","type":"webhook","sourceId":"`+srcID+`","settings":{"url":"`+hook.URL+`"}}`,
		func(r *http.Request) { r.Header.Set("Authorization", "Bearer trace-test-admin-token") }); st != http.StatusOK {
		t.Fatalf("create destination: %d", st)
	}
	exp.Reset()
	if st := do(http.MethodPost, "/v1/track", `{"userId":"u","event":"Traced","messageId":"trace-one"}`,
		func(r *http.Request) { r.SetBasicAuth("trace-test-wk", "") }); st != http.StatusOK {
		t.Fatalf("track: %d", st)
	}
	waitFor(t, "webhook delivery", func() bool { mu.Lock(); defer mu.Unlock(); return hookTraceparent != "" })

	var traceID string
	for _, s := range exp.GetSpans() {
		if s.Name == "POST /v1/track" {
			traceID = s.SpanContext.TraceID().String()
		}
	}
	if traceID == "" {
		t.Fatalf("no ingest span named POST /v1/track among %v", spanNames(exp))
	}
	// The webhook answers before the send and consume spans end, so wait
	// for them to be exported.
	kinds := map[string]bool{}
	collect := func() bool {
		clear(kinds)
		for _, s := range exp.GetSpans() {
			if s.SpanContext.TraceID().String() != traceID {
				continue
			}
			switch {
			case s.Name == "POST /v1/track":
				kinds["ingest"] = true
			case strings.HasPrefix(s.Name, "publish "):
				kinds["publish"] = true
			case s.SpanKind.String() == "consumer":
				kinds["consume"] = true
			case s.SpanKind.String() == "client" && strings.Contains(s.Name, "POST"):
				kinds["send"] = true
			}
		}
		return len(kinds) == 4
	}
	deadline := time.Now().Add(10 * time.Second)
	for !collect() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, k := range []string{"ingest", "publish", "consume", "send"} {
		if !kinds[k] {
			t.Errorf("trace %s has no %s span; spans: %v", traceID, k, spanNames(exp))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if parts := strings.Split(hookTraceparent, "-"); len(parts) != 4 || parts[1] != traceID {
		t.Errorf("webhook traceparent = %q, want trace id %s", hookTraceparent, traceID)
	}
}

func spanNames(exp *tracetest.InMemoryExporter) []string {
	var out []string
	for _, s := range exp.GetSpans() {
		out = append(out, s.Name+"("+s.SpanKind.String()+")")
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func bootstrapSourceID(t *testing.T, base string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/sources", nil)
	req.Header.Set("Authorization", "Bearer trace-test-admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	i := strings.Index(string(b), `"id":"`)
	if i < 0 {
		t.Fatalf("no source in %s", b)
	}
	rest := string(b)[i+6:]
	return rest[:strings.Index(rest, `"`)]
}
