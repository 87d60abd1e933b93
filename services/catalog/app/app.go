// Package app assembles the Catalog service: the KV store, the in-memory
// catalog, the gRPC server and its REST gateway. It is the one file that
// knows the wiring; the all-in-one binary and a standalone process both use it.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	natsjs "github.com/nats-io/nats.go/jetstream"
	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"github.com/switchyardhq/switchyard/services/catalog/internal/catalog"
	"github.com/switchyardhq/switchyard/services/catalog/internal/kvstore"
	"github.com/switchyardhq/switchyard/services/catalog/internal/mail"
	"github.com/switchyardhq/switchyard/services/catalog/internal/server"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
)

// Params are the Catalog's dependencies.
type Params struct {
	Logger *slog.Logger
	JS     natsjs.JetStream
	// Replicas is the KV replication factor (1 on a single server).
	Replicas int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Lifecycle configures the automatic disabling of sources without an
	// enabled destination.
	Lifecycle Lifecycle
	// SMTP is where lifecycle warnings are emailed (not sent when Addr is empty).
	SMTP SMTP
}

// Lifecycle configures the source lifecycle.
type Lifecycle struct {
	// Off disables the lifecycle sweeps.
	Off bool
	// Interval is the time between sweeps (1 minute when zero).
	Interval time.Duration
	// DisableAfter and WarnBefore default to 14 and 3 days.
	DisableAfter, WarnBefore time.Duration
}

// Service is an assembled Catalog.
type Service struct {
	cat       *catalog.Catalog
	srv       *server.Server
	lifecycle Lifecycle
	notifier  catalog.Notifier
}

// New opens the store; Run must be called to serve reads.
func New(ctx context.Context, p Params) (*Service, error) {
	store, err := kvstore.Open(ctx, p.JS, kvstore.Options{Replicas: p.Replicas})
	if err != nil {
		return nil, fmt.Errorf("catalog store: %w", err)
	}
	logger := p.Logger.With("service", "catalog")
	cat := catalog.New(store, logger, catalog.Options{Now: p.Now})
	lc := p.Lifecycle
	if lc.Interval <= 0 {
		lc.Interval = time.Minute
	}
	return &Service{cat: cat, srv: server.New(cat, logger), lifecycle: lc, notifier: mail.New(p.SMTP, logger)}, nil
}

// RegisterGRPC registers the gRPC service.
func (s *Service) RegisterGRPC(g *grpc.Server) { catalogv1.RegisterCatalogServiceServer(g, s.srv) }

// RegisterGateway mounts the REST routes, which call the service through conn.
func (s *Service) RegisterGateway(ctx context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error {
	return catalogv1.RegisterCatalogServiceHandler(ctx, mux, conn)
}

// Run mirrors the store and runs the source lifecycle until ctx is done.
// When it returns, WatchConfig streams end (Unavailable) and new ones are
// refused: the gRPC server, stopped after the catalog, then stops at once
// instead of waiting for remote watchers (a `switchyard ingest` process)
// until its shutdown timeout.
func (s *Service) Run(ctx context.Context) error {
	defer s.srv.StopWatches()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.cat.Run(ctx) })
	if !s.lifecycle.Off {
		g.Go(func() error {
			return s.cat.RunLifecycle(ctx, s.lifecycle.Interval, catalog.LifecyclePolicy{DisableAfter: s.lifecycle.DisableAfter, WarnBefore: s.lifecycle.WarnBefore}, s.notifier)
		})
	}
	return g.Wait()
}

// WaitReady blocks until the catalog has loaded its store.
func (s *Service) WaitReady(ctx context.Context) error { return s.cat.WaitReady(ctx) }

// Ready reports whether the catalog has loaded its store.
func (s *Service) Ready() bool { return s.cat.Ready() }

// SMTP is the SMTP configuration of lifecycle emails (see Params.SMTP).
type SMTP = mail.Config

// Catalog exposes the domain catalog to tests of this module.
func (s *Service) Catalog() *catalog.Catalog { return s.cat }
