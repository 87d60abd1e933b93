// Package pipeline runs one durable consumer per warehouse and loads the
// events of its connected sources in batches, one transaction per batch.
package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
	"github.com/switchyardhq/switchyard/services/warehouse/internal/loader"
	"google.golang.org/protobuf/proto"
)

// ConsumerName is the durable consumer of a warehouse.
func ConsumerName(warehouseID string) string { return "warehouse-" + warehouseID }

// Batching of loads: up to BatchSize events, waiting at most BatchWait.
const (
	BatchSize = 1000
	BatchWait = 500 * time.Millisecond
)

// Manager keeps one loader per enabled warehouse.
type Manager struct {
	js     natsjs.JetStream
	logger *slog.Logger

	mu      sync.Mutex
	workers map[string]*worker
	wg      sync.WaitGroup
}

type worker struct {
	wh      *catalogv1.Warehouse
	slugs   map[string]string // source id → schema name
	engine  sqlengine.Engine
	cancel  context.CancelFunc
	done    chan struct{}
	openErr error
}

// New returns a manager.
func New(js natsjs.JetStream, logger *slog.Logger) *Manager {
	return &Manager{js: js, logger: logger, workers: map[string]*worker{}}
}

// Open returns the engine of a warehouse, so the query API and the loader
// share one instance (DuckDB allows one per file and process).
func Open(wh *catalogv1.Warehouse) (sqlengine.Engine, error) {
	switch wh.GetType() {
	case catalogv1.WarehouseType_WAREHOUSE_TYPE_DUCKDB:
		path := wh.GetSettings().GetFields()["path"].GetStringValue()
		if path == "" {
			return nil, fmt.Errorf("warehouse %s: settings.path is empty", wh.GetId())
		}
		return sqlengine.OpenDuckDB(path)
	}
	return nil, fmt.Errorf("warehouse %s: type %s is not supported yet", wh.GetId(), wh.GetType())
}

// Reconcile starts, restarts and stops loaders to match snaps.
func (m *Manager) Reconcile(ctx context.Context, snaps []*catalogv1.ConfigSnapshot) {
	want := map[string]*catalogv1.Warehouse{}
	slugs := map[string]map[string]string{}
	for _, s := range snaps {
		bySource := map[string]string{}
		for _, src := range s.GetSources() {
			bySource[src.GetId()] = src.GetSlug()
		}
		for _, wh := range s.GetWarehouses() {
			if !wh.GetEnabled() {
				continue
			}
			want[wh.GetId()] = wh
			slugs[wh.GetId()] = map[string]string{}
			for _, id := range wh.GetSourceIds() {
				if slug, ok := bySource[id]; ok {
					slugs[wh.GetId()][id] = slug
				}
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, w := range m.workers {
		if nw, ok := want[id]; ok && proto.Equal(nw, w.wh) && sameSlugs(slugs[id], w.slugs) {
			continue
		}
		w.cancel()
		<-w.done
		if w.engine != nil {
			_ = w.engine.Close()
		}
		delete(m.workers, id)
	}
	for id, wh := range want {
		if _, ok := m.workers[id]; ok {
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		w := &worker{wh: wh, slugs: slugs[id], cancel: cancel, done: make(chan struct{})}
		w.engine, w.openErr = Open(wh)
		if w.openErr != nil {
			m.logger.Error("warehouse: open", "warehouse", id, "err", w.openErr)
		}
		m.workers[id] = w
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer close(w.done)
			if w.openErr == nil {
				m.run(wctx, w)
			}
		}()
	}
}

func sameSlugs(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Engine returns the open engine of a warehouse.
func (m *Manager) Engine(id string) (sqlengine.Engine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.workers[id]
	switch {
	case !ok:
		return nil, fmt.Errorf("warehouse %s is not running", id)
	case w.openErr != nil:
		return nil, w.openErr
	}
	return w.engine, nil
}

// Ready reports whether every configured warehouse is open.
func (m *Manager) Ready() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, w := range m.workers {
		if w.openErr != nil {
			return fmt.Errorf("warehouse %s: %w", id, w.openErr)
		}
	}
	return nil
}

// Wait blocks until every loader stopped (after ctx cancellation), then
// closes the engines.
func (m *Manager) Wait() {
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, w := range m.workers {
		if w.engine != nil {
			_ = w.engine.Close()
		}
		delete(m.workers, id)
	}
}

func (m *Manager) run(ctx context.Context, w *worker) {
	logger := m.logger.With("warehouse", w.wh.GetId())
	if len(w.slugs) == 0 {
		logger.Info("warehouse has no connected sources")
		<-ctx.Done()
		return
	}
	var filters []string
	for src := range w.slugs {
		filters = append(filters, streams.EventsSubject(w.wh.GetWorkspaceId(), src))
	}
	ld := loader.New(w.engine, logger)
	for ctx.Err() == nil {
		cons, err := jetstream.EnsureConsumer(ctx, m.js, jetstream.ConsumerOptions{
			Stream:         streams.Events,
			Durable:        ConsumerName(w.wh.GetId()),
			FilterSubjects: filters,
			AckWait:        2 * time.Minute,
			MaxDeliver:     -1,
			MaxAckPending:  4 * BatchSize,
		})
		if err == nil {
			err = jetstream.ConsumeBatches(ctx, cons, BatchSize, BatchWait, func(bctx context.Context, msgs []natsjs.Msg) {
				m.loadBatch(bctx, logger, ld, w, msgs)
			})
		}
		if ctx.Err() != nil {
			return
		}
		logger.Warn("warehouse consumer stopped; restarting", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// loadBatch loads msgs grouped by source. Ack invariant: a message is acked
// only after the transaction holding its row committed; on failure the
// batch is nak'ed and redelivered, and the id primary key makes the reload
// harmless.
func (m *Manager) loadBatch(ctx context.Context, logger *slog.Logger, ld *loader.Loader, w *worker, msgs []natsjs.Msg) {
	bySchema := map[string][][]byte{}
	groups := map[string][]natsjs.Msg{}
	for _, msg := range msgs {
		slug, ok := w.slugs[jetstream.HeadersOf(msg).Source]
		if !ok {
			// Not (or no longer) connected: nothing to load.
			_ = msg.Ack()
			continue
		}
		bySchema[slug] = append(bySchema[slug], msg.Data())
		groups[slug] = append(groups[slug], msg)
	}
	for schemaName, evs := range bySchema {
		start := time.Now()
		if err := ld.Load(ctx, schemaName, evs); err != nil {
			logger.Error("warehouse load failed; will retry", "schema", schemaName, "events", len(evs), "err", err)
			for _, msg := range groups[schemaName] {
				var n uint64 = 1
				if md, err := msg.Metadata(); err == nil {
					n = md.NumDelivered
				}
				_ = msg.NakWithDelay(jetstream.RetryDelay(n))
			}
			continue
		}
		logger.Debug("warehouse load committed", "schema", schemaName, "events", len(evs), "took", time.Since(start))
		for _, msg := range groups[schemaName] {
			_ = msg.Ack()
		}
	}
}
