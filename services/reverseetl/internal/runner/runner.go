// Package runner executes Reverse ETL sync runs — extract and diff in the
// warehouse, publish the selected changes to RETL, advance the state — and
// starts them on schedule. It also folds Delivery's record results back
// into runs (load counts) and into the warehouse failure tables (retries).
package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	reverseetlv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/reverseetl/v1"
	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/diff"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/events"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/schedule"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/store"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Errors of Start, Cancel and Reset.
var (
	// ErrRunning is returned when the sync already has a run in progress.
	ErrRunning = errors.New("the sync already has a run in progress")
	// ErrNotRunning is returned when cancelling a run that is not in progress.
	ErrNotRunning = errors.New("the run is not in progress")
)

// Error codes of run errors besides diff's record errors.
const (
	ErrExtract        = "ErrExtract"
	ErrPublish        = "ErrPublish"
	ErrRecordTooLarge = "ErrRecordTooLarge"
	ErrDeliveryFailed = "ErrDeliveryFailed"
)

// Engines resolves a workspace's warehouse to an open engine.
type Engines interface {
	// Engine returns the warehouse's engine; callers do not close it.
	Engine(workspaceID, warehouseID string) (sqlengine.Engine, error)
}

// Publisher stores record messages in RETL.
type Publisher interface {
	Publish(ctx context.Context, msgs []*nats.Msg) error
}

// Runner runs syncs. The zero value is not usable; use New.
type Runner struct {
	store   *store.Store
	pub     Publisher
	engines Engines
	logger  *slog.Logger
	// PageSize is the number of changes read and published at once.
	PageSize int
	// Now is the clock.
	Now func() time.Time

	mu      sync.Mutex
	active  map[string]*active // sync id → its run in progress
	next    map[string]time.Time
	base    context.Context
	wg      sync.WaitGroup
	stopped bool
}

type active struct {
	runID  string
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a runner. Runs started later live under base: cancelling it
// cancels them.
func New(base context.Context, st *store.Store, pub Publisher, engines Engines, logger *slog.Logger) *Runner {
	return &Runner{store: st, pub: pub, engines: engines, logger: logger, PageSize: diff.DefaultPageSize, Now: time.Now,
		active: map[string]*active{}, next: map[string]time.Time{}, base: base}
}

// NewRunID returns a run id that sorts by start time.
func NewRunID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "run_" + fmt.Sprintf("%016x", now.UnixNano()) + hex.EncodeToString(b[:])
}

// Selection is the operations a record selection sends.
func Selection(s reverseetlv1.RecordSelection) []diff.Op {
	switch s {
	case reverseetlv1.RecordSelection_RECORD_SELECTION_ADDED:
		return []diff.Op{diff.Added}
	case reverseetlv1.RecordSelection_RECORD_SELECTION_UPDATED:
		return []diff.Op{diff.Updated}
	case reverseetlv1.RecordSelection_RECORD_SELECTION_DELETED:
		return []diff.Op{diff.Deleted}
	}
	return []diff.Op{diff.Added, diff.Updated}
}

func operation(op diff.Op) reverseetlv1.RecordOperation {
	switch op {
	case diff.Added:
		return reverseetlv1.RecordOperation_RECORD_OPERATION_ADDED
	case diff.Updated:
		return reverseetlv1.RecordOperation_RECORD_OPERATION_UPDATED
	case diff.Deleted:
		return reverseetlv1.RecordOperation_RECORD_OPERATION_DELETED
	}
	return reverseetlv1.RecordOperation_RECORD_OPERATION_UNSPECIFIED
}

