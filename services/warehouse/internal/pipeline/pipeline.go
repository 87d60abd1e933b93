// Package pipeline runs one durable consumer per warehouse and loads the events of its connected
// sources in batches, one transaction per source schema and batch, on the warehouse's schedule,
// and keeps the warehouse's sync history.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
	"github.com/switchyardhq/switchyard/services/warehouse/internal/history"
	"github.com/switchyardhq/switchyard/services/warehouse/internal/loader"
	"github.com/switchyardhq/switchyard/services/warehouse/internal/schema"
	"google.golang.org/protobuf/proto"
)

// ConsumerName is the durable consumer of a warehouse.
func ConsumerName(warehouseID string) string { return "warehouse-" + warehouseID }

// Default batching of loads: up to BatchSize events, waiting at most BatchWait (settings
// batch_size and batch_wait_ms override them per warehouse).
const (
	BatchSize = 1000
	BatchWait = 500 * time.Millisecond
)

// SyncsBucket is the Warehouse-owned KV bucket holding each warehouse's sync history (key: the
// warehouse id, value: JSON list of syncs, newest first).
const SyncsBucket = "WAREHOUSE_SYNCS"

// Retry pacing while a warehouse refuses loads (down, unreachable): the batch is held, kept in
// progress, and retried after 1 s, 2 s, 4 s … at most maxRetryWait.
const maxRetryWait = 15 * time.Second

// AckWait is how long JetStream waits for the ack of a delivered event before redelivering it.
// It bounds how late the events a crashed loader had fetched but not committed load after a
// restart; while a batch is being loaded (or held because the warehouse is down) it is kept in
// progress every heartbeat, so a slow load is never redelivered meanwhile.
const (
	AckWait   = 15 * time.Second
	heartbeat = 5 * time.Second
)

// ErrUnknownWarehouse is returned for a warehouse this process does not run.
var ErrUnknownWarehouse = errors.New("warehouse is not running")

// ErrDisabled is returned for a warehouse Catalog holds as disabled (enabled: false): it runs
// nowhere until it is enabled again.
var ErrDisabled = errors.New("warehouse is disabled; enable it (PATCH enabled: true) to sync or query it")

// Manager keeps one loader per enabled warehouse.
type Manager struct {
	js      natsjs.JetStream
	logger  *slog.Logger
	metrics instruments

	storeOnce sync.Once
	store     history.Store

	mu      sync.Mutex
	workers map[string]*worker
	// disabled holds the ids of the warehouses the configuration holds as disabled.
	disabled map[string]bool
	// reconciled is set once the first configuration has been applied, so
	// readiness never reports warehouses that are not open yet.
	reconciled bool
	wg         sync.WaitGroup
}

type worker struct {
	wh       *catalogv1.Warehouse
	settings Settings
	slugs    map[string]string // source id → schema name
	engine   sqlengine.Engine
	history  *history.Recorder
	syncNow  chan struct{}
	cancel   context.CancelFunc
	done     chan struct{}
	openErr  error
}

// New returns a manager.
func New(js natsjs.JetStream, logger *slog.Logger) *Manager {
	return &Manager{js: js, logger: logger, metrics: newInstruments(), workers: map[string]*worker{}}
}

// Open returns the engine of a warehouse, so the query API and the loader share one instance
// (DuckDB allows one per file and process). DuckDB reads settings.path, PostgreSQL settings.dsn.
func Open(wh *catalogv1.Warehouse) (sqlengine.Engine, error) {
	f := wh.GetSettings().GetFields()
	switch wh.GetType() {
	case catalogv1.WarehouseType_WAREHOUSE_TYPE_DUCKDB:
		path := f["path"].GetStringValue()
		if path == "" {
			return nil, fmt.Errorf("warehouse %s: settings.path is empty", wh.GetId())
		}
		return sqlengine.OpenDuckDB(path)
	case catalogv1.WarehouseType_WAREHOUSE_TYPE_POSTGRES:
		dsn := f["dsn"].GetStringValue()
		if dsn == "" {
			return nil, fmt.Errorf("warehouse %s: settings.dsn is empty", wh.GetId())
		}
		return sqlengine.OpenPostgres(dsn)
	}
	return nil, fmt.Errorf("warehouse %s: type %s is not supported", wh.GetId(), wh.GetType())
}

// SchemaName is the warehouse schema of a source: its slug in snake_case, shortened and prefixed
// like every other identifier.
func SchemaName(slug string) string { return schema.Ident(schema.Snake(slug)) }

