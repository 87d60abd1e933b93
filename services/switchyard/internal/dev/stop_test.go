package dev

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// process is a Run function started in-process, stopped by stop (once).
type process struct {
	name   string
	log    *syncBuffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	took   time.Duration
	err    error
}

// startProcess runs run until stop; the test's cleanup stops it too.
func startProcess(t *testing.T, name string, run func(ctx context.Context, stderr io.Writer) error) *process {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	p := &process{name: name, log: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- run(ctx, p.log) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop cancels the process's context and returns how long Run took to
// return (at most 30 s, then the test fails).
func (p *process) stop(t *testing.T) time.Duration {
	p.once.Do(func() {
		start := time.Now()
		p.cancel()
		select {
		case p.err = <-p.done:
			p.took = time.Since(start)
		case <-time.After(30 * time.Second):
			p.took = 30 * time.Second
			t.Errorf("%s did not stop within 30 s\n%s", p.name, p.log)
		}
		if p.err != nil {
			t.Errorf("%s: %v\n%s", p.name, p.err, p.log)
		}
	})
	return p.took
}

// TestDevStopsWithIngestAttached is the stop of `switchyard dev` while a
// `switchyard ingest` process follows its Catalog: the ingest process's
// WatchConfig stream used to keep gRPC's GracefulStop waiting for the
// whole shutdown timeout (20 s). Dev must return within a few seconds; the
// ingest process reconnects on its own once dev is back, and follows the
// restarted Catalog's changes.
func TestDevStopsWithIngestAttached(t *testing.T) {
	// Not parallel: both Run functions install the global OpenTelemetry
	// providers.
	const adminToken, writeKey = "stop-test-admin-token", "stop-test-wk"
	natsAddr, devDir := freePort(t), t.TempDir()
	devCfg, err := ParseFlags([]string{"--data-dir", devDir, "--http-addr", freePort(t), "--grpc-addr", freePort(t),
		"--nats-addr", natsAddr, "--log-level", "info", "--lifecycle-interval", "0"},
		func(k string) string {
			return map[string]string{"SWITCHYARD_ADMIN_TOKEN": adminToken, "SWITCHYARD_DEV_WRITE_KEY": writeKey}[k]
		})
	if err != nil {
		t.Fatal(err)
	}
	if devCfg.ShutdownTimeout < 20*time.Second {
		t.Fatalf("dev's shutdown timeout is %v; the test needs the default 20 s to tell a prompt stop from a timeout", devCfg.ShutdownTimeout)
	}
	runDev := func(ctx context.Context, stderr io.Writer) error { return Run(ctx, devCfg, io.Discard, stderr) }
	dev := startProcess(t, "dev", runDev)
	devURL := "http://" + devCfg.HTTPAddr
	waitReady(t, devURL, dev.log)

	ingCfg, err := ParseIngestFlags([]string{"--nats-url", "nats://" + natsAddr, "--catalog-addr", devCfg.GRPCAddr,
		"--data-dir", t.TempDir(), "--http-addr", freePort(t), "--grpc-addr", freePort(t), "--log-level", "info"})
	if err != nil {
		t.Fatal(err)
	}
	ingest := startProcess(t, "ingest", func(ctx context.Context, stderr io.Writer) error { return RunIngest(ctx, ingCfg, stderr) })
	ingURL := "http://" + ingCfg.HTTPAddr
	waitReady(t, ingURL, ingest.log)

	basic := func(r *http.Request) { r.SetBasicAuth(writeKey, "") }
	track := func(id string) int {
		st, _ := do(t, http.MethodPost, ingURL+"/v1/track", fmt.Sprintf(`{"userId":"u-stop","event":"Stop Probe","messageId":%q}`, id), basic)
		return st
	}
	if st := track("stop-1"); st != http.StatusOK {
		t.Fatalf("track at the ingest process before the stop: %d, want 200", st)
	}

	took := dev.stop(t)
	t.Logf("dev stopped in %v with the ingest process attached", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Fatalf("dev took %v to stop with the ingest process attached, want < 5 s (shutdown timeout %v)\n%s", took, devCfg.ShutdownTimeout, dev.log)
	}

	// While dev is down the ingest process keeps its last configuration:
	// the write key is still known (its event cannot be stored: NATS is
	// dev's), an unknown one is still refused.
	unknown := func(r *http.Request) { r.SetBasicAuth("not-a-write-key", "") }
	start := time.Now()
	if st, body := do(t, http.MethodPost, ingURL+"/v1/track", `{"userId":"u-stop","event":"Stop Probe"}`, unknown); st != http.StatusUnauthorized {
		t.Errorf("unknown write key while dev is down: %d %s, want 401", st, body)
	}
	if st := track("stop-down"); st == http.StatusUnauthorized || st == http.StatusForbidden {
		t.Errorf("the write key while dev is down: %d, want it still known (not 401/403)", st)
	} else {
		t.Logf("track while dev is down: %d after %v", st, time.Since(start).Round(time.Millisecond))
	}

	// Dev comes back on the same addresses and data dir: the ingest process
	// reconnects to NATS and to Catalog by itself.
	dev2 := startProcess(t, "dev (restarted)", runDev)
	waitReady(t, devURL, dev2.log)
	waitFor(t, "the ingest process to accept events again", func() bool { return track(fmt.Sprintf("stop-2-%d", time.Now().UnixNano())) == http.StatusOK })

	var boot Bootstrap
	raw, err := os.ReadFile(filepath.Join(devDir, BootstrapFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &boot); err != nil {
		t.Fatal(err)
	}
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+adminToken) }
	if st, body := do(t, http.MethodPatch, devURL+"/api/v1/sources/"+boot.SourceID, `{"enabled":false}`, bearer); st != http.StatusOK {
		t.Fatalf("disable the source in the restarted dev: %d %s", st, body)
	}
	// Only a new WatchConfig stream to the restarted Catalog brings this.
	waitFor(t, "the ingest process to follow the restarted Catalog (403 for the disabled source)", func() bool {
		return track(fmt.Sprintf("stop-3-%d", time.Now().UnixNano())) == http.StatusForbidden
	})

	ingest.stop(t)
	if took := dev2.stop(t); took > 5*time.Second {
		t.Errorf("the restarted dev took %v to stop, want < 5 s", took)
	}
}
