// Package app assembles the Reverse ETL service: the KV store, the runner
// (runs, schedule, Delivery's results) and the gRPC/REST API.
package app

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	natsjs "github.com/nats-io/nats.go/jetstream"
	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	reverseetlv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/reverseetl/v1"
	"github.com/switchyardhq/switchyard/services/internal/platform/catalogwatch"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/events"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/runner"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/server"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/store"
	"google.golang.org/grpc"
)

// SchedulerTick is how often due syncs are looked for.
const SchedulerTick = time.Second

// Params are Reverse ETL's dependencies.
type Params struct {
	Logger *slog.Logger
	JS     natsjs.JetStream
	Config *catalogwatch.Watcher
	// Replicas is the replication of the KV buckets and RETL (default 1).
	Replicas int
}

// Service is an assembled Reverse ETL service.
type Service struct {
	js      natsjs.JetStream
	logger  *slog.Logger
	config  *catalogwatch.Watcher
	store   *store.Store
	runner  *runner.Runner
	engines *engines
	srv     reverseetlv1.ReverseETLServiceServer
	err     error
	cancel  context.CancelFunc
	opts    streams.Options
}

// New wires Reverse ETL. It opens its KV buckets now (JetStream must be
// reachable); a failure is returned by Run, and the API answers
// Unimplemented meanwhile.
func New(p Params) *Service {
	logger := p.Logger.With("service", "reverseetl")
	s := &Service{js: p.JS, logger: logger, config: p.Config, engines: &engines{cfg: p.Config, open: map[string]*openEngine{}},
		opts: streams.Options{Replicas: max(p.Replicas, 1)}}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s.store, s.err = store.Open(ctx, p.JS, p.Replicas)
	if s.err != nil {
		s.srv = reverseetlv1.UnimplementedReverseETLServiceServer{}
		return s
	}
	base, stop := context.WithCancel(context.Background())
	s.cancel = stop
	s.runner = runner.New(base, s.store, &events.Publisher{JS: p.JS}, s.engines, logger)
	s.srv = &server.Server{Store: s.store, Runner: s.runner, Engines: s.engines, Catalog: s.engines, NewID: newID}
	return s
}

// RegisterGRPC registers ReverseETLService.
func (s *Service) RegisterGRPC(g *grpc.Server) {
	reverseetlv1.RegisterReverseETLServiceServer(g, s.srv)
}

// RegisterGateway mounts the REST routes.
func (s *Service) RegisterGateway(ctx context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error {
	return reverseetlv1.RegisterReverseETLServiceHandler(ctx, mux, conn)
}

// Run ensures the RETL stream, recovers runs a previous process left in
// progress, then runs the scheduler and the results consumer until ctx is
// done; then it cancels runs in progress (their state is not advanced)
// and closes the warehouse engines.
func (s *Service) Run(ctx context.Context) error {
	if s.err != nil {
		return fmt.Errorf("reverse etl: %w", s.err)
	}
	defer s.engines.closeAll()
	defer s.cancel()
	defer s.runner.Stop()
	if err := streams.EnsureRETL(ctx, s.js, s.opts); err != nil {
		return err
	}
	if err := s.config.WaitReady(ctx); err != nil {
		return nil
	}
	if err := s.runner.RecoverInterrupted(ctx); err != nil {
		return fmt.Errorf("reverse etl: recover runs: %w", err)
	}
	syncs, err := s.store.Syncs(ctx, "")
	if err != nil {
		return fmt.Errorf("reverse etl: load syncs: %w", err)
	}
	now := time.Now()
	for _, v := range syncs {
		s.runner.Plan(v, now)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.runner.ConsumeResults(ctx, s.js); err != nil {
			s.logger.Error("reverse etl: results consumer stopped", "err", err)
		}
	})
	s.runner.Schedule(ctx, SchedulerTick)
	wg.Wait()
	return nil
}

// newID returns prefix_ and 20 random lowercase letters and digits.
func newID(prefix string) string {
	return prefix + "_" + strings.ToLower(rand.Text()[:20])
}

// engines opens the warehouses of the Catalog configuration on demand and
// keeps them open (DuckDB files are shared with Warehouse in-process
// through sqlengine.OpenDuckDB). It also answers server.Catalog.
type engines struct {
	cfg     *catalogwatch.Watcher
	mu      sync.Mutex
	open    map[string]*openEngine
	retired []sqlengine.Engine
}

type openEngine struct {
	key string
	e   sqlengine.Engine
}

func (e *engines) warehouse(ws, id string) *catalogv1.Warehouse {
	return catalogwatch.FindWarehouse(e.cfg.Snapshots(), ws, id)
}

// HasWarehouse implements server.Catalog.
func (e *engines) HasWarehouse(ws, id string) bool { return e.warehouse(ws, id) != nil }

// HasDestination implements server.Catalog.
func (e *engines) HasDestination(ws, id string) bool {
	return catalogwatch.FindDestination(e.cfg.Snapshots(), ws, id) != nil
}

// Engine implements runner.Engines.
func (e *engines) Engine(ws, id string) (sqlengine.Engine, error) {
	wh := e.warehouse(ws, id)
	if wh == nil {
		return nil, fmt.Errorf("warehouse %s not found", id)
	}
	settings, _ := json.Marshal(wh.GetSettings().AsMap())
	key := wh.GetType().String() + string(settings)
	e.mu.Lock()
	defer e.mu.Unlock()
	if o, ok := e.open[id]; ok {
		if o.key == key {
			return o.e, nil
		}
		// Settings changed: runs in progress keep the old handle until
		// they end; it is closed with the service.
		e.retired = append(e.retired, o.e)
	}
	var eng sqlengine.Engine
	var err error
	switch wh.GetType() {
	case catalogv1.WarehouseType_WAREHOUSE_TYPE_DUCKDB:
		path := wh.GetSettings().GetFields()["path"].GetStringValue()
		if path == "" {
			return nil, fmt.Errorf("warehouse %s: settings.path is empty", id)
		}
		eng, err = sqlengine.OpenDuckDB(path)
	case catalogv1.WarehouseType_WAREHOUSE_TYPE_POSTGRES:
		dsn := wh.GetSettings().GetFields()["dsn"].GetStringValue()
		if dsn == "" {
			return nil, fmt.Errorf("warehouse %s: settings.dsn is empty", id)
		}
		eng, err = sqlengine.OpenPostgres(dsn)
	default:
		return nil, fmt.Errorf("warehouse %s: type %s is not supported", id, wh.GetType())
	}
	if err != nil {
		return nil, err
	}
	e.open[id] = &openEngine{key: key, e: eng}
	return eng, nil
}

func (e *engines) closeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, o := range e.open {
		_ = o.e.Close()
		delete(e.open, id)
	}
	for _, r := range e.retired {
		_ = r.Close()
	}
	e.retired = nil
}