// historyStore returns the KV-backed history store, creating the bucket on first use. Without
// JetStream (nil js) histories live in memory only.
func (m *Manager) historyStore(ctx context.Context) history.Store {
	m.storeOnce.Do(func() {
		if m.js == nil {
			return
		}
		kv, err := m.js.CreateOrUpdateKeyValue(ctx, natsjs.KeyValueConfig{
			Bucket: SyncsBucket, Description: "Warehouse sync history per warehouse", History: 1, Storage: natsjs.FileStorage,
		})
		if err != nil {
			m.logger.Error("warehouse: sync history bucket unavailable; history kept in memory", "err", err)
			return
		}
		m.store = kvStore{kv: kv}
	})
	return m.store
}

// Reconcile starts, restarts and stops loaders to match snaps.
func (m *Manager) Reconcile(ctx context.Context, snaps []*catalogv1.ConfigSnapshot) {
	want := map[string]*catalogv1.Warehouse{}
	disabled := map[string]bool{}
	slugs := map[string]map[string]string{}
	for _, s := range snaps {
		bySource := map[string]string{}
		for _, src := range s.GetSources() {
			bySource[src.GetId()] = src.GetSlug()
		}
		for _, wh := range s.GetWarehouses() {
			if !wh.GetEnabled() {
				disabled[wh.GetId()] = true
				continue
			}
			want[wh.GetId()] = wh
			slugs[wh.GetId()] = map[string]string{}
			for _, id := range wh.GetSourceIds() {
				if slug, ok := bySource[id]; ok {
					slugs[wh.GetId()][id] = SchemaName(slug)
				}
			}
		}
	}
	store := m.historyStore(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	defer func() { m.reconciled = true }()
	m.disabled = disabled
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
		w := &worker{wh: wh, slugs: slugs[id], cancel: cancel, done: make(chan struct{}), syncNow: make(chan struct{}, 1)}
		var err error
		w.history, err = history.NewRecorder(ctx, id, store, nil)
		if err != nil {
			m.logger.Warn("warehouse: sync history not loaded", "warehouse", id, "err", err)
		}
		w.settings, w.openErr = ParseSettings(wh)
		if w.openErr != nil {
			w.openErr = fmt.Errorf("warehouse %s: invalid settings: %w", id, w.openErr)
		} else {
			w.engine, w.openErr = Open(wh)
		}
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
			fctx, cancel := context.WithTimeout(context.WithoutCancel(wctx), 5*time.Second)
			defer cancel()
			_ = w.history.Flush(fctx)
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
	case !ok && m.disabled[id]:
		return nil, fmt.Errorf("warehouse %s: %w", id, ErrDisabled)
	case !ok:
		return nil, fmt.Errorf("warehouse %s: %w", id, ErrUnknownWarehouse)
	case w.openErr != nil:
		return nil, w.openErr
	}
	return w.engine, nil
}

// Syncs returns a warehouse's sync history, newest first: from its running loader, or from the
// history bucket when it does not run here.
func (m *Manager) Syncs(ctx context.Context, id string) ([]history.Sync, error) {
	m.mu.Lock()
	w, ok := m.workers[id]
	m.mu.Unlock()
	if ok {
		return w.history.List(), nil
	}
	if st := m.historyStore(ctx); st != nil {
		return st.Load(ctx, id)
	}
	return nil, nil
}

// SyncNow asks a warehouse on the interval schedule to sync at once. It returns the warehouse's
// schedule and whether a sync was requested (false on the continuous schedule, which never waits).
func (m *Manager) SyncNow(id string) (schedule string, started bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.workers[id]
	switch {
	case !ok && m.disabled[id]:
		return "", false, fmt.Errorf("warehouse %s: %w", id, ErrDisabled)
	case !ok:
		return "", false, fmt.Errorf("warehouse %s: %w", id, ErrUnknownWarehouse)
	case w.openErr != nil:
		return "", false, w.openErr
	case w.settings.Schedule != ScheduleInterval:
		return w.settings.Schedule, false, nil
	}
	select {
	case w.syncNow <- struct{}{}:
	default: // one request is already pending
	}
	return w.settings.Schedule, true, nil
}

// Ready reports whether every configured warehouse is open.
func (m *Manager) Ready() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.reconciled {
		return errors.New("warehouses not opened yet")
	}
	for id, w := range m.workers {
		if w.openErr != nil {
			return fmt.Errorf("warehouse %s: %w", id, w.openErr)
		}
	}
	return nil
}

// Wait blocks until every loader stopped (after ctx cancellation), then closes the engines.
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

