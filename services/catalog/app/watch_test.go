package app_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"github.com/switchyardhq/switchyard/services/catalog/app"
	"github.com/switchyardhq/switchyard/services/internal/platform/auth"
	"github.com/switchyardhq/switchyard/services/internal/platform/gateway"
	"github.com/switchyardhq/switchyard/services/internal/platform/grpcserver"
	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
)

// TestWatchConfigEndsWhenCatalogStops checks that stopping the catalog
// (its Run returning, before the gRPC server stops, as the processes order
// it) ends open WatchConfig streams with Unavailable and refuses new ones,
// so the gRPC server's GracefulStop returns at once instead of waiting for
// remote watchers until the shutdown timeout.
func TestWatchConfigEndsWhenCatalogStops(t *testing.T) {
	t.Parallel()
	_, conn := testenv.NATS(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := app.New(t.Context(), app.Params{Logger: logger, JS: conn.JS, Lifecycle: app.Lifecycle{Off: true}})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cc, err := gateway.Dial(t.Context(), lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	client := catalogv1.NewCatalogServiceClient(cc)
	g, _ := grpcserver.New(grpcserver.Options{Logger: logger, Auth: auth.Hook(&auth.CachingClient{Client: client})})
	svc.RegisterGRPC(g)
	served := make(chan struct{})
	go func() { _ = g.Serve(lis); close(served) }()
	t.Cleanup(func() { g.Stop(); <-served })
	runCtx, stopCatalog := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(runCtx) }()
	t.Cleanup(stopCatalog)

	// Bounded, so a stream that never ends fails the test instead of
	// hanging it.
	sctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	stream, err := client.WatchConfig(sctx, &catalogv1.WatchConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("first snapshot: %v", err)
	}

	stopCatalog()
	if err := <-ran; err != nil {
		t.Fatalf("catalog Run: %v", err)
	}
	t.Run("the open stream ends with Unavailable", func(t *testing.T) {
		_, err := stream.Recv()
		if code := grpcstatus.Code(err); code != codes.Unavailable {
			t.Errorf("Recv after the catalog stopped: %v (code %v), want Unavailable", err, code)
		}
	})
	t.Run("a new stream is refused with Unavailable", func(t *testing.T) {
		s, err := client.WatchConfig(sctx, &catalogv1.WatchConfigRequest{})
		if err == nil {
			_, err = s.Recv()
		}
		if code := grpcstatus.Code(err); code != codes.Unavailable {
			t.Errorf("WatchConfig after the catalog stopped: %v (code %v), want Unavailable", err, code)
		}
	})
	t.Run("GracefulStop does not wait for watchers", func(t *testing.T) {
		// A watcher that reconnected stays connected, without a stream.
		stopped := make(chan struct{})
		start := time.Now()
		go func() { g.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
			t.Logf("GracefulStop took %v", time.Since(start).Round(time.Millisecond))
		case <-time.After(5 * time.Second):
			t.Errorf("GracefulStop still waiting after 5 s")
		}
	})
}
