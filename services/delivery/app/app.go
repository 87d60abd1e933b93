// Package app assembles the Delivery service: the dispatcher that keeps
// durable consumers per destination, fed by the Catalog watch and
// Delivery's own configuration bucket, and its gRPC API.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	natsjs "github.com/nats-io/nats.go/jetstream"
	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	deliveryv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/delivery/v1"
	"github.com/switchyardhq/switchyard/services/delivery/internal/dispatch"
	"github.com/switchyardhq/switchyard/services/delivery/internal/metrics"
	"github.com/switchyardhq/switchyard/services/delivery/internal/pipeline"
	"github.com/switchyardhq/switchyard/services/delivery/internal/server"
	"github.com/switchyardhq/switchyard/services/delivery/internal/store"
	"github.com/switchyardhq/switchyard/services/internal/platform/catalogwatch"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"google.golang.org/grpc"
)

// Params are Delivery's dependencies.
type Params struct {
	Logger *slog.Logger
	JS     natsjs.JetStream
	Config *catalogwatch.Watcher
	// SendTimeout bounds one delivery attempt (default 10 s).
	SendTimeout time.Duration
	// RetryMaxAge is how long after receipt a failing event is retried
	// before it is dead-lettered (default 4 h).
	RetryMaxAge time.Duration
	// Concurrency is the number of in-flight events per destination
	// (default 32).
	Concurrency int
	// Streams sizes the DLQ and REPLAY streams (default single server).
	Streams streams.Options
}

// Service is an assembled Delivery.
type Service struct {
	p      Params
	logger *slog.Logger
	disp   *dispatch.Dispatcher
	srv    *server.Server
	config *catalogwatch.Watcher
	store  atomic.Pointer[store.Store]
}

// New wires Delivery.
func New(p Params) *Service {
	logger := p.Logger.With("service", "delivery")
	disp := dispatch.New(p.JS, metrics.New(nil), logger, dispatch.Options{
		SendTimeout: p.SendTimeout,
		Retry:       pipeline.RetryPolicy{MaxAge: p.RetryMaxAge},
		Concurrency: p.Concurrency,
	})
	s := &Service{p: p, logger: logger, disp: disp, config: p.Config}
	s.srv = &server.Server{JS: p.JS, Dispatcher: disp, Config: p.Config, Store: s.store.Load}
	return s
}

// RegisterGRPC registers DeliveryService.
func (s *Service) RegisterGRPC(g *grpc.Server) { deliveryv1.RegisterDeliveryServiceServer(g, s.srv) }

// RegisterGateway mounts the REST routes.
func (s *Service) RegisterGateway(ctx context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error {
	return deliveryv1.RegisterDeliveryServiceHandler(ctx, mux, conn)
}

// Specs merges Catalog's destinations with Delivery's own configuration:
// the enabled destinations to run, and the ids that exist at all.
func Specs(snaps []*catalogv1.ConfigSnapshot, own func(id string) store.Config) ([]pipeline.Spec, map[string]bool) {
	var want []pipeline.Spec
	exists := map[string]bool{}
	for _, snap := range snaps {
		for _, d := range snap.GetDestinations() {
			exists[d.GetId()] = true
			if !d.GetEnabled() {
				continue
			}
			c := own(d.GetId())
			want = append(want, pipeline.Spec{
				ID: d.GetId(), WorkspaceID: d.GetWorkspaceId(), SourceID: d.GetSourceId(), Name: d.GetName(),
				Type: d.GetType(), Settings: d.GetSettings().AsMap(), CreatedAt: d.GetCreatedAt().AsTime(),
				Filters: c.Filters, Subscriptions: c.Subscriptions,
			})
		}
	}
	return want, exists
}

// setup creates Delivery's streams (DLQ, REPLAY, and RETL if missing) and bucket, retrying until ctx is done.
func (s *Service) setup(ctx context.Context) (*store.Store, error) {
	for {
		err := streams.EnsureDelivery(ctx, s.p.JS, s.p.Streams)
		if err == nil {
			// Reverse ETL creates RETL too; whichever starts first makes it,
			// so each destination's record consumer can start at once.
			err = streams.EnsureRETL(ctx, s.p.JS, s.p.Streams)
		}
		var st *store.Store
		if err == nil {
			st, err = store.Open(ctx, s.p.JS, s.p.Streams.Replicas)
		}
		if err == nil {
			return st, nil
		}
		s.logger.Warn("delivery setup; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("delivery setup: %w", ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// Run reconciles destination workers with every configuration change until
// ctx is done, then waits for in-flight deliveries to finish and ack.
func (s *Service) Run(ctx context.Context) error {
	st, err := s.setup(ctx)
	if err != nil {
		return nil // cancelled during start-up
	}
	s.store.Store(st)
	changed, cancel := s.config.Subscribe()
	defer cancel()
	own, cancelOwn := st.Subscribe()
	defer cancelOwn()
	go func() {
		for ctx.Err() == nil {
			if err := st.Watch(ctx); err != nil && ctx.Err() == nil {
				s.logger.Warn("delivery config watch; restarting", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
	}()
	defer s.disp.Wait()
	reconcile := func() {
		if snaps := s.config.Snapshots(); snaps != nil {
			want, exists := Specs(snaps, st.Get)
			s.disp.Reconcile(ctx, want, exists)
		}
	}
	reconcile()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			reconcile()
		case <-own:
			reconcile()
		}
	}
}