// run consumes the warehouse's events until ctx is done.
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
	ld := loader.NewWithOptions(w.engine, logger, loader.Options{Selection: w.settings.Selection})

	// The history is saved at most once a second while loading.
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := w.history.Flush(ctx); err != nil && ctx.Err() == nil {
					logger.Warn("warehouse: save sync history", "err", err)
				}
			}
		}
	}()

	for ctx.Err() == nil {
		cons, err := jetstream.EnsureConsumer(ctx, m.js, jetstream.ConsumerOptions{
			Stream:         streams.Events,
			Durable:        ConsumerName(w.wh.GetId()),
			FilterSubjects: filters,
			AckWait:        AckWait,
			MaxDeliver:     -1,
			MaxAckPending:  max(4*w.settings.BatchSize, 2*w.settings.BacklogBatch(), 4000),
		})
		if err == nil {
			err = m.consume(ctx, logger, ld, w, cons)
		}
		if ctx.Err() != nil {
			return
		}
		logger.Warn("warehouse consumer stopped; restarting", "err", err)
		if !sleep(ctx, time.Second) {
			return
		}
	}
}

// consume runs syncs on the warehouse's schedule until ctx is done or the consumer fails.
//
// Continuous: fetch and load batches forever; a history entry covers up to DefaultWindow of loads
// and closes when the stream runs dry. Interval: wait for the tick or "sync now", then load until
// the stream has nothing more for this warehouse; that is one history entry.
func (m *Manager) consume(ctx context.Context, logger *slog.Logger, ld *loader.Loader, w *worker, cons natsjs.Consumer) error {
	continuous := w.settings.Schedule != ScheduleInterval
	var tick *time.Ticker
	if !continuous {
		tick = time.NewTicker(w.settings.Interval)
		defer tick.Stop()
	}
	first := true
	size := w.settings.BatchSize
	// Events per message in the last fetch. Until one was seen, assume Ingest's typical pack
	// (a batch request): with single-event messages the first load is then small and the next
	// fetch adapts; assuming one event per message could make the first load 100 times the
	// batch size.
	perMsg := 100.0
	waiting := cons.CachedInfo().NumPending
	for {
		trigger := history.TriggerContinuous
		if !continuous {
			trigger = history.TriggerInterval
			if !first { // the first interval sync runs at start
				select {
				case <-ctx.Done():
					return nil
				case <-tick.C:
				case <-w.syncNow:
					trigger = history.TriggerManual
				}
			}
		}
		first = false
		if !continuous {
			w.history.Start(trigger)
		}
		for {
			// Sizes count events; a message holds one event or a pack of them, so the fetch asks
			// for the number of messages that held size events in the last fetch.
			msgs, err := fetch(ctx, cons, max(1, int(math.Ceil(float64(size)/perMsg))), w.settings.BatchWait, waiting)
			if ctx.Err() != nil {
				nakAll(msgs)
				return nil
			}
			events := 0
			if len(msgs) > 0 {
				if running, since := w.history.Running(); !running || (continuous && time.Since(since) >= DefaultWindow) {
					w.history.Start(trigger)
				}
				if events = m.loadBatch(ctx, logger, ld, w, msgs); events > 0 {
					perMsg = float64(events) / float64(len(msgs))
				}
			}
			waiting = pendingAfter(msgs)
			size = w.settings.NextBatchSize(events, uint64(float64(waiting)*perMsg))
			if err != nil {
				w.history.DiscardCurrentIfEmpty()
				w.history.Finish()
				return err
			}
			if len(msgs) == 0 {
				// Caught up. A continuous entry closes here (an idle one is dropped); an interval
				// sync is complete, even when it found nothing.
				if continuous {
					w.history.DiscardCurrentIfEmpty()
				}
				w.history.Finish()
				if !continuous {
					break
				}
			}
		}
	}
}

// fetch runs one pull request and collects what it delivers: when events are known to wait
// (waiting > 0) it takes what is there at once, otherwise it waits up to maxWait for batchSize
// messages.
func fetch(ctx context.Context, cons natsjs.Consumer, batchSize int, maxWait time.Duration, waiting uint64) ([]natsjs.Msg, error) {
	fctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	var batch natsjs.MessageBatch
	var err error
	if waiting > 0 {
		batch, err = cons.FetchNoWait(batchSize)
	} else {
		batch, err = cons.Fetch(batchSize, natsjs.FetchContext(fctx))
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, nil
		}
		return nil, err
	}
	var msgs []natsjs.Msg
	for msg := range batch.Messages() {
		msgs = append(msgs, msg)
	}
	err = batch.Error()
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		err = nil // our own wait elapsed: a short or empty batch
	}
	return msgs, err
}

