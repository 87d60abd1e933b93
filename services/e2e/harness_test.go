package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Deadlines of the runtime contract (DESIGN.md "Runtime contract" and the e2e brief).
const (
	readyTimeout    = 60 * time.Second // GET /readyz answers 200 within this after start
	shutdownTimeout = 20 * time.Second // the process exits 0 within this after SIGTERM
	warehouseWait   = 30 * time.Second // loaded rows become visible to the query endpoint
	deliveryWait    = 30 * time.Second // webhook deliveries arrive
	pollInterval    = 200 * time.Millisecond
)

// switchyardPkg is the all-in-one binary's package, built once per test run.
const switchyardPkg = "github.com/switchyardhq/switchyard/services/switchyard/cmd/switchyard"

var (
	// binPath is the switchyard binary under test (SWITCHYARD_BIN or built in TestMain).
	binPath string
	// sdkDir holds send.mjs and its node_modules.
	sdkDir string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	sdkDir = filepath.Join(root, "services", "e2e", "sdk")

	if bin := os.Getenv("SWITCHYARD_BIN"); bin != "" {
		binPath = bin
	} else {
		tmp, err := os.MkdirTemp("", "switchyard-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		binPath = filepath.Join(tmp, "switchyard")
		build := exec.Command("go", "build", "-o", binPath, switchyardPkg)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: go build %s: %v\n%s", switchyardPkg, err, out)
			return 1
		}
	}

	if err := ensureSDK(sdkDir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// repoRoot walks up from the working directory to the directory holding go.work.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work found above the working directory")
		}
		dir = parent
	}
}

// ensureSDK installs the pinned SDK with `npm ci` when node_modules is missing,
// so a plain `go test` works as well as `make test`.
func ensureSDK(dir string) error {
	if _, err := exec.LookPath("node"); err != nil {
		return errors.New("node is required for the real-SDK tests and is not on PATH")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@segment", "analytics-node", "package.json")); err == nil {
		return nil
	}
	npm := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	npm.Dir = dir
	if out, err := npm.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Free ports

var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
)

// freeAddr returns 127.0.0.1:P for a port that was free a moment ago and that
// no other test of this run was handed.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		portsMu.Lock()
		taken := portsUsed[port]
		portsUsed[port] = true
		portsMu.Unlock()
		if !taken {
			return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		}
	}
	t.Fatal("no free port found")
	return ""
}

// ---------------------------------------------------------------------------
// The switchyard process

// bootstrap is <data-dir>/bootstrap.json as written by `switchyard dev`.
type bootstrap struct {
	WorkspaceID string `json:"workspace_id"`
	AdminToken  string `json:"admin_token"`
	SourceID    string `json:"source_id"`
	WriteKey    string `json:"write_key"`
	WarehouseID string `json:"warehouse_id"`
}

// switchyard is one `switchyard dev` subprocess with its data dir and ports,
// which survive a restart.
type switchyard struct {
	dataDir  string
	httpAddr string
	grpcAddr string
	env      []string
	logs     *syncBuffer
	client   *http.Client

	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exited; exitErr is set before
	// exitErr is the result of cmd.Wait.
	exitErr error

	// Boot is bootstrap.json, read after the first start.
	Boot bootstrap
}

