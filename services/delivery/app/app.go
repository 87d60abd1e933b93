// Package app assembles the Delivery service: the dispatcher that keeps one
// consumer per destination, fed by the Catalog watch, and its gRPC API.
package app

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	natsjs "github.com/nats-io/nats.go/jetstream"
	deliveryv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/delivery/v1"
	"github.com/switchyardhq/switchyard/services/delivery/internal/dispatch"
	"github.com/switchyardhq/switchyard/services/delivery/internal/server"
	"github.com/switchyardhq/switchyard/services/delivery/internal/webhook"
	"github.com/switchyardhq/switchyard/services/internal/platform/catalogwatch"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/grpc"
)

// Params are Delivery's dependencies.
type Params struct {
	Logger *slog.Logger
	JS     natsjs.JetStream
	Config *catalogwatch.Watcher
	// SendTimeout bounds one delivery attempt (default 10 s).
	SendTimeout time.Duration
}

// Service is an assembled Delivery.
type Service struct {
	disp   *dispatch.Dispatcher
	srv    *server.Server
	config *catalogwatch.Watcher
}

// New wires Delivery.
func New(p Params) *Service {
	if p.SendTimeout == 0 {
		p.SendTimeout = 10 * time.Second
	}
	logger := p.Logger.With("service", "delivery")
	sender := webhook.New(otelhttp.NewTransport(http.DefaultTransport), p.SendTimeout)
	disp := dispatch.New(p.JS, sender, logger)
	return &Service{disp: disp, srv: &server.Server{JS: p.JS, Dispatcher: disp, Config: p.Config}, config: p.Config}
}

// RegisterGRPC registers DeliveryService.
func (s *Service) RegisterGRPC(g *grpc.Server) { deliveryv1.RegisterDeliveryServiceServer(g, s.srv) }

// RegisterGateway mounts the REST routes.
func (s *Service) RegisterGateway(ctx context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error {
	return deliveryv1.RegisterDeliveryServiceHandler(ctx, mux, conn)
}

// Run reconciles destination workers with every configuration change until
// ctx is done, then waits for in-flight deliveries to finish and ack.
func (s *Service) Run(ctx context.Context) error {
	changed, cancel := s.config.Subscribe()
	defer cancel()
	defer s.disp.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			s.disp.Reconcile(ctx, s.config.Snapshots())
		}
	}
}
