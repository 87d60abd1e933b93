package dev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	ingestapp "github.com/switchyardhq/switchyard/services/ingest/app"
	"github.com/switchyardhq/switchyard/services/internal/platform/app"
	"github.com/switchyardhq/switchyard/services/internal/platform/auth"
	"github.com/switchyardhq/switchyard/services/internal/platform/catalogwatch"
	"github.com/switchyardhq/switchyard/services/internal/platform/gateway"
	"github.com/switchyardhq/switchyard/services/internal/platform/grpcserver"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/logging"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"github.com/switchyardhq/switchyard/services/internal/platform/telemetry"
	"google.golang.org/grpc/health/grpc_health_v1"
)

// natsConnectTimeout bounds the first connection to the NATS server: a
// wrong --nats-url fails the start instead of hanging.
const natsConnectTimeout = 10 * time.Second

// RunIngest runs `switchyard ingest`, the Ingest service as a process of
// its own: it publishes to an external NATS server and follows the
// configuration of a remote Catalog (WatchConfig), which also
// authenticates the API tokens of the event debugger's REST route. It
// blocks until ctx is cancelled, then shuts down in order: stop accepting
// HTTP and gRPC (in-flight requests finish and their events are
// acknowledged by JetStream), stop Ingest (the messageId index is closed),
// stop the watch, drain NATS, flush telemetry.
func RunIngest(ctx context.Context, cfg IngestConfig, stderr io.Writer) error {
	logger, err := logging.New(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	// The messageId index is a store only one process may write.
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	defer startPprof(logger)()
	r := app.NewRunner(logger)
	// Everything acquired below is released by the runner's stops, or by
	// this cleanup when start-up fails before the runner runs.
	var st startup
	defer st.releaseUnlessStarted()

	tel, err := telemetry.Setup(ctx, telemetry.Options{ServiceName: "switchyard-ingest", FromEnv: true, SpanExporter: cfg.SpanExporter})
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	st.add(func() { _ = tel.Shutdown(context.Background()) })
	r.Add("telemetry", nil, tel.Shutdown)

	cctx, cancel := context.WithTimeout(ctx, natsConnectTimeout)
	conn, err := jetstream.Connect(cctx, cfg.NATSURL, "switchyard-ingest")
	cancel()
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", cfg.NATSURL, err)
	}
	st.add(func() { conn.NC.Close() })
	r.Add("nats-conn", nil, conn.Close)
	if err := streams.Ensure(ctx, conn.JS, streams.DefaultOptions); err != nil {
		return err
	}

	// Catalog is remote: the configuration watch and the token checks go
	// over this connection (lazy: Catalog may start later; the watch
	// retries and the process is not ready until its first snapshot).
	catalogCC, err := gateway.Dial(ctx, cfg.CatalogAddr)
	if err != nil {
		return fmt.Errorf("catalog at %s: %w", cfg.CatalogAddr, err)
	}
	st.add(func() { _ = catalogCC.Close() })
	r.Add("catalog-client", nil, func(context.Context) error { return catalogCC.Close() })
	catalogClient := catalogv1.NewCatalogServiceClient(catalogCC)
	watch := catalogwatch.New(catalogClient, logger.With("component", "config-watch"))
	r.Add("config-watch", watch.Run, nil)

	if cfg.Ingest.DedupeDir == "" {
		cfg.Ingest.DedupeDir = filepath.Join(cfg.DataDir, "ingest-dedupe")
	}
	ingest, err := ingestapp.New(ctx, ingestapp.Params{Logger: logger, JS: conn.JS, Config: watch, Options: cfg.Ingest})
	if err != nil {
		return err
	}
	r.Add("ingest", ingest.Run, nil)

	grpcLis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("gRPC listener: %w", err)
	}
	st.add(func() { _ = grpcLis.Close() })
	httpLis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP listener: %w", err)
	}
	st.add(func() { _ = httpLis.Close() })

	grpcSrv, health := grpcserver.New(grpcserver.Options{Logger: logger,
		Auth: auth.Hook(&auth.CachingClient{Client: catalogClient, TTL: 5 * time.Second})})
	ingest.RegisterGRPC(grpcSrv)
	// The REST route goes through a client connection to our own gRPC
	// listener, so it passes the same interceptors (auth) as a gRPC call.
	selfCC, err := gateway.Dial(ctx, grpcLis.Addr().String())
	if err != nil {
		return fmt.Errorf("dial own gRPC listener: %w", err)
	}
	st.add(func() { _ = selfCC.Close() })
	mux := gateway.NewMux(logger)
	if err := ingest.RegisterGateway(ctx, mux, selfCC); err != nil {
		return fmt.Errorf("register gateway: %w", err)
	}
	r.Add("grpc-client", nil, func(context.Context) error { return selfCC.Close() })
	r.Add("grpc", func(context.Context) error { return grpcSrv.Serve(grpcLis) }, stopGRPC(grpcSrv, health))

	ready := func() error {
		switch {
		case !conn.NC.IsConnected():
			return errors.New("JetStream: not connected")
		case !watch.Ready():
			return fmt.Errorf("configuration: waiting for the first snapshot from Catalog at %s", cfg.CatalogAddr)
		}
		return nil
	}
	r.Add("ready", func(ctx context.Context) error {
		if err := watch.WaitReady(ctx); err != nil {
			return nil // shutting down before the first snapshot
		}
		health.SetServingStatus("", grpc_health_v1.HealthCheckResponse_SERVING)
		logger.Info("switchyard ingest is ready", "http", httpLis.Addr().String(), "grpc", grpcLis.Addr().String(),
			"nats", cfg.NATSURL, "catalog", cfg.CatalogAddr)
		<-ctx.Done()
		return nil
	}, nil)

	m := http.NewServeMux()
	mountService(m, ingest.HTTPHandler(), mux, tel.MetricsHandler(), ready)
	httpSrv := newHTTPServer(m, "switchyard-ingest")
	r.Add("http", serveHTTP(httpSrv, httpLis), httpSrv.Shutdown)

	st.started = true
	return r.Run(ctx, cfg.ShutdownTimeout)
}