// startSwitchyard starts `switchyard dev` on a fresh data dir and free ports,
// waits for /readyz and reads bootstrap.json. Cleanup stops it and asserts a
// clean exit; its output is logged when the test failed or runs with -v.
func startSwitchyard(t *testing.T) *switchyard {
	t.Helper()
	s := &switchyard{
		dataDir:  t.TempDir(),
		httpAddr: freeAddr(t),
		grpcAddr: freeAddr(t),
		logs:     &syncBuffer{},
		client:   &http.Client{Timeout: 15 * time.Second},
	}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	s.env = append(os.Environ(),
		"SWITCHYARD_ADMIN_TOKEN=e2e-admin-"+suffix,
		"SWITCHYARD_DEV_WRITE_KEY=e2e-wk-"+suffix,
	)
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() || testing.Verbose() {
			t.Logf("switchyard output (data dir %s):\n%s", s.dataDir, s.logs.String())
		}
	})
	s.start(t)

	bootFile := filepath.Join(s.dataDir, "bootstrap.json")
	raw, err := os.ReadFile(bootFile)
	if err != nil {
		t.Fatalf("read bootstrap.json: %v", err)
	}
	if fi, err := os.Stat(bootFile); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("bootstrap.json mode = %v, want 0600 (it holds secrets)", fi.Mode().Perm())
	}
	if err := json.Unmarshal(raw, &s.Boot); err != nil {
		t.Fatalf("parse bootstrap.json: %v\n%s", err, raw)
	}
	for k, v := range map[string]string{
		"workspace_id": s.Boot.WorkspaceID, "admin_token": s.Boot.AdminToken,
		"source_id": s.Boot.SourceID, "write_key": s.Boot.WriteKey, "warehouse_id": s.Boot.WarehouseID,
	} {
		if v == "" {
			t.Fatalf("bootstrap.json: %s is empty:\n%s", k, raw)
		}
	}
	if want := "e2e-admin-" + suffix; s.Boot.AdminToken != want {
		t.Errorf("bootstrap admin_token = %q, want %q from SWITCHYARD_ADMIN_TOKEN", s.Boot.AdminToken, want)
	}
	if want := "e2e-wk-" + suffix; s.Boot.WriteKey != want {
		t.Errorf("bootstrap write_key = %q, want %q from SWITCHYARD_DEV_WRITE_KEY", s.Boot.WriteKey, want)
	}
	return s
}

// baseURL is the HTTP listener's root, e.g. http://127.0.0.1:PORT.
func (s *switchyard) baseURL() string { return "http://" + s.httpAddr }

// start launches the process and waits until /readyz answers 200.
func (s *switchyard) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(binPath, "dev",
		"--data-dir", s.dataDir,
		"--http-addr", s.httpAddr,
		"--grpc-addr", s.grpcAddr,
	)
	cmd.Env = s.env
	cmd.Stdout = s.logs
	cmd.Stderr = s.logs
	// Bound the wait for the output pipes should a grandchild keep them open.
	cmd.WaitDelay = 5 * time.Second
	fmt.Fprintf(s.logs, "=== e2e: starting %s\n", strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start switchyard: %v", err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func(done chan struct{}) {
		s.exitErr = cmd.Wait()
		close(done)
	}(s.done)

	deadline := time.Now().Add(readyTimeout)
	var last string
	for {
		select {
		case <-s.done:
			s.cmd = nil
			t.Fatalf("switchyard exited before it was ready: %v", s.exitErr)
		default:
		}
		resp, err := s.client.Get(s.baseURL() + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("status %d: %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("switchyard not ready after %v; last /readyz: %s", readyTimeout, last)
		}
		time.Sleep(pollInterval)
	}
}

// stop sends SIGTERM and asserts that the process exits 0 within
// shutdownTimeout. It is a no-op when the process is not running.
func (s *switchyard) stop(t *testing.T) {
	t.Helper()
	if s.cmd == nil {
		return
	}
	cmd, done := s.cmd, s.done
	s.cmd = nil
	select {
	case <-done:
		t.Errorf("switchyard exited on its own before SIGTERM: %v", s.exitErr)
		return
	default:
	}
	fmt.Fprintf(s.logs, "=== e2e: sending SIGTERM\n")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("send SIGTERM: %v", err)
	}
	select {
	case <-done:
		if s.exitErr != nil {
			t.Errorf("switchyard exit after SIGTERM: %v, want exit status 0", s.exitErr)
		}
	case <-time.After(shutdownTimeout):
		t.Errorf("switchyard still running %v after SIGTERM; killing it", shutdownTimeout)
		_ = cmd.Process.Kill()
		<-done
	}
}

