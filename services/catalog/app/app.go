// Package app assembles the Catalog service: the KV store, the in-memory
// catalog, the gRPC server and its REST gateway. It is the one file that
// knows the wiring; the all-in-one binary and a standalone process both use it.
package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	natsjs "github.com/nats-io/nats.go/jetstream"
	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"github.com/switchyardhq/switchyard/services/catalog/internal/catalog"
	"github.com/switchyardhq/switchyard/services/catalog/internal/kvstore"
	"github.com/switchyardhq/switchyard/services/catalog/internal/server"
	"google.golang.org/grpc"
)

// Params are the Catalog's dependencies.
type Params struct {
	Logger *slog.Logger
	JS     natsjs.JetStream
	// Replicas is the KV replication factor (1 on a single server).
	Replicas int
}

// Service is an assembled Catalog.
type Service struct {
	cat *catalog.Catalog
	srv *server.Server
}

// New opens the store; Run must be called to serve reads.
func New(ctx context.Context, p Params) (*Service, error) {
	store, err := kvstore.Open(ctx, p.JS, kvstore.Options{Replicas: p.Replicas})
	if err != nil {
		return nil, fmt.Errorf("catalog store: %w", err)
	}
	logger := p.Logger.With("service", "catalog")
	cat := catalog.New(store, logger)
	return &Service{cat: cat, srv: server.New(cat, logger)}, nil
}

// RegisterGRPC registers the gRPC service.
func (s *Service) RegisterGRPC(g *grpc.Server) { catalogv1.RegisterCatalogServiceServer(g, s.srv) }

// RegisterGateway mounts the REST routes, which call the service through conn.
func (s *Service) RegisterGateway(ctx context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error {
	return catalogv1.RegisterCatalogServiceHandler(ctx, mux, conn)
}

// Run mirrors the store until ctx is done.
func (s *Service) Run(ctx context.Context) error { return s.cat.Run(ctx) }

// WaitReady blocks until the catalog has loaded its store.
func (s *Service) WaitReady(ctx context.Context) error { return s.cat.WaitReady(ctx) }

// Ready reports whether the catalog has loaded its store.
func (s *Service) Ready() bool { return s.cat.Ready() }
