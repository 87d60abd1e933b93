// Package history keeps a warehouse's sync history: one entry per sync with its start, end,
// status, rows per table, notices and errors, the newest first. It is pure bookkeeping; a Store
// persists it (the pipeline's store is a JetStream KV bucket).
package history

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// Status is a sync's outcome, as in Segment's sync history.
type Status string

// Statuses.
const (
	StatusRunning Status = "running"
	StatusSuccess Status = "success"
	// StatusPartial loaded rows but also discarded values or rows, or failed for a while.
	StatusPartial Status = "partial"
	// StatusFailure loaded nothing.
	StatusFailure Status = "failure"
)

// Triggers.
const (
	TriggerContinuous = "continuous"
	TriggerInterval   = "interval"
	TriggerManual     = "manual"
)

// MaxEntries is how many syncs are kept per warehouse.
const MaxEntries = 100

// maxLines caps the notices and errors kept per sync.
const maxLines = 20

// Sync is one history entry.
type Sync struct {
	ID             string           `json:"id"`
	WarehouseID    string           `json:"warehouse_id"`
	Trigger        string           `json:"trigger"`
	Status         Status           `json:"status"`
	StartedAt      time.Time        `json:"started_at"`
	FinishedAt     time.Time        `json:"finished_at,omitzero"`
	RowsPerTable   map[string]int64 `json:"rows_per_table,omitempty"`
	Events         int64            `json:"events"`
	Discards       int64            `json:"discards"`
	FailedAttempts int64            `json:"failed_attempts"`
	Notices        []string         `json:"notices,omitempty"`
	Errors         []string         `json:"errors,omitempty"`
}

// Rows is the total of RowsPerTable.
func (s Sync) Rows() int64 {
	var n int64
	for _, v := range s.RowsPerTable {
		n += v
	}
	return n
}

func (s Sync) clone() Sync {
	s.RowsPerTable = maps.Clone(s.RowsPerTable)
	s.Notices = slices.Clone(s.Notices)
	s.Errors = slices.Clone(s.Errors)
	return s
}

// Store persists a warehouse's history.
type Store interface {
	// Load returns the saved history, newest first (nil when there is none).
	Load(ctx context.Context, warehouseID string) ([]Sync, error)
	// Save replaces the saved history.
	Save(ctx context.Context, warehouseID string, syncs []Sync) error
}

// Recorder records the syncs of one warehouse. It is safe for concurrent use.
type Recorder struct {
	warehouseID string
	store       Store
	now         func() time.Time

	mu      sync.Mutex
	syncs   []Sync // newest first; syncs[0] is the current one when current is true
	current bool
	dirty   bool
	// downSince and downReason describe an ongoing failure, reported once loading works again.
	downSince  time.Time
	downReason string
}

// NewRecorder returns a recorder for warehouseID, starting from the history saved in store (nil
// store: memory only).
func NewRecorder(ctx context.Context, warehouseID string, store Store, now func() time.Time) (*Recorder, error) {
	if now == nil {
		now = time.Now
	}
	r := &Recorder{warehouseID: warehouseID, store: store, now: now}
	if store != nil {
		syncs, err := store.Load(ctx, warehouseID)
		if err != nil {
			return r, fmt.Errorf("load sync history of %s: %w", warehouseID, err)
		}
		for i := range syncs {
			if syncs[i].Status == StatusRunning {
				// The process stopped during that sync.
				syncs[i].Status = finalStatus(syncs[i])
				syncs[i].Errors = appendCapped(syncs[i].Errors, "interrupted: the loader stopped during this sync")
			}
		}
		r.syncs = syncs
	}
	return r, nil
}

// Start opens a new sync (closing the current one, if any).
func (r *Recorder) Start(trigger string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finishLocked()
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	s := Sync{ID: hex.EncodeToString(id), WarehouseID: r.warehouseID, Trigger: trigger, Status: StatusRunning, StartedAt: r.now().UTC()}
	r.syncs = append([]Sync{s}, r.syncs...)
	if len(r.syncs) > MaxEntries {
		r.syncs = r.syncs[:MaxEntries]
	}
	r.current, r.dirty = true, true
}

// Running reports whether a sync is open, and since when.
func (r *Recorder) Running() (bool, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.current {
		return false, time.Time{}
	}
	return true, r.syncs[0].StartedAt
}

// Loaded adds one committed load to the current sync.
func (r *Recorder) Loaded(events int, rows map[string]int64, discards int, notices []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.current {
		return
	}
	s := &r.syncs[0]
	if s.RowsPerTable == nil {
		s.RowsPerTable = map[string]int64{}
	}
	for t, n := range rows {
		s.RowsPerTable[t] += n
	}
	s.Events += int64(events)
	s.Discards += int64(discards)
	if !r.downSince.IsZero() {
		s.Notices = appendCapped(s.Notices, fmt.Sprintf("loaded the events that waited in the stream while the warehouse failed from %s to %s: %s",
			r.downSince.Format(time.RFC3339), r.now().UTC().Format(time.RFC3339), r.downReason))
		r.downSince, r.downReason = time.Time{}, ""
	}
	for _, n := range notices {
		s.Notices = appendCapped(s.Notices, n)
	}
	r.dirty = true
}

// Failed records a failed load attempt in the current sync; the events stay in the stream.
func (r *Recorder) Failed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.downSince.IsZero() {
		r.downSince, r.downReason = r.now().UTC(), err.Error()
	}
	if !r.current {
		return
	}
	s := &r.syncs[0]
	s.FailedAttempts++
	msg := "load failed, events wait in the stream and are retried: " + err.Error()
	if len(s.Errors) == 0 || s.Errors[len(s.Errors)-1] != msg {
		s.Errors = appendCapped(s.Errors, msg)
	}
	r.dirty = true
}

// Finish closes the current sync with its final status.
func (r *Recorder) Finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finishLocked()
}

func (r *Recorder) finishLocked() {
	if !r.current {
		return
	}
	s := &r.syncs[0]
	s.FinishedAt = r.now().UTC()
	s.Status = finalStatus(*s)
	r.current, r.dirty = false, true
}

func finalStatus(s Sync) Status {
	switch {
	case s.FailedAttempts > 0 && s.Events == 0:
		return StatusFailure
	case s.FailedAttempts > 0 || s.Discards > 0:
		return StatusPartial
	default:
		return StatusSuccess
	}
}

// DiscardCurrentIfEmpty drops the open sync when it loaded and failed nothing (an idle window).
func (r *Recorder) DiscardCurrentIfEmpty() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.current && r.syncs[0].Events == 0 && r.syncs[0].FailedAttempts == 0 {
		r.syncs = r.syncs[1:]
		r.current, r.dirty = false, true
	}
}

// List returns a copy of the history, newest first.
func (r *Recorder) List() []Sync {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Sync, len(r.syncs))
	for i, s := range r.syncs {
		out[i] = s.clone()
	}
	return out
}

// Flush saves the history when it changed since the last Flush.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	if !r.dirty || r.store == nil {
		r.mu.Unlock()
		return nil
	}
	syncs := make([]Sync, len(r.syncs))
	for i, s := range r.syncs {
		syncs[i] = s.clone()
	}
	r.dirty = false
	r.mu.Unlock()
	if err := r.store.Save(ctx, r.warehouseID, syncs); err != nil {
		r.mu.Lock()
		r.dirty = true
		r.mu.Unlock()
		return fmt.Errorf("save sync history of %s: %w", r.warehouseID, err)
	}
	return nil
}

func appendCapped(lines []string, l string) []string {
	if len(lines) >= maxLines {
		return lines
	}
	return append(lines, l)
}
