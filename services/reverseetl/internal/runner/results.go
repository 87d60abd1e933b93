package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	reverseetlv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/reverseetl/v1"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/diff"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/events"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/store"
)

// ResultsConsumer is the durable consumer of Delivery's record results.
const ResultsConsumer = "retl-results"

// loadStatus is a finished run's status from its counts: partial success
// when records were rejected or failed to load, failed when every
// published record failed, success otherwise.
func loadStatus(v *reverseetlv1.SyncRun, recordErrors int64) reverseetlv1.SyncRunStatus {
	switch {
	case v.GetPublished() > 0 && v.GetDelivered() == 0 && v.GetFailed() >= v.GetPublished():
		return reverseetlv1.SyncRunStatus_SYNC_RUN_STATUS_FAILED
	case recordErrors > 0 || v.GetFailed() > 0:
		return reverseetlv1.SyncRunStatus_SYNC_RUN_STATUS_PARTIAL_SUCCESS
	}
	return reverseetlv1.SyncRunStatus_SYNC_RUN_STATUS_SUCCEEDED
}

// ConsumeResults folds Delivery's results into runs and failure tables
// until ctx is done. Ack invariant: a batch is acked only after the
// failures are stored in the warehouse and the run counts in KV; on error
// it is nak'ed and redelivered (recording a result twice is harmless: the
// failure upsert keeps the highest attempt, counts may over-count by the
// redelivered batch).
func (r *Runner) ConsumeResults(ctx context.Context, js natsjs.JetStream) error {
	for ctx.Err() == nil {
		cons, err := jetstream.EnsureConsumer(ctx, js, jetstream.ConsumerOptions{
			Stream: streams.RETL, Durable: ResultsConsumer, FilterSubjects: []string{streams.RETLResultFilter},
			AckWait: time.Minute, MaxDeliver: -1, MaxAckPending: 2000,
		})
		if err == nil {
			err = jetstream.ConsumeBatches(ctx, cons, 500, 200*time.Millisecond, func(bctx context.Context, msgs []natsjs.Msg) {
				if err := r.applyResults(bctx, msgs); err != nil {
					r.logger.Warn("reverse etl: record results", "err", err)
					for _, m := range msgs {
						_ = m.NakWithDelay(2 * time.Second)
					}
					return
				}
				for _, m := range msgs {
					_ = m.Ack()
				}
			})
		}
		if err != nil && ctx.Err() == nil {
			r.logger.Warn("reverse etl: results consumer", "err", err)
			t := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	}
	return nil
}

func (r *Runner) applyResults(ctx context.Context, msgs []natsjs.Msg) error {
	bySync := map[string][]*reverseetlv1.RecordResult{}
	for _, m := range msgs {
		res, err := events.DecodeResult(m.Data())
		if err != nil {
			r.logger.Warn("reverse etl: dropping undecodable result", "err", err)
			continue
		}
		bySync[res.GetSyncId()] = append(bySync[res.GetSyncId()], res)
	}
	var errs []error
	for syncID, results := range bySync {
		if err := r.applySyncResults(ctx, syncID, results); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *Runner) applySyncResults(ctx context.Context, syncID string, results []*reverseetlv1.RecordResult) error {
	s, err := r.store.Sync(ctx, syncID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted sync: nothing to retry
	}
	if err != nil {
		return err
	}
	d, err := r.differ(ctx, s)
	if err != nil {
		return err
	}
	rs := make([]diff.Result, len(results))
	type counts struct {
		ok, failed int64
		ids        []string
		msg        string
	}
	byRun := map[string]*counts{}
	for i, res := range results {
		rs[i] = diff.Result{RecordID: res.GetRecordId(), Op: opOf(res.GetOperation()), Attempt: max(int(res.GetAttempt()), 1), Delivered: res.GetDelivered(), Error: res.GetError()}
		c := byRun[res.GetRunId()]
		if c == nil {
			c = &counts{}
			byRun[res.GetRunId()] = c
		}
		if res.GetDelivered() {
			c.ok++
			continue
		}
		c.failed++
		if len(c.ids) < 10 {
			c.ids = append(c.ids, res.GetRecordId())
		}
		c.msg = res.GetError()
	}
	if err := d.RecordResults(ctx, syncID, r.Now(), rs); err != nil {
		return err
	}
	for runID, c := range byRun {
		_, err := r.store.UpdateRun(ctx, syncID, runID, func(v *reverseetlv1.SyncRun) error {
			v.Delivered += c.ok
			v.Failed += c.failed
			if c.failed > 0 {
				var e *reverseetlv1.SyncRunError
				for _, x := range v.GetErrors() {
					if x.GetCode() == ErrDeliveryFailed {
						e = x
					}
				}
				if e == nil {
					e = &reverseetlv1.SyncRunError{Code: ErrDeliveryFailed}
					v.Errors = append(v.Errors, e)
				}
				e.Count += c.failed
				e.Message = fmt.Sprintf("the destination rejected the record: %s (retried on the next runs)", c.msg)
				for _, id := range c.ids {
					if len(e.RecordIds) < 10 {
						e.RecordIds = append(e.RecordIds, id)
					}
				}
			}
			if v.GetStatus() != reverseetlv1.SyncRunStatus_SYNC_RUN_STATUS_RUNNING && v.GetStatus() != reverseetlv1.SyncRunStatus_SYNC_RUN_STATUS_CANCELLED {
				v.Status = loadStatus(v, v.GetRecordErrors())
			}
			return nil
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

func opOf(op reverseetlv1.RecordOperation) diff.Op {
	switch op {
	case reverseetlv1.RecordOperation_RECORD_OPERATION_UPDATED:
		return diff.Updated
	case reverseetlv1.RecordOperation_RECORD_OPERATION_DELETED:
		return diff.Deleted
	}
	return diff.Added
}
