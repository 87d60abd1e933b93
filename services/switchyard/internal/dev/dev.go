package dev

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	catalogapp "github.com/switchyardhq/switchyard/services/catalog/app"
	deliveryapp "github.com/switchyardhq/switchyard/services/delivery/app"
	ingestapp "github.com/switchyardhq/switchyard/services/ingest/app"
	"github.com/switchyardhq/switchyard/services/internal/platform/app"
	"github.com/switchyardhq/switchyard/services/internal/platform/auth"
	"github.com/switchyardhq/switchyard/services/internal/platform/catalogwatch"
	"github.com/switchyardhq/switchyard/services/internal/platform/gateway"
	"github.com/switchyardhq/switchyard/services/internal/platform/grpcserver"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/logging"
	"github.com/switchyardhq/switchyard/services/internal/platform/natsembed"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"github.com/switchyardhq/switchyard/services/internal/platform/telemetry"
	reverseetlapp "github.com/switchyardhq/switchyard/services/reverseetl/app"
	"github.com/switchyardhq/switchyard/services/switchyard/internal/console"
	warehouseapp "github.com/switchyardhq/switchyard/services/warehouse/app"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/structpb"
)

// Bootstrap is the content of <data-dir>/bootstrap.json.
type Bootstrap struct {
	WorkspaceID string `json:"workspace_id"`
	AdminToken  string `json:"admin_token"`
	SourceID    string `json:"source_id"`
	WriteKey    string `json:"write_key"`
	WarehouseID string `json:"warehouse_id"`
}

// BootstrapFile is the bootstrap file's name inside the data dir.
const BootstrapFile = "bootstrap.json"

// Run starts every service and blocks until ctx is cancelled (SIGINT or
// SIGTERM), then shuts down in order: stop accepting HTTP, stop the data
// plane (in-flight deliveries and loads finish and ack), stop Catalog and
// gRPC, drain NATS, stop the embedded server, flush telemetry.
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	logger, err := logging.New(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	// One process per data dir: a second embedded NATS server on the same
	// store would rewrite it and lose acknowledged events.
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	r := app.NewRunner(logger)
	defer startPprof(logger)()
	// Everything acquired below is released by the runner's stops, or by
	// this cleanup when start-up fails before the runner runs.
	var st startup
	defer st.releaseUnlessStarted()

	// Spans are exported as the standard OTEL_* environment variables say
	// (off when none is set); cfg.SpanExporter is the tests' hook.
	tel, err := telemetry.Setup(ctx, telemetry.Options{ServiceName: "switchyard", FromEnv: true, SpanExporter: cfg.SpanExporter})
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	st.add(func() { _ = tel.Shutdown(context.Background()) })
	r.Add("telemetry", nil, tel.Shutdown)

	// JetStream: embedded (default) or external.
	var conn *jetstream.Conn
	var ns *server.Server
	if cfg.NATSURL != "" {
		conn, err = jetstream.Connect(ctx, cfg.NATSURL, "switchyard")
		if err != nil {
			return fmt.Errorf("connect to NATS at %s: %w", cfg.NATSURL, err)
		}
	} else {
		ns, err = natsembed.Start(natsembed.Options{StoreDir: filepath.Join(cfg.DataDir, "nats"), ListenAddr: cfg.NATSAddr, Logger: logger})
		if err != nil {
			return fmt.Errorf("embedded NATS: %w", err)
		}
		st.add(func() { ns.Shutdown(); ns.WaitForShutdown() })
		r.Add("nats-server", nil, func(context.Context) error { ns.Shutdown(); ns.WaitForShutdown(); return nil })
		conn, err = jetstream.ConnectInProcess(ns, "switchyard")
		if err != nil {
			return fmt.Errorf("connect to embedded NATS: %w", err)
		}
	}
	st.add(func() { conn.NC.Close() })
	r.Add("nats-conn", nil, conn.Close)
	if err := streams.Ensure(ctx, conn.JS, streams.DefaultOptions); err != nil {
		return err
	}
	if _, err := jetstream.RegisterConsumerMetrics(tel.MeterProvider.Meter("switchyard"), conn.JS,
		streams.Events, streams.DLQ, streams.RETL, streams.Replay); err != nil {
		return fmt.Errorf("consumer metrics: %w", err)
	}

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

	// Every REST call goes through this client connection to our own gRPC
	// listener, so it passes the same interceptors as a gRPC call.
	cc, err := gateway.Dial(ctx, grpcLis.Addr().String())
	if err != nil {
		return fmt.Errorf("dial own gRPC listener: %w", err)
	}
	catalogClient := catalogv1.NewCatalogServiceClient(cc)
	authn := &auth.CachingClient{Client: catalogClient, TTL: 5 * time.Second}
	grpcSrv, health := grpcserver.New(grpcserver.Options{Logger: logger, Auth: auth.Hook(authn)})

	catalog, err := catalogapp.New(ctx, catalogapp.Params{
		Logger:    logger,
		JS:        conn.JS,
		Lifecycle: catalogapp.Lifecycle{Off: cfg.LifecycleInterval == 0, Interval: cfg.LifecycleInterval},
		SMTP:      catalogapp.SMTP{Addr: cfg.SMTPAddr, From: cfg.SMTPFrom, Username: cfg.SMTPUser, Password: cfg.SMTPPassword},
	})
	if err != nil {
		return err
	}
	watch := catalogwatch.New(catalogClient, logger.With("component", "config-watch"))
	if cfg.Ingest.DedupeDir == "" {
		cfg.Ingest.DedupeDir = filepath.Join(cfg.DataDir, "ingest-dedupe")
	}
	ingest, err := ingestapp.New(ctx, ingestapp.Params{Logger: logger, JS: conn.JS, Config: watch, Options: cfg.Ingest})
	if err != nil {
		return err
	}
	delivery := deliveryapp.New(deliveryapp.Params{Logger: logger, JS: conn.JS, Config: watch})
	warehouse := warehouseapp.New(warehouseapp.Params{Logger: logger, JS: conn.JS, Config: watch})
	reverseetl := reverseetlapp.New(reverseetlapp.Params{Logger: logger, JS: conn.JS, Config: watch})
	catalog.RegisterGRPC(grpcSrv)
	ingest.RegisterGRPC(grpcSrv)
	delivery.RegisterGRPC(grpcSrv)
	warehouse.RegisterGRPC(grpcSrv)
	reverseetl.RegisterGRPC(grpcSrv)

	mux := gateway.NewMux(logger)
	for _, reg := range []func(context.Context, *runtimeMux, *grpcConn) error{catalog.RegisterGateway, ingest.RegisterGateway, delivery.RegisterGateway, warehouse.RegisterGateway, reverseetl.RegisterGateway} {
		if err := reg(ctx, mux, cc); err != nil {
			return fmt.Errorf("register gateway: %w", err)
		}
	}

	var bootstrapped atomic.Bool
	ready := func() error {
		switch {
		case !conn.NC.IsConnected():
			return errors.New("JetStream: not connected")
		case !catalog.Ready():
			return errors.New("catalog: loading")
		case !bootstrapped.Load():
			return errors.New("bootstrap: pending")
		}
		if err := warehouse.Ready(); err != nil {
			return fmt.Errorf("warehouse: %w", err)
		}
		return nil
	}
	httpSrv := newHTTPServer(routes(ingest.HTTPHandler(), mux, tel.MetricsHandler(), ready), "switchyard")

	r.Add("grpc", func(context.Context) error { return grpcSrv.Serve(grpcLis) }, stopGRPC(grpcSrv, health))
	r.Add("grpc-client", nil, func(context.Context) error { return cc.Close() })
	r.Add("catalog", catalog.Run, nil)
	r.Add("bootstrap", func(ctx context.Context) error {
		b, err := bootstrap(ctx, catalogClient, cfg, stdout, logger)
		if err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		bootstrapped.Store(true)
		health.SetServingStatus("", grpc_health_v1.HealthCheckResponse_SERVING)
		logger.Info("switchyard is ready", "http", httpLis.Addr().String(), "grpc", grpcLis.Addr().String(), "workspace", b.WorkspaceID)
		<-ctx.Done()
		return nil
	}, nil)
	r.Add("config-watch", watch.Run, nil)
	r.Add("ingest", ingest.Run, nil)
	r.Add("delivery", delivery.Run, nil)
	r.Add("warehouse", warehouse.Run, nil)
	r.Add("reverseetl", reverseetl.Run, nil)
	r.Add("http", serveHTTP(httpSrv, httpLis), httpSrv.Shutdown)

	st.started = true
	return r.Run(ctx, cfg.ShutdownTimeout)
}

