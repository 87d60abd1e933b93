// Package app assembles the Ingest service: the write-key map fed by the
// Catalog watch, the Tracking API handler, the gRPC IngestService, the
// EVENTS publisher and its messageId dedupe.
package app

import (
	"context"
	"fmt"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	ingestv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/ingest/v1"
	"github.com/switchyardhq/switchyard/services/ingest/internal/debugger"
	"github.com/switchyardhq/switchyard/services/ingest/internal/events"
	"github.com/switchyardhq/switchyard/services/ingest/internal/geo"
	"github.com/switchyardhq/switchyard/services/ingest/internal/httpapi"
	"github.com/switchyardhq/switchyard/services/ingest/internal/server"
	"github.com/switchyardhq/switchyard/services/ingest/internal/tracking"
	"github.com/switchyardhq/switchyard/services/internal/platform/catalogwatch"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
)

// Options are Ingest's settings; the zero value is the default behaviour.
type Options struct {
	// PublicURL is the address SDKs reach Switchyard at (settings apiHost).
	PublicURL string
	// TrustedProxies may set X-Forwarded-For.
	TrustedProxies []netip.Prefix
	// DedupeWindow is how long a messageId counts as seen (default 24 h).
	DedupeWindow time.Duration
	// DedupeFilterBits sizes each slice of the in-memory dedupe filter.
	DedupeFilterBits uint64
	// DedupeDir is the directory of the messageId index (a local
	// key-value store, rebuilt from the EVENTS stream when lost); "" keeps
	// it in memory, which is only for tests: memory then grows with the
	// ids of the window.
	DedupeDir string
	// RateLimit is the per-source limit in events/s (0: none).
	RateLimit float64
	// GeoIPPath is a MaxMind-format database; enables the sanctions policy.
	GeoIPPath string
	// BlockedCountries are ISO codes refused with 451 (default CU, IR, SY, KP).
	BlockedCountries []string
}

// Params are Ingest's dependencies.
type Params struct {
	Logger  *slog.Logger
	JS      natsjs.JetStream
	Config  *catalogwatch.Watcher
	Options Options
}

// Service is an assembled Ingest.
type Service struct {
	keys    *httpapi.Keys
	handler *httpapi.Handler
	srv     *server.WithDebugger
	config  *catalogwatch.Watcher
	dedupe  *events.Dedupe
	geo     *geo.DB
}

// New wires Ingest; it opens the messageId index and the GeoIP
// database when one is configured.
func New(ctx context.Context, p Params) (*Service, error) {
	logger := p.Logger.With("service", "ingest")
	keys := &httpapi.Keys{}
	parser := tracking.NewParser()
	dd, err := events.NewDedupe(ctx, p.JS, events.DedupeOptions{Window: p.Options.DedupeWindow, FilterBits: p.Options.DedupeFilterBits, Dir: p.Options.DedupeDir}, logger)
	if err != nil {
		return nil, err
	}
	pub := &events.Publisher{JS: p.JS, Dedupe: dd}
	dbg := &debugger.Debugger{}
	h := &httpapi.Handler{Keys: keys, Parser: parser, Publisher: pub, Logger: logger,
		PublicURL: p.Options.PublicURL, TrustedProxies: p.Options.TrustedProxies, Debugger: dbg}
	if p.Options.RateLimit > 0 {
		h.Limiter = &httpapi.RateLimiter{EventsPerSecond: p.Options.RateLimit}
	}
	s := &Service{
		keys:    keys,
		handler: h,
		srv: &server.WithDebugger{
			Server:    &server.Server{Keys: keys, Parser: parser, Publisher: pub, Logger: logger},
			Debugger:  dbg,
			Snapshots: p.Config.Snapshots,
		},
		config: p.Config,
		dedupe: dd,
	}
	if p.Options.GeoIPPath != "" {
		db, err := geo.Open(p.Options.GeoIPPath)
		if err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		s.geo = db
		h.Sanctions = geo.NewPolicy(db, p.Options.BlockedCountries)
	}
	return s, nil
}

// HTTPHandler serves the Tracking API under /v1/.
func (s *Service) HTTPHandler() http.Handler { return httpapi.Instrument(s.handler) }

// RegisterGRPC registers IngestService.
func (s *Service) RegisterGRPC(g *grpc.Server) { ingestv1.RegisterIngestServiceServer(g, s.srv) }

// RegisterGateway mounts the REST route of the live event debugger
// (GET /api/v1/sources/{sourceId}/events).
func (s *Service) RegisterGateway(ctx context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error {
	return ingestv1.RegisterIngestServiceHandler(ctx, mux, conn)
}

// Run keeps the write-key map and the dedupe filter current until ctx is
// done.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.dedupe.Run(ctx) })
	g.Go(func() error {
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
	})
	err := g.Wait()
	if cerr := s.dedupe.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("ingest: close the dedupe index: %w", cerr)
	}
	if s.geo != nil {
		_ = s.geo.Close()
	}
	return err
}