// Start begins a run of the sync now and returns it in progress.
func (r *Runner) Start(ctx context.Context, syncID, trigger string) (*reverseetlv1.SyncRun, error) {
	s, err := r.store.Sync(ctx, syncID)
	if err != nil {
		return nil, err
	}
	m, err := r.store.Model(ctx, s.GetModelId())
	if err != nil {
		return nil, fmt.Errorf("model %s of sync %s: %w", s.GetModelId(), syncID, err)
	}
	now := r.Now()
	run := &reverseetlv1.SyncRun{
		Id: NewRunID(now), SyncId: syncID, Status: reverseetlv1.SyncRunStatus_SYNC_RUN_STATUS_RUNNING,
		StartedAt: timestamppb.New(now), WorkspaceId: s.GetWorkspaceId(), ModelId: m.GetId(),
		DestinationId: s.GetDestinationId(), Trigger: trigger,
	}
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return nil, context.Canceled
	}
	if _, busy := r.active[syncID]; busy {
		r.mu.Unlock()
		return nil, ErrRunning
	}
	runCtx, cancel := context.WithCancel(r.base)
	a := &active{runID: run.GetId(), cancel: cancel, done: make(chan struct{})}
	r.active[syncID] = a
	r.wg.Add(1)
	r.mu.Unlock()

	release := func() {
		r.mu.Lock()
		delete(r.active, syncID)
		r.mu.Unlock()
		cancel()
		close(a.done)
		r.wg.Done()
	}
	if err := r.store.PutRun(ctx, run); err != nil {
		release()
		return nil, err
	}
	if _, err := r.store.UpdateSync(ctx, syncID, func(v *reverseetlv1.Sync) error { v.LastRunId = run.GetId(); return nil }); err != nil {
		r.logger.Warn("reverse etl: record last run", "sync", syncID, "err", err)
	}
	go func() {
		defer release()
		r.execute(runCtx, s, m, run)
	}()
	return run, nil
}

// Cancel stops a run in progress. The state is not advanced; the run ends
// as cancelled.
func (r *Runner) Cancel(syncID, runID string) error {
	r.mu.Lock()
	a, ok := r.active[syncID]
	r.mu.Unlock()
	if !ok || a.runID != runID {
		return ErrNotRunning
	}
	a.cancel()
	<-a.done
	return nil
}

// Running reports the id of the sync's run in progress, if any.
func (r *Runner) Running(syncID string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.active[syncID]
	if !ok {
		return "", false
	}
	return a.runID, true
}

// Reset forgets a sync's state in its warehouse: the next run sends every
// row as added. It refuses while a run is in progress.
func (r *Runner) Reset(ctx context.Context, s *reverseetlv1.Sync) error {
	if _, busy := r.Running(s.GetId()); busy {
		return ErrRunning
	}
	d, err := r.differ(ctx, s)
	if err != nil {
		return err
	}
	return d.Reset(ctx, s.GetId())
}

func (r *Runner) differ(ctx context.Context, s *reverseetlv1.Sync) (*diff.Differ, error) {
	m, err := r.store.Model(ctx, s.GetModelId())
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", s.GetModelId(), err)
	}
	e, err := r.engines.Engine(m.GetWorkspaceId(), m.GetWarehouseId())
	if err != nil {
		return nil, err
	}
	return diff.New(e)
}