// restart stops the process (asserting a clean exit) and starts it again on
// the same data dir, ports and environment.
func (s *switchyard) restart(t *testing.T) {
	t.Helper()
	s.stop(t)
	s.start(t)
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of stdout and stderr.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ---------------------------------------------------------------------------
// HTTP helpers

// httpResult is a finished HTTP exchange.
type httpResult struct {
	Status int
	Header http.Header
	Body   []byte
}

// request performs one HTTP request against the switchyard listener. body is
// sent as is when it is a []byte or string, JSON-encoded otherwise (nil: no body).
// setAuth, when not nil, decorates the request (credentials).
func (s *switchyard) request(t *testing.T, method, path string, body any, setAuth func(*http.Request)) httpResult {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encode request body: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.baseURL()+path, rd)
	if err != nil {
		t.Fatalf("new request %s %s: %v", method, path, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if setAuth != nil {
		setAuth(req)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return httpResult{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

// bearer authenticates a REST request with token.
func bearer(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

// basicWriteKey authenticates a Tracking API request the way the SDKs do.
func basicWriteKey(writeKey string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(writeKey, "") }
}

// admin performs a REST call with the bootstrap admin token.
func (s *switchyard) admin(t *testing.T, method, path string, body any) httpResult {
	t.Helper()
	return s.request(t, method, path, body, bearer(s.Boot.AdminToken))
}

// decodeJSON decodes raw into v keeping numbers as json.Number, failing the test on error.
func decodeJSON(t *testing.T, raw []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode JSON: %v\n%s", err, raw)
	}
}

// createWebhookDestination creates an enabled webhook destination for the
// bootstrap source posting to url, and returns its id.
func (s *switchyard) createWebhookDestination(t *testing.T, name, url string) string {
	t.Helper()
	res := s.admin(t, http.MethodPost, "/api/v1/destinations", map[string]any{
		"name":     name,
		"type":     "webhook",
		"sourceId": s.Boot.SourceID,
		"enabled":  true,
		"settings": map[string]any{"url": url},
	})
	if res.Status != http.StatusOK {
		t.Fatalf("create destination: status %d: %s", res.Status, res.Body)
	}
	var out struct {
		Destination struct {
			ID string `json:"id"`
		} `json:"destination"`
	}
	decodeJSON(t, res.Body, &out)
	if out.Destination.ID == "" {
		t.Fatalf("create destination: no destination.id in %s", res.Body)
	}
	return out.Destination.ID
}

// listDestinations returns GET /api/v1/destinations' destinations.
func (s *switchyard) listDestinations(t *testing.T) []map[string]any {
	t.Helper()
	res := s.admin(t, http.MethodGet, "/api/v1/destinations", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("list destinations: status %d: %s", res.Status, res.Body)
	}
	var out struct {
		Destinations []map[string]any `json:"destinations"`
	}
	decodeJSON(t, res.Body, &out)
	return out.Destinations
}

// ---------------------------------------------------------------------------
// Warehouse queries

// queryResult is the warehouse query endpoint's answer.
type queryResult struct {
	Columns []string         `json:"columns"`
	Rows    []map[string]any `json:"rows"`
}

// queryPath is the read-only query endpoint of the bootstrap warehouse.
func (s *switchyard) queryPath() string {
	return "/api/v1/warehouses/" + s.Boot.WarehouseID + "/query"
}

// tryQuery runs sql and returns the HTTP result and, on 200, the decoded rows.
func (s *switchyard) tryQuery(t *testing.T, sql string) (httpResult, queryResult) {
	t.Helper()
	res := s.admin(t, http.MethodPost, s.queryPath(), map[string]any{"sql": sql})
	var qr queryResult
	if res.Status == http.StatusOK {
		decodeJSON(t, res.Body, &qr)
	}
	return res, qr
}

// query runs sql and fails the test unless it answers 200.
func (s *switchyard) query(t *testing.T, sql string) queryResult {
	t.Helper()
	res, qr := s.tryQuery(t, sql)
	if res.Status != http.StatusOK {
		t.Fatalf("query %q: status %d: %s", sql, res.Status, res.Body)
	}
	return qr
}

// pollQuery runs sql until done accepts the result, and fails the test after
// timeout. Errors (a table not created yet) count as "not yet".
func (s *switchyard) pollQuery(t *testing.T, sql string, timeout time.Duration, done func(queryResult) bool) queryResult {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		res, qr := s.tryQuery(t, sql)
		if res.Status == http.StatusOK && done(qr) {
			return qr
		}
		if time.Now().After(deadline) {
			t.Fatalf("query %q: condition not met after %v; last answer: status %d: %s",
				sql, timeout, res.Status, truncate(res.Body, 4000))
		}
		time.Sleep(pollInterval)
	}
}

// idCounts maps the "id" column to the "n" column of a `select id, count(*) as n … group by id`.
func idCounts(t *testing.T, qr queryResult) map[string]int {
	t.Helper()
	out := make(map[string]int, len(qr.Rows))
	for _, row := range qr.Rows {
		id, ok := row["id"].(string)
		if !ok {
			t.Fatalf("row without string id: %v", row)
		}
		out[id] = int(asFloat(t, row["n"]))
	}
	return out
}

// hasAll reports whether counts holds every id of ids.
func hasAll(counts map[string]int, ids []string) bool {
	for _, id := range ids {
		if counts[id] == 0 {
			return false
		}
	}
	return true
}

// assertExactlyOnce checks that counts has exactly ids, each once.
func assertExactlyOnce(t *testing.T, table string, counts map[string]int, ids []string) {
	t.Helper()
	for _, id := range ids {
		if n := counts[id]; n != 1 {
			t.Errorf("%s: id %q appears %d times, want 1", table, id, n)
		}
	}
	for id := range counts {
		if !slices.Contains(ids, id) {
			t.Errorf("%s: unexpected id %q", table, id)
		}
	}
}

// waitRowsOnce polls table until every id of ids is there, then asserts each
// appears exactly once and nothing else does.
func (s *switchyard) waitRowsOnce(t *testing.T, table string, ids []string) {
	t.Helper()
	sql := "select id, count(*) as n from " + table + " group by id"
	qr := s.pollQuery(t, sql, warehouseWait, func(qr queryResult) bool {
		return hasAll(idCounts(t, qr), ids)
	})
	assertExactlyOnce(t, table, idCounts(t, qr), ids)
}

// assertRowsOnce asserts, without waiting, that every id of ids is in table exactly once.
func (s *switchyard) assertRowsOnce(t *testing.T, table string, ids []string) {
	t.Helper()
	qr := s.query(t, "select id, count(*) as n from "+table+" group by id")
	assertExactlyOnce(t, table, idCounts(t, qr), ids)
}

// oneRow runs sql, which must return exactly one row, and returns it.
func (s *switchyard) oneRow(t *testing.T, sql string) map[string]any {
	t.Helper()
	qr := s.query(t, sql)
	if len(qr.Rows) != 1 {
		t.Fatalf("query %q: %d rows, want 1: %v", sql, len(qr.Rows), qr.Rows)
	}
	return qr.Rows[0]
}

// asFloat converts a JSON number (or a numeric string, as protojson renders
// 64-bit integers) to float64.
func asFloat(t *testing.T, v any) float64 {
	t.Helper()
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		if err != nil {
			t.Fatalf("number %q: %v", n, err)
		}
		return f
	case float64:
		return n
	case string:
		f, err := strconv.ParseFloat(n, 64)
		if err != nil {
			t.Fatalf("value %q is not a number", n)
		}
		return f
	default:
		t.Fatalf("value %v (%T) is not a number", v, v)
		return 0
	}
}

// wantColumns checks row's columns against want: strings compare exactly,
// float64 values numerically, bools exactly.
func wantColumns(t *testing.T, what string, row map[string]any, want map[string]any) {
	t.Helper()
	for col, w := range want {
		got, ok := row[col]
		if !ok {
			t.Errorf("%s: no column %q in %v", what, col, row)
			continue
		}
		switch w := w.(type) {
		case float64:
			if got == nil || asFloat(t, got) != w {
				t.Errorf("%s: %s = %v, want %v", what, col, got, w)
			}
		default:
			if got != w {
				t.Errorf("%s: %s = %#v, want %#v", what, col, got, w)
			}
		}
	}
}

// wantNonEmpty checks that each of cols holds a non-null, non-empty value.
func wantNonEmpty(t *testing.T, what string, row map[string]any, cols ...string) {
	t.Helper()
	for _, col := range cols {
		if v, ok := row[col]; !ok || v == nil || v == "" {
			t.Errorf("%s: %s = %#v, want a value", what, col, v)
		}
	}
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}

// ---------------------------------------------------------------------------
// Webhook receiver

// webhookRequest is one request the receiver got.
type webhookRequest struct {
	Method    string
	MessageID string         // body.messageId; empty when the body was not a JSON object with one
	Body      map[string]any // decoded body, numbers as json.Number
	Raw       []byte
	Header    http.Header
	Status    int // the status the receiver answered
}

// webhookReceiver is a real HTTP server standing in for a webhook destination.
// It answers the statuses of its script to the first requests, in order, and
// 200 afterwards, and records every request.
type webhookReceiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	script   []int
	requests []webhookRequest
}

// newWebhookReceiver starts a receiver; failFirst are the statuses answered to
// the first len(failFirst) requests.
func newWebhookReceiver(t *testing.T, failFirst ...int) *webhookReceiver {
	t.Helper()
	r := &webhookReceiver{script: failFirst}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// URL is the hook endpoint to configure on the destination.
func (r *webhookReceiver) URL() string { return r.srv.URL + "/hook" }

func (r *webhookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	raw, _ := io.ReadAll(req.Body)
	rec := webhookRequest{Method: req.Method, Raw: raw, Header: req.Header.Clone()}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&rec.Body); err == nil {
		rec.MessageID, _ = rec.Body["messageId"].(string)
	}
	r.mu.Lock()
	rec.Status = http.StatusOK
	if n := len(r.requests); n < len(r.script) {
		rec.Status = r.script[n]
	}
	if req.URL.Path != "/hook" {
		rec.Status = http.StatusNotFound
	}
	r.requests = append(r.requests, rec)
	r.mu.Unlock()
	w.WriteHeader(rec.Status)
}

// snapshot returns a copy of the requests so far.
func (r *webhookReceiver) snapshot() []webhookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

// accepted returns, per messageId, the requests answered with a 2xx.
func (r *webhookReceiver) accepted() map[string][]webhookRequest {
	out := map[string][]webhookRequest{}
	for _, req := range r.snapshot() {
		if req.Status >= 200 && req.Status < 300 {
			out[req.MessageID] = append(out[req.MessageID], req)
		}
	}
	return out
}

// attempts returns, per messageId, how many requests carried it (any answer).
func (r *webhookReceiver) attempts() map[string]int {
	out := map[string]int{}
	for _, req := range r.snapshot() {
		out[req.MessageID]++
	}
	return out
}

// waitAccepted polls until every id of ids was answered a 2xx at least once.
func (r *webhookReceiver) waitAccepted(t *testing.T, ids []string, timeout time.Duration) map[string][]webhookRequest {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		acc := r.accepted()
		var missing []string
		for _, id := range ids {
			if len(acc[id]) == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return acc
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook: %d of %d messageIds not delivered after %v: %v (requests so far: %d)",
				len(missing), len(ids), timeout, missing, len(r.snapshot()))
		}
		time.Sleep(pollInterval)
	}
}

