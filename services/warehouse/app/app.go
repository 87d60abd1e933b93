// Package app assembles the Warehouse service: one loader per warehouse,
// fed by the Catalog watch, and the read-only query API.
package app

import (
	"context"
	"log/slog"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	natsjs "github.com/nats-io/nats.go/jetstream"
	warehousev1 "github.com/switchyardhq/switchyard/gen/go/switchyard/warehouse/v1"
	"github.com/switchyardhq/switchyard/services/internal/platform/catalogwatch"
	"github.com/switchyardhq/switchyard/services/warehouse/internal/pipeline"
	"github.com/switchyardhq/switchyard/services/warehouse/internal/server"
	"google.golang.org/grpc"
)

// Params are Warehouse's dependencies.
type Params struct {
	Logger *slog.Logger
	JS     natsjs.JetStream
	Config *catalogwatch.Watcher
}

// Service is an assembled Warehouse.
type Service struct {
	mgr    *pipeline.Manager
	srv    *server.Server
	config *catalogwatch.Watcher
}

// New wires Warehouse.
func New(p Params) *Service {
	logger := p.Logger.With("service", "warehouse")
	mgr := pipeline.New(p.JS, logger)
	return &Service{mgr: mgr, srv: &server.Server{Manager: mgr, Config: p.Config, Logger: logger}, config: p.Config}
}

// RegisterGRPC registers WarehouseService.
func (s *Service) RegisterGRPC(g *grpc.Server) { warehousev1.RegisterWarehouseServiceServer(g, s.srv) }

// RegisterGateway mounts the REST routes.
func (s *Service) RegisterGateway(ctx context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error {
	return warehousev1.RegisterWarehouseServiceHandler(ctx, mux, conn)
}

// Ready reports nil when the configuration arrived and every warehouse is open.
func (s *Service) Ready() error {
	if !s.config.Ready() {
		return errNotConfigured
	}
	return s.mgr.Ready()
}

type constError string

func (e constError) Error() string { return string(e) }

const errNotConfigured = constError("configuration not received yet")

// Run reconciles loaders with every configuration change until ctx is
// done, then waits for in-flight loads to commit and ack.
func (s *Service) Run(ctx context.Context) error {
	changed, cancel := s.config.Subscribe()
	defer cancel()
	defer s.mgr.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			s.mgr.Reconcile(ctx, s.config.Snapshots())
		}
	}
}