// bootstrap makes sure the first workspace exists and, on the first start,
// writes bootstrap.json (mode 0600) and prints it.
func bootstrap(ctx context.Context, client catalogv1.CatalogServiceClient, cfg Config, stdout io.Writer, logger *slog.Logger) (Bootstrap, error) {
	whPath, err := filepath.Abs(filepath.Join(cfg.DataDir, "warehouse.duckdb"))
	if err != nil {
		return Bootstrap{}, err
	}
	settings, err := structpb.NewStruct(map[string]any{"path": whPath})
	if err != nil {
		return Bootstrap{}, err
	}
	var resp *catalogv1.BootstrapWorkspaceResponse
	// The gRPC listener may still be starting: retry briefly.
	for attempt := 0; ; attempt++ {
		resp, err = client.BootstrapWorkspace(ctx, &catalogv1.BootstrapWorkspaceRequest{
			WorkspaceName:     "Default",
			AdminToken:        cfg.AdminToken,
			WriteKey:          cfg.WriteKey,
			WarehouseType:     catalogv1.WarehouseType_WAREHOUSE_TYPE_DUCKDB,
			WarehouseSettings: settings,
		})
		if err == nil || attempt == 50 || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return Bootstrap{}, err
	}
	b := Bootstrap{
		WorkspaceID: resp.GetWorkspace().GetId(),
		AdminToken:  resp.GetAdminToken(),
		SourceID:    resp.GetSource().GetId(),
		WarehouseID: resp.GetWarehouse().GetId(),
	}
	if len(resp.GetSource().GetWriteKeys()) > 0 {
		b.WriteKey = resp.GetSource().GetWriteKeys()[0]
	}
	path := filepath.Join(cfg.DataDir, BootstrapFile)
	if !resp.GetCreated() {
		if _, err := os.Stat(path); err != nil {
			logger.Warn("workspace exists but bootstrap.json is missing; the admin token was only shown on the first start", "path", path)
		}
		return b, nil
	}
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return b, err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return b, fmt.Errorf("write %s: %w", path, err)
	}
	fmt.Fprintf(stdout, "Switchyard bootstrap (saved to %s):\n%s\n", path, data)
	return b, nil
}

// routes is the one HTTP listener's routing table.
func routes(tracking http.Handler, api http.Handler, metrics http.Handler, ready func() error) http.Handler {
	m := http.NewServeMux()
	mountService(m, tracking, api, metrics, ready)
	m.Handle("/", console.Handler())
	return m
}
