package dispatch

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/switchyardhq/switchyard/services/delivery/internal/metrics"
	"github.com/switchyardhq/switchyard/services/delivery/internal/pipeline"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
)

const (
	testWorkspace = "ws-test"
	testSource    = "src-test"
)

// step is one scripted answer of a stub destination (cases/README.md).
type step struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	DelayMS int               `json:"delay_ms"`
}

// attempt is one request a stub got.
type attempt struct {
	At     time.Time
	Key    string // Idempotency-Key
	Body   []byte
	Header http.Header
	Status int
}

// stub is a real HTTP server answering its script, then 200.
type stub struct {
	srv    *httptest.Server
	mu     sync.Mutex
	script []step
	hang   bool // never answer before the client gives up
	got    []attempt
}

func newStub(t *testing.T, script ...step) *stub {
	t.Helper()
	s := &stub{script: script}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *stub) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	st := step{Status: 200}
	if n := len(s.got); n < len(s.script) {
		st = s.script[n]
	}
	hang := s.hang
	s.got = append(s.got, attempt{At: time.Now(), Key: r.Header.Get("Idempotency-Key"), Body: body, Header: r.Header.Clone(), Status: st.Status})
	s.mu.Unlock()
	if hang {
		<-r.Context().Done()
		return
	}
	if st.DelayMS > 0 {
		select {
		case <-time.After(time.Duration(st.DelayMS) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
	}
	for k, v := range st.Headers {
		w.Header().Set(k, v)
	}
	if st.Status == 0 {
		st.Status = 200
	}
	w.WriteHeader(st.Status)
	_, _ = io.WriteString(w, st.Body)
}

func (s *stub) attempts() []attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// waitAttempts polls until the stub got n requests.
func (s *stub) waitAttempts(t *testing.T, n int, timeout time.Duration) []attempt {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.attempts()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("stub got %d requests after %v, want %d", len(got), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// env is an embedded NATS with Switchyard's streams.
type env struct {
	js natsjs.JetStream
}

func newEnv(t *testing.T) *env { return newEnvB(t) }

// newEnvB is newEnv for tests and benchmarks.
func newEnvB(t testing.TB) *env {
	t.Helper()
	_, conn := testenv.NATS(t)
	if err := streams.Ensure(t.Context(), conn.JS, streams.DefaultOptions); err != nil {
		t.Fatal(err)
	}
	if err := streams.EnsureDelivery(t.Context(), conn.JS, streams.DefaultOptions); err != nil {
		t.Fatal(err)
	}
	if err := streams.EnsureRETL(t.Context(), conn.JS, streams.DefaultOptions); err != nil {
		t.Fatal(err)
	}
	return &env{js: conn.JS}
}

// running is a started dispatcher.
type running struct {
	d      *Dispatcher
	cancel context.CancelFunc
}

func (e *env) start(t *testing.T, opts Options, specs ...pipeline.Spec) *running {
	return e.startB(t, opts, specs...)
}

// startB is start for tests and benchmarks.
func (e *env) startB(t testing.TB, opts Options, specs ...pipeline.Spec) *running {
	t.Helper()
	if opts.SendTimeout == 0 {
		opts.SendTimeout = 5 * time.Second
	}
	if opts.Retry.Base == 0 {
		opts.Retry.Base = 200 * time.Millisecond
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	d := New(e.js, metrics.New(nil), logger, opts)
	ctx, cancel := context.WithCancel(context.Background())
	exists := map[string]bool{}
	for _, s := range specs {
		exists[s.ID] = true
	}
	d.Reconcile(ctx, specs, exists)
	r := &running{d: d, cancel: cancel}
	t.Cleanup(r.stop)
	return r
}

func (r *running) stop() { r.cancel(); r.d.Wait() }

// hookSpec is a webhook destination on the test source.
func hookSpec(id, url string, extra map[string]any) pipeline.Spec {
	settings := map[string]any{"url": url}
	for k, v := range extra {
		settings[k] = v
	}
	return pipeline.Spec{ID: id, WorkspaceID: testWorkspace, SourceID: testSource, Name: id, Type: "webhook",
		Settings: settings, CreatedAt: time.Now().Add(-time.Minute)}
}

// publish stores events as Ingest does.
func (e *env) publish(t *testing.T, events ...map[string]any) {
	t.Helper()
	for _, ev := range events {
		raw, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		typ, _ := ev["type"].(string)
		id, _ := ev["messageId"].(string)
		if _, err := jetstream.Publish(t.Context(), e.js, streams.EventsSubject(testWorkspace, testSource), raw,
			jetstream.Headers{MsgID: id, Workspace: testWorkspace, Source: testSource, EventType: typ}); err != nil {
			t.Fatal(err)
		}
	}
}

// caseInput reads one case of ../shared/cases/cases.jsonl, copied to testdata.
func caseInput(t *testing.T, id string, v any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "cases", id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Input json.RawMessage `json:"input"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(c.Input, v); err != nil {
		t.Fatal(err)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
