package dev

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestIngestProcessFollowsDev runs `switchyard dev` with its embedded NATS
// server on TCP and `switchyard ingest` against it (both in-process, each
// with its own listeners, data dir and NATS connection), and drives the
// Ingest process: its events land once in dev's DuckDB warehouse, its
// write keys and source states are Catalog's (followed over gRPC), and its
// event debugger authenticates API tokens through the remote Catalog.
func TestIngestProcessFollowsDev(t *testing.T) {
	// Not parallel: both Run functions install the global OpenTelemetry
	// providers.
	const adminToken, writeKey = "split-test-admin-token", "split-test-wk"
	natsAddr, devDir := freePort(t), t.TempDir()
	devCfg, err := ParseFlags([]string{"--data-dir", devDir, "--http-addr", freePort(t), "--grpc-addr", freePort(t),
		"--nats-addr", natsAddr, "--log-level", "warn"},
		func(k string) string {
			return map[string]string{"SWITCHYARD_ADMIN_TOKEN": adminToken, "SWITCHYARD_DEV_WRITE_KEY": writeKey}[k]
		})
	if err != nil {
		t.Fatal(err)
	}
	devLog := runInBackground(t, "dev", func(ctx context.Context, stderr io.Writer) error { return Run(ctx, devCfg, io.Discard, stderr) })
	devURL := "http://" + devCfg.HTTPAddr
	waitReady(t, devURL, devLog)

	ingCfg, err := ParseIngestFlags([]string{"--nats-url", "nats://" + natsAddr, "--catalog-addr", devCfg.GRPCAddr,
		"--data-dir", t.TempDir(), "--http-addr", freePort(t), "--grpc-addr", freePort(t), "--log-level", "warn"})
	if err != nil {
		t.Fatal(err)
	}
	// Registered after dev's, so stopped before it.
	ingLog := runInBackground(t, "ingest", func(ctx context.Context, stderr io.Writer) error { return RunIngest(ctx, ingCfg, stderr) })
	ingURL := "http://" + ingCfg.HTTPAddr
	waitReady(t, ingURL, ingLog)

	var boot Bootstrap
	raw, err := os.ReadFile(filepath.Join(devDir, BootstrapFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &boot); err != nil {
		t.Fatal(err)
	}
	basic := func(key string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(key, "") } }
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+adminToken) }
	none := func(*http.Request) {}

	batch := func(ids ...string) string {
		evs := make([]string, len(ids))
		for i, id := range ids {
			evs[i] = fmt.Sprintf(`{"type":"track","event":"Split Probe","userId":"u-split","messageId":%q,"properties":{"n":%d}}`, id, i)
		}
		return `{"batch":[` + strings.Join(evs, ",") + `]}`
	}
	ids := []string{"split-1", "split-2", "split-3", "split-4", "split-5"}
	for attempt := range 2 { // the second is a client's retry: deduplicated
		if st, body := do(t, http.MethodPost, ingURL+"/v1/batch", batch(ids...), basic(writeKey)); st != http.StatusOK {
			t.Fatalf("batch attempt %d at the ingest process: %d %s", attempt+1, st, body)
		}
	}
	// The warehouse loads in stream order: once an event sent after the
	// retry is loaded, a duplicate stored by the retry would be too.
	if st, body := do(t, http.MethodPost, ingURL+"/v1/batch", batch("split-marker"), basic(writeKey)); st != http.StatusOK {
		t.Fatalf("marker batch: %d %s", st, body)
	}
	counts := map[string]int{}
	sql := `{"sql":"select id, count(*) as n from http_api.split_probe group by id"}`
	waitFor(t, "the events in dev's warehouse", func() bool {
		st, body := do(t, http.MethodPost, devURL+"/api/v1/warehouses/"+boot.WarehouseID+"/query", sql, bearer)
		if st != http.StatusOK {
			return false // the table is created with the first load
		}
		counts = idCounts(t, body)
		return counts["split-marker"] > 0
	})
	for _, id := range append(ids, "split-marker") {
		if counts[id] != 1 {
			t.Errorf("warehouse: %s loaded %d times, want 1 (all: %v)", id, counts[id], counts)
		}
	}
	if len(counts) != len(ids)+1 {
		t.Errorf("warehouse holds %v, want exactly %v and split-marker", counts, ids)
	}

	// The event debugger's REST route, authenticated through the remote
	// Catalog.
	st, body := do(t, http.MethodGet, ingURL+"/api/v1/sources/"+boot.SourceID+"/events", "", bearer)
	if st != http.StatusOK || !strings.Contains(string(body), `"split-3"`) {
		t.Errorf("debugger with the admin token: %d %s, want 200 listing split-3", st, body)
	}
	if st, body := do(t, http.MethodGet, ingURL+"/api/v1/sources/"+boot.SourceID+"/events", "", none); st != http.StatusUnauthorized {
		t.Errorf("debugger without a token: %d %s, want 401", st, body)
	}
	if st, body := do(t, http.MethodGet, ingURL+"/api/v1/sources/"+boot.SourceID+"/events", "",
		func(r *http.Request) { r.Header.Set("Authorization", "Bearer not-a-token-of-this-catalog") }); st != http.StatusUnauthorized {
		t.Errorf("debugger with an unknown token: %d %s, want 401", st, body)
	}

	track := func(key, id string) int {
		st, _ := do(t, http.MethodPost, ingURL+"/v1/track", fmt.Sprintf(`{"userId":"u-split","event":"Split Probe","messageId":%q}`, id), basic(key))
		return st
	}
	if st := track("no-such-write-key", "split-unknown"); st != http.StatusUnauthorized {
		t.Errorf("unknown write key at the ingest process: %d, want 401", st)
	}

	// Disabling and re-enabling the source in dev's Catalog reach the
	// ingest process through the configuration watch.
	n := 0
	for _, step := range []struct {
		name    string
		enabled bool
		want    int
	}{{"disable", false, http.StatusForbidden}, {"re-enable", true, http.StatusOK}} {
		if st, body := do(t, http.MethodPatch, devURL+"/api/v1/sources/"+boot.SourceID, fmt.Sprintf(`{"enabled":%t}`, step.enabled), bearer); st != http.StatusOK {
			t.Fatalf("%s the source: %d %s", step.name, st, body)
		}
		changed := time.Now()
		for {
			n++
			st := track(writeKey, "split-toggle-"+strconv.Itoa(n))
			if st == step.want {
				t.Logf("%s: the ingest process answered %d after %v", step.name, st, time.Since(changed).Round(time.Millisecond))
				break
			}
			if time.Since(changed) > 5*time.Second {
				t.Fatalf("%s: the ingest process still answers %d %v after the change, want %d", step.name, st, time.Since(changed), step.want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// What the load generator reads: the Go heap of each process, and the
	// warehouse consumer's backlog from dev's metrics.
	if _, body := do(t, http.MethodGet, ingURL+"/metrics", "", none); !bytes.Contains(body, []byte("\ngo_memstats_heap_inuse_bytes ")) {
		t.Errorf("ingest /metrics has no go_memstats_heap_inuse_bytes")
	}
	pending := `jetstream_consumer_pending{consumer="warehouse-` + boot.WarehouseID + `"`
	if _, body := do(t, http.MethodGet, devURL+"/metrics", "", none); !bytes.Contains(body, []byte(pending)) {
		t.Errorf("dev /metrics has no %s…} line", pending)
	}
}

// runInBackground runs a process's Run function until the test ends, then
// cancels it and fails the test if it returned an error; its log is kept
// for failure messages.
func runInBackground(t *testing.T, name string, run func(ctx context.Context, stderr io.Writer) error) *syncBuffer {
	t.Helper()
	log := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- run(ctx, log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v\n%s", name, err, log)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30 s\n%s", name, log)
		}
	})
	return log
}

// waitReady polls base/readyz until it answers 200.
func waitReady(t *testing.T, base string, log *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 60 s; log:\n%s", base, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// do sends one request and returns the status and body.
func do(t *testing.T, method, url, body string, auth func(*http.Request)) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	auth(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// idCounts maps id to n in a warehouse query answer of
// `select id, count(*) as n … group by id`.
func idCounts(t *testing.T, body []byte) map[string]int {
	t.Helper()
	var qr struct {
		Rows []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal(body, &qr); err != nil {
		t.Fatalf("query answer %s: %v", body, err)
	}
	out := map[string]int{}
	for _, row := range qr.Rows {
		id, _ := row["id"].(string)
		switch n := row["n"].(type) {
		case float64:
			out[id] = int(n)
		case string: // protojson renders 64-bit integers as strings
			v, err := strconv.Atoi(n)
			if err != nil {
				t.Fatalf("row %v: n is not a number", row)
			}
			out[id] = v
		default:
			t.Fatalf("row %v: n is %T", row, row["n"])
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader.
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
