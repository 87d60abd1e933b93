package dev

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/switchyardhq/switchyard/services/internal/platform/gateway"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
)

// The serving pieces `switchyard dev` and `switchyard ingest` share.

// startPprof serves Go's profiler under /debug/pprof/ on the address in
// SWITCHYARD_PPROF_ADDR, when set: opt-in, on its own listener, for SREs
// and benchmarks. The returned func stops it.
func startPprof(logger *slog.Logger) (stop func()) {
	addr := os.Getenv("SWITCHYARD_PPROF_ADDR")
	if addr == "" {
		return func() {}
	}
	srv := &http.Server{Addr: addr, Handler: pprofMux(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.ListenAndServe() }()
	logger.Info("pprof listening", "addr", addr)
	return func() { _ = srv.Close() }
}

// pprofMux serves net/http/pprof's handlers under /debug/pprof/.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// mountService mounts what every Switchyard HTTP listener serves: the
// Tracking API under /v1/, the REST API under /api/, GET /metrics,
// /healthz (the process runs) and /readyz (ready answers nil).
func mountService(m *http.ServeMux, tracking, api, metrics http.Handler, ready func() error) {
	m.Handle("/v1/", tracking)
	m.Handle("/api/", gateway.BracketQuery(api))
	m.Handle("GET /metrics", metrics)
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	m.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not ready: "+err.Error()+"\n")
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
}

// newHTTPServer returns the HTTP server of a listener: every request gets
// a span named "METHOD /path" (operation names the server).
func newHTTPServer(handler http.Handler, operation string) *http.Server {
	return &http.Server{
		Handler: otelhttp.NewHandler(handler, operation,
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path })),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
}

// serveHTTP is an app.Runner run func serving srv on lis until Shutdown.
func serveHTTP(srv *http.Server, lis net.Listener) func(context.Context) error {
	return func(context.Context) error {
		if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// stopGRPC is an app.Runner stop func: health answers NOT_SERVING, then
// in-flight calls finish, unless ctx ends first (then they are cut).
func stopGRPC(srv *grpc.Server, hs *health.Server) func(context.Context) error {
	return func(ctx context.Context) error {
		hs.Shutdown()
		done := make(chan struct{})
		go func() { srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			srv.Stop()
		}
		return nil
	}
}

// startup collects what a process acquires while it starts: released in
// reverse order when start-up fails before the runner (whose stops
// release them otherwise) takes over.
type startup struct {
	started bool
	fns     []func()
}

func (s *startup) add(f func()) { s.fns = append(s.fns, f) }

func (s *startup) releaseUnlessStarted() {
	if s.started {
		return
	}
	for i := len(s.fns) - 1; i >= 0; i-- {
		s.fns[i]()
	}
}