// pendingAfter is how many messages wait for the consumer after the last of msgs (from its delivery
// metadata; 0 when unknown).
func pendingAfter(msgs []natsjs.Msg) uint64 {
	if len(msgs) == 0 {
		return 0
	}
	md, err := msgs[len(msgs)-1].Metadata()
	if err != nil {
		return 0
	}
	return md.NumPending
}

func nakAll(msgs []natsjs.Msg) {
	for _, msg := range msgs {
		_ = msg.Nak()
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// loadBatch loads msgs grouped by source schema and acks them.
//
// Ack invariant: a message is acked only after the transaction holding its rows committed. When a
// load fails (the warehouse is down or refuses the connection), the batch is held and retried
// with growing pauses, kept in progress so JetStream does not redeliver it meanwhile, while the
// rest of the backlog waits in the stream; the history records why. When ctx ends first the
// batch is nak'ed and redelivered to the next loader; the id primary key makes any reload
// harmless.
func (m *Manager) loadBatch(ctx context.Context, logger *slog.Logger, ld *loader.Loader, w *worker, msgs []natsjs.Msg) (events int) {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				for _, msg := range msgs {
					_ = msg.InProgress()
				}
			}
		}
	}()
	bySchema := map[string][][]byte{}
	groups := map[string][]natsjs.Msg{}
	var order []string
	for _, msg := range msgs {
		slug, ok := w.slugs[jetstream.HeadersOf(msg).Source]
		if !ok {
			// Not (or no longer) connected: nothing to load.
			_ = msg.Ack()
			continue
		}
		// A message is one event or a pack of a request's events (jetstream.UnpackData).
		evs, err := jetstream.UnpackData(msg.Headers(), msg.Data())
		if err != nil {
			// Not written by Ingest; nothing in it can be loaded. Recorded, never retried.
			logger.Error("warehouse: message is not a valid event pack; dropped", "subject", msg.Subject(), "err", err)
			w.history.Loaded(0, nil, 0, []string{"dropped a malformed event pack: " + err.Error()})
			_ = msg.Ack()
			continue
		}
		if _, ok := bySchema[slug]; !ok {
			order = append(order, slug)
		}
		for _, ev := range evs {
			bySchema[slug] = append(bySchema[slug], ev.JSON)
		}
		events += len(evs)
		groups[slug] = append(groups[slug], msg)
	}
	for _, schemaName := range order {
		evs := bySchema[schemaName]
		wait := time.Second
		for {
			start := time.Now()
			lctx, span := startLoadSpan(context.WithoutCancel(ctx), w.wh.GetId(), schemaName, groups[schemaName], len(evs))
			res, err := ld.Load(lctx, schemaName, evs)
			m.metrics.recordLoad(lctx, span, w.wh.GetId(), schemaName, groups[schemaName], len(evs), err)
			span.End()
			if err == nil {
				rows := make(map[string]int64, len(res.Rows))
				for t, n := range res.Rows {
					rows[schemaName+"."+t] = n
				}
				w.history.Loaded(len(evs), rows, res.Discards, res.Notices)
				logger.Debug("warehouse load committed", "schema", schemaName, "events", len(evs), "took", time.Since(start))
				for _, msg := range groups[schemaName] {
					_ = msg.Ack()
				}
				break
			}
			if len(res.Rows) > 0 {
				// Sub-batches that committed before the failure stay (the retry's merge skips
				// them): count their rows now.
				rows := make(map[string]int64, len(res.Rows))
				for t, n := range res.Rows {
					rows[schemaName+"."+t] = n
				}
				w.history.Loaded(0, rows, 0, nil)
			}
			logger.ErrorContext(lctx, "warehouse load failed; holding the batch and retrying", "schema", schemaName, "events", len(evs), "retry_in", wait, "err", err)
			w.history.Failed(err)
			if !sleep(ctx, wait) {
				nakAll(groups[schemaName])
				break
			}
			wait = min(2*wait, maxRetryWait)
		}
	}
	return events
}

// kvStore keeps sync histories in the SyncsBucket KV bucket.
type kvStore struct {
	kv natsjs.KeyValue
}

func (s kvStore) Load(ctx context.Context, warehouseID string) ([]history.Sync, error) {
	e, err := s.kv.Get(ctx, warehouseID)
	if errors.Is(err, natsjs.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var syncs []history.Sync
	if err := json.Unmarshal(e.Value(), &syncs); err != nil {
		return nil, fmt.Errorf("decode history: %w", err)
	}
	return syncs, nil
}

func (s kvStore) Save(ctx context.Context, warehouseID string, syncs []history.Sync) error {
	raw, err := json.Marshal(syncs)
	if err != nil {
		return err
	}
	_, err = s.kv.Put(ctx, warehouseID, raw)
	return err
}
