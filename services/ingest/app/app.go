// Package app assembles the Ingest service: the write-key map fed by the
// Catalog watch, the Tracking API handler, the gRPC IngestService and the
// EVENTS publisher.
package app

import (
	"context"
	"log/slog"
	"net/http"

	natsjs "github.com/nats-io/nats.go/jetstream"
	ingestv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/ingest/v1"
	"github.com/switchyardhq/switchyard/services/ingest/internal/events"
	"github.com/switchyardhq/switchyard/services/ingest/internal/httpapi"
	"github.com/switchyardhq/switchyard/services/ingest/internal/server"
	"github.com/switchyardhq/switchyard/services/ingest/internal/tracking"
	"github.com/switchyardhq/switchyard/services/internal/platform/catalogwatch"
	"google.golang.org/grpc"
)

// Params are Ingest's dependencies.
type Params struct {
	Logger *slog.Logger
	JS     natsjs.JetStream
	Config *catalogwatch.Watcher
}

// Service is an assembled Ingest.
type Service struct {
	keys    *httpapi.Keys
	handler *httpapi.Handler
	srv     *server.Server
	config  *catalogwatch.Watcher
}

// New wires Ingest.
func New(p Params) *Service {
	logger := p.Logger.With("service", "ingest")
	keys := &httpapi.Keys{}
	parser := tracking.NewParser()
	pub := &events.Publisher{JS: p.JS}
	return &Service{
		keys:    keys,
		handler: &httpapi.Handler{Keys: keys, Parser: parser, Publisher: pub, Logger: logger},
		srv:     &server.Server{Keys: keys, Parser: parser, Publisher: pub, Logger: logger},
		config:  p.Config,
	}
}

// HTTPHandler serves the Tracking API under /v1/.
func (s *Service) HTTPHandler() http.Handler { return s.handler }

// RegisterGRPC registers IngestService.
func (s *Service) RegisterGRPC(g *grpc.Server) { ingestv1.RegisterIngestServiceServer(g, s.srv) }

// Run keeps the write-key map current until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	changed, cancel := s.config.Subscribe()
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			s.keys.Update(s.config.Snapshots())
		}
	}
}