// assertWellFormed checks that every request was a POST of a JSON event with a messageId.
func (r *webhookReceiver) assertWellFormed(t *testing.T) {
	t.Helper()
	for _, req := range r.snapshot() {
		if req.Method != http.MethodPost {
			t.Errorf("webhook: got %s, want POST", req.Method)
		}
		if req.MessageID == "" {
			t.Errorf("webhook: body is not a JSON event with a messageId: %s", truncate(req.Raw, 500))
		}
	}
}

// ---------------------------------------------------------------------------
// Real SDK

// event is one SDK call as send.mjs takes it: "type" plus the call's parameters.
type event map[string]any

// messageID returns the event's messageId.
func (e event) messageID() string { s, _ := e["messageId"].(string); return s }

// loadEvents reads a JSON array of events from testdata.
func loadEvents(t *testing.T, name string) []event {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	var evs []event
	decodeJSON(t, raw, &evs)
	for i, e := range evs {
		if e.messageID() == "" {
			t.Fatalf("%s: event %d has no messageId", name, i)
		}
	}
	return evs
}

// messageIDs returns the messageIds of the events whose field key equals value
// (all events when key is empty).
func messageIDs(evs []event, key string, value any) []string {
	var ids []string
	for _, e := range evs {
		if key == "" || e[key] == value {
			ids = append(ids, e.messageID())
		}
	}
	return ids
}

// sendWithSDK sends evs through @segment/analytics-node (sdk/send.mjs) to s
// and fails the test unless the SDK reports every event delivered.
func sendWithSDK(t *testing.T, s *switchyard, evs []event) {
	t.Helper()
	in, err := json.Marshal(map[string]any{
		"host":     s.baseURL(),
		"writeKey": s.Boot.WriteKey,
		"events":   evs,
	})
	if err != nil {
		t.Fatalf("encode SDK input: %v", err)
	}
	file := filepath.Join(t.TempDir(), "events.json")
	if err := os.WriteFile(file, in, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(sdkDir, "send.mjs"), file)
	cmd.Dir = sdkDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("send.mjs: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var summary struct {
		Sent      int `json:"sent"`
		Delivered int `json:"delivered"`
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &summary); err != nil {
		t.Fatalf("send.mjs summary: %v\n%s", err, stdout.String())
	}
	if summary.Sent != len(evs) || summary.Delivered != len(evs) {
		t.Fatalf("send.mjs: sent %d delivered %d, want %d\nstderr: %s",
			summary.Sent, summary.Delivered, len(evs), stderr.String())
	}
}