// Stop cancels every run in progress and waits for them to end.
func (r *Runner) Stop() {
	r.mu.Lock()
	r.stopped = true
	for _, a := range r.active {
		a.cancel()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// progress is a run's counters while it publishes.
type progress struct {
	published, failed int64
	tooLarge          []string
	tooLargeN         int64
}

func (r *Runner) execute(ctx context.Context, s *reverseetlv1.Sync, m *reverseetlv1.Model, run *reverseetlv1.SyncRun) {
	logger := r.logger.With("sync", s.GetId(), "run", run.GetId())
	ctx, span := startRunSpan(ctx, s, run)
	defer span.End()
	// Store updates must land even when the run is cancelled.
	bg := context.WithoutCancel(ctx)
	finish := func(mut func(*reverseetlv1.SyncRun)) {
		var final *reverseetlv1.SyncRun
		if _, err := r.store.UpdateRun(bg, s.GetId(), run.GetId(), func(v *reverseetlv1.SyncRun) error {
			mut(v)
			v.FinishedAt = timestamppb.New(r.Now())
			final = v
			return nil
		}); err != nil {
			logger.ErrorContext(ctx, "reverse etl: store run result", "err", err)
		}
		if final != nil {
			endRun(bg, span, s, final)
		}
	}
	fail := func(code string, err error) {
		logger.WarnContext(ctx, "reverse etl: run failed", "err", err)
		finish(func(v *reverseetlv1.SyncRun) {
			v.Status = reverseetlv1.SyncRunStatus_SYNC_RUN_STATUS_FAILED
			v.Error = err.Error()
			v.Errors = append(v.Errors, &reverseetlv1.SyncRunError{Code: code, Message: err.Error(), Count: 1})
		})
	}
	e, err := r.engines.Engine(m.GetWorkspaceId(), m.GetWarehouseId())
	if err != nil {
		fail(ErrExtract, err)
		return
	}
	d, err := diff.New(e)
	if err != nil {
		fail(ErrExtract, err)
		return
	}
	job := diff.Job{SyncID: s.GetId(), Query: m.GetSql(), UniqueKey: m.GetUniqueKey(), Selection: Selection(s.GetRecordSelection()), Now: r.Now(), PageSize: r.PageSize}
	cancelled := func() {
		_ = d.Abort(bg, s.GetId())
		finish(func(v *reverseetlv1.SyncRun) {
			v.Status = reverseetlv1.SyncRunStatus_SYNC_RUN_STATUS_CANCELLED
			v.Error = "cancelled"
		})
	}
	ext, err := d.Extract(ctx, job)
	if err != nil {
		if ctx.Err() != nil {
			cancelled()
			return
		}
		_ = d.Abort(bg, s.GetId())
		fail(ErrExtract, err)
		return
	}
	var runErrors []*reverseetlv1.SyncRunError
	var recordErrors int64
	for _, re := range ext.Errors {
		runErrors = append(runErrors, &reverseetlv1.SyncRunError{Code: re.Code, Message: recordErrorMessage(re.Code, m.GetUniqueKey()), Count: re.Count, RecordIds: re.Samples})
		if re.Code != diff.ErrRetriesExhausted {
			recordErrors += re.Count
		}
	}
	if _, err := r.store.UpdateRun(bg, s.GetId(), run.GetId(), func(v *reverseetlv1.SyncRun) error {
		v.ExtractCount, v.Added, v.Updated, v.Deleted, v.Retried = ext.Rows, ext.Added, ext.Updated, ext.Deleted, ext.Retried
		v.RecordErrors = recordErrors
		v.Errors = runErrors
		return nil
	}); err != nil {
		logger.WarnContext(ctx, "reverse etl: store extract counts", "err", err)
	}

	var p progress
	var sample *structpb.Struct
	lastSave := time.Now()
	err = d.Pages(ctx, job, ext, func(page []diff.Change) error {
		msgs := make([]*nats.Msg, 0, len(page))
		for _, c := range page {
			rec := r.record(s, m, run, ext, c)
			msg, err := events.Encode(ctx, rec)
			if err != nil {
				return err
			}
			if len(msg.Data) > events.MaxRecordBytes {
				p.failed++
				p.tooLargeN++
				if len(p.tooLarge) < 10 {
					p.tooLarge = append(p.tooLarge, c.RecordID)
				}
				continue
			}
			if sample == nil {
				sample = rec.GetFields()
			}
			msgs = append(msgs, msg)
		}
		if err := r.pub.Publish(ctx, msgs); err != nil {
			return err
		}
		p.published += int64(len(msgs))
		if time.Since(lastSave) > time.Second {
			lastSave = time.Now()
			if _, err := r.store.UpdateRun(bg, s.GetId(), run.GetId(), func(v *reverseetlv1.SyncRun) error { v.Published = p.published; return nil }); err != nil {
				logger.WarnContext(ctx, "reverse etl: store progress", "err", err)
			}
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			cancelled()
			return
		}
		_ = d.Abort(bg, s.GetId())
		fail(ErrPublish, err)
		return
	}
	// Commit even if cancel arrives now: every selected record was
	// published, so the state must say so.
	if err := d.Commit(bg, job); err != nil {
		fail(ErrExtract, err)
		return
	}
	finish(func(v *reverseetlv1.SyncRun) {
		v.Published = p.published
		v.Failed += p.failed
		if p.tooLargeN > 0 {
			v.Errors = append(v.Errors, &reverseetlv1.SyncRunError{Code: ErrRecordTooLarge, Count: p.tooLargeN, RecordIds: p.tooLarge,
				Message: fmt.Sprintf("the record is larger than %d bytes", events.MaxRecordBytes)})
		}
		v.Status = loadStatus(v, recordErrors)
	})
	logger.InfoContext(ctx, "reverse etl: run finished", "rows", ext.Rows, "added", ext.Added, "updated", ext.Updated, "deleted", ext.Deleted, "published", p.published)
}

func recordErrorMessage(code, key string) string {
	switch code {
	case diff.ErrRecordDuplicate:
		return fmt.Sprintf("several rows have the same %s; they are skipped until it is unique", key)
	case diff.ErrRecordNullUniqueID:
		return fmt.Sprintf("rows with a null %s are skipped", key)
	case diff.ErrRetriesExhausted:
		return fmt.Sprintf("delivery failed %d times or for %s; the record is no longer retried", diff.MaxAttempts, diff.MaxRetryAge)
	}
	return code
}

// record builds the RETL record of one change with the sync's mapping.
func (r *Runner) record(s *reverseetlv1.Sync, m *reverseetlv1.Model, run *reverseetlv1.SyncRun, ext *diff.Extract, c diff.Change) *reverseetlv1.Record {
	fields := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	if len(s.GetMapping()) == 0 {
		for i, col := range ext.Columns {
			fields.Fields[col] = value(c.Values[i])
		}
	} else {
		idx := make(map[string]int, len(ext.Columns))
		for i, col := range ext.Columns {
			idx[col] = i
		}
		for to, from := range s.GetMapping() {
			if i, ok := idx[from]; ok {
				fields.Fields[to] = value(c.Values[i])
			} else {
				fields.Fields[to] = structpb.NewNullValue()
			}
		}
	}
	return &reverseetlv1.Record{
		WorkspaceId: s.GetWorkspaceId(), DestinationId: s.GetDestinationId(), SyncId: s.GetId(), RunId: run.GetId(),
		ModelId: m.GetId(), RecordId: c.RecordID, Operation: operation(c.Op), Fields: fields, Action: s.GetAction(),
		ExtractedAt: run.GetStartedAt(), Attempt: int32(c.Attempt),
	}
}

// value converts a JSON-ready warehouse value to a protobuf value; numbers
// beyond float64 precision and unknown types become strings.
func value(v any) *structpb.Value {
	switch x := v.(type) {
	case json.Number:
		if f, err := strconv.ParseFloat(string(x), 64); err == nil && strconv.FormatFloat(f, 'f', -1, 64) == string(x) {
			return structpb.NewNumberValue(f)
		}
		return structpb.NewStringValue(string(x))
	case int64:
		if x > 1<<53 || x < -(1<<53) {
			return structpb.NewStringValue(strconv.FormatInt(x, 10))
		}
	}
	pv, err := structpb.NewValue(v)
	if err != nil {
		return structpb.NewStringValue(fmt.Sprint(v))
	}
	return pv
}

// RecoverInterrupted marks runs left in progress by a previous process as
// failed: their state was not advanced, so the next run repeats them.
func (r *Runner) RecoverInterrupted(ctx context.Context) error {
	runs, err := r.store.AllRuns(ctx, func(v *reverseetlv1.SyncRun) bool {
		return v.GetStatus() == reverseetlv1.SyncRunStatus_SYNC_RUN_STATUS_RUNNING
	})
	if err != nil {
		return err
	}
	for _, v := range runs {
		if _, busy := r.Running(v.GetSyncId()); busy {
			continue
		}
		if _, err := r.store.UpdateRun(ctx, v.GetSyncId(), v.GetId(), func(x *reverseetlv1.SyncRun) error {
			if x.GetStatus() == reverseetlv1.SyncRunStatus_SYNC_RUN_STATUS_RUNNING {
				x.Status = reverseetlv1.SyncRunStatus_SYNC_RUN_STATUS_FAILED
				x.Error = "interrupted: Switchyard stopped during the run; the next run extracts the same changes"
				x.FinishedAt = timestamppb.New(r.Now())
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// ScheduleOf parses a sync's schedule (the structured one when set, else
// the legacy string).
func ScheduleOf(s *reverseetlv1.Sync) (schedule.Schedule, error) {
	if d := s.GetScheduleDefinition(); d != nil && d.GetStrategy() != reverseetlv1.ScheduleStrategy_SCHEDULE_STRATEGY_UNSPECIFIED {
		strategy := map[reverseetlv1.ScheduleStrategy]string{
			reverseetlv1.ScheduleStrategy_SCHEDULE_STRATEGY_MANUAL:   "manual",
			reverseetlv1.ScheduleStrategy_SCHEDULE_STRATEGY_INTERVAL: "interval",
			reverseetlv1.ScheduleStrategy_SCHEDULE_STRATEGY_CRON:     "cron",
		}[d.GetStrategy()]
		return schedule.Parse(strategy, d.GetInterval(), d.GetCron(), d.GetTimeZone())
	}
	return schedule.ParseLegacy(s.GetSchedule())
}

// Plan sets (or clears, for a manual or disabled sync) the sync's next
// scheduled run after now and returns it.
func (r *Runner) Plan(s *reverseetlv1.Sync, now time.Time) time.Time {
	sc, err := ScheduleOf(s)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil || !s.GetEnabled() || sc.Strategy == schedule.Manual {
		delete(r.next, s.GetId())
		return time.Time{}
	}
	n := sc.Next(now)
	r.next[s.GetId()] = n
	return n
}

// Forget removes a deleted sync from the schedule.
func (r *Runner) Forget(syncID string) {
	r.mu.Lock()
	delete(r.next, syncID)
	r.mu.Unlock()
}

// Due starts every scheduled sync whose time has come (now) and plans its
// next run. A sync still running at its time skips that run.
func (r *Runner) Due(ctx context.Context, now time.Time) {
	r.mu.Lock()
	var due []string
	for id, t := range r.next {
		if !t.After(now) {
			due = append(due, id)
		}
	}
	r.mu.Unlock()
	for _, id := range due {
		s, err := r.store.Sync(ctx, id)
		if err != nil {
			r.Forget(id)
			continue
		}
		next := r.Plan(s, now)
		if _, err := r.Start(ctx, id, "schedule"); err != nil && !errors.Is(err, ErrRunning) {
			r.logger.Warn("reverse etl: scheduled run", "sync", id, "err", err)
		}
		if _, err := r.store.UpdateSync(ctx, id, func(v *reverseetlv1.Sync) error {
			if next.IsZero() {
				v.NextRunAt = nil
			} else {
				v.NextRunAt = timestamppb.New(next)
			}
			return nil
		}); err != nil {
			r.logger.Warn("reverse etl: store next run", "sync", id, "err", err)
		}
	}
}

// Schedule checks for due syncs every tick until ctx is done.
func (r *Runner) Schedule(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Due(ctx, r.Now())
		}
	}
}
