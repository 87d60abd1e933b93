// Package store keeps Reverse ETL's models, syncs and runs in JetStream KV
// buckets owned by Reverse ETL (RETL_MODELS, RETL_SYNCS, RETL_RUNS), not in
// Catalog's, so the two services never write each other's data. Values are
// binary protobuf; updates of runs and syncs are revision compare-and-set.
package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	reverseetlv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/reverseetl/v1"
	"google.golang.org/protobuf/proto"
)

// Bucket names.
const (
	ModelsBucket = "RETL_MODELS"
	SyncsBucket  = "RETL_SYNCS"
	RunsBucket   = "RETL_RUNS"
)

// RunsMaxAge is how long runs are kept.
const RunsMaxAge = 90 * 24 * time.Hour

// ErrNotFound is returned for a missing model, sync or run.
var ErrNotFound = errors.New("not found")

// casAttempts bounds compare-and-set retries of one update.
const casAttempts = 20

// Store is the KV store.
type Store struct {
	models, syncs, runs natsjs.KeyValue
}

// Open creates or opens the buckets.
func Open(ctx context.Context, js natsjs.JetStream, replicas int) (*Store, error) {
	replicas = max(replicas, 1)
	open := func(name, desc string, age time.Duration) (natsjs.KeyValue, error) {
		kv, err := js.CreateOrUpdateKeyValue(ctx, natsjs.KeyValueConfig{Bucket: name, Description: desc, Storage: natsjs.FileStorage, Replicas: replicas, TTL: age})
		if err != nil {
			return nil, fmt.Errorf("open bucket %s: %w", name, err)
		}
		return kv, nil
	}
	var s Store
	var err error
	if s.models, err = open(ModelsBucket, "Reverse ETL models", 0); err != nil {
		return nil, err
	}
	if s.syncs, err = open(SyncsBucket, "Reverse ETL syncs", 0); err != nil {
		return nil, err
	}
	if s.runs, err = open(RunsBucket, "Reverse ETL sync runs, key <syncId>.<runId>", RunsMaxAge); err != nil {
		return nil, err
	}
	return &s, nil
}

func get[T proto.Message](ctx context.Context, kv natsjs.KeyValue, key string, v T) (uint64, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, natsjs.ErrKeyNotFound) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", key, err)
	}
	if err := proto.Unmarshal(e.Value(), v); err != nil {
		return 0, fmt.Errorf("decode %s: %w", key, err)
	}
	return e.Revision(), nil
}

func put(ctx context.Context, kv natsjs.KeyValue, key string, v proto.Message) error {
	data, err := proto.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if _, err := kv.Put(ctx, key, data); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// update applies fn to the stored value with compare-and-set, retrying on
// a concurrent write.
func update[T proto.Message](ctx context.Context, kv natsjs.KeyValue, key string, fresh func() T, fn func(T) error) (T, error) {
	var zero T
	for range casAttempts {
		v := fresh()
		rev, err := get(ctx, kv, key, v)
		if err != nil {
			return zero, err
		}
		if err := fn(v); err != nil {
			return zero, err
		}
		data, err := proto.Marshal(v)
		if err != nil {
			return zero, fmt.Errorf("encode %s: %w", key, err)
		}
		if _, err := kv.Update(ctx, key, data, rev); err == nil {
			return v, nil
		} else if !errors.Is(err, natsjs.ErrKeyExists) {
			return zero, fmt.Errorf("write %s: %w", key, err)
		}
	}
	return zero, fmt.Errorf("write %s: too many concurrent updates", key)
}

func list[T proto.Message](ctx context.Context, kv natsjs.KeyValue, fresh func() T, keep func(T) bool, filters ...string) ([]T, error) {
	var keys natsjs.KeyLister
	var err error
	if len(filters) > 0 {
		keys, err = kv.ListKeysFiltered(ctx, filters...)
	} else {
		keys, err = kv.ListKeys(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	var names []string
	for k := range keys.Keys() {
		names = append(names, k)
	}
	slices.Sort(names)
	var out []T
	for _, k := range names {
		v := fresh()
		if _, err := get(ctx, kv, k, v); errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		if keep == nil || keep(v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// PutModel stores a model.
func (s *Store) PutModel(ctx context.Context, m *reverseetlv1.Model) error {
	return put(ctx, s.models, m.GetId(), m)
}

// Model reads a model.
func (s *Store) Model(ctx context.Context, id string) (*reverseetlv1.Model, error) {
	m := &reverseetlv1.Model{}
	if _, err := get(ctx, s.models, id, m); err != nil {
		return nil, err
	}
	return m, nil
}

// Models lists a workspace's models ("" lists all), by id.
func (s *Store) Models(ctx context.Context, workspaceID string) ([]*reverseetlv1.Model, error) {
	return list(ctx, s.models, func() *reverseetlv1.Model { return &reverseetlv1.Model{} },
		func(m *reverseetlv1.Model) bool { return workspaceID == "" || m.GetWorkspaceId() == workspaceID })
}

// PutSync stores a sync.
func (s *Store) PutSync(ctx context.Context, v *reverseetlv1.Sync) error {
	return put(ctx, s.syncs, v.GetId(), v)
}

// Sync reads a sync.
func (s *Store) Sync(ctx context.Context, id string) (*reverseetlv1.Sync, error) {
	v := &reverseetlv1.Sync{}
	if _, err := get(ctx, s.syncs, id, v); err != nil {
		return nil, err
	}
	return v, nil
}

// UpdateSync changes a sync with compare-and-set.
func (s *Store) UpdateSync(ctx context.Context, id string, fn func(*reverseetlv1.Sync) error) (*reverseetlv1.Sync, error) {
	return update(ctx, s.syncs, id, func() *reverseetlv1.Sync { return &reverseetlv1.Sync{} }, fn)
}

// DeleteSync deletes a sync (its runs expire with the bucket's age).
func (s *Store) DeleteSync(ctx context.Context, id string) error {
	if err := s.syncs.Delete(ctx, id); err != nil {
		return fmt.Errorf("delete sync %s: %w", id, err)
	}
	return nil
}

// Syncs lists a workspace's syncs ("" lists all), by id.
func (s *Store) Syncs(ctx context.Context, workspaceID string) ([]*reverseetlv1.Sync, error) {
	return list(ctx, s.syncs, func() *reverseetlv1.Sync { return &reverseetlv1.Sync{} },
		func(v *reverseetlv1.Sync) bool { return workspaceID == "" || v.GetWorkspaceId() == workspaceID })
}

func runKey(syncID, runID string) string { return syncID + "." + runID }

// PutRun stores a run.
func (s *Store) PutRun(ctx context.Context, r *reverseetlv1.SyncRun) error {
	return put(ctx, s.runs, runKey(r.GetSyncId(), r.GetId()), r)
}

// Run reads a run.
func (s *Store) Run(ctx context.Context, syncID, runID string) (*reverseetlv1.SyncRun, error) {
	if strings.ContainsAny(syncID+runID, ".*> ") {
		return nil, ErrNotFound
	}
	r := &reverseetlv1.SyncRun{}
	if _, err := get(ctx, s.runs, runKey(syncID, runID), r); err != nil {
		return nil, err
	}
	return r, nil
}

// UpdateRun changes a run with compare-and-set.
func (s *Store) UpdateRun(ctx context.Context, syncID, runID string, fn func(*reverseetlv1.SyncRun) error) (*reverseetlv1.SyncRun, error) {
	return update(ctx, s.runs, runKey(syncID, runID), func() *reverseetlv1.SyncRun { return &reverseetlv1.SyncRun{} }, fn)
}

// Runs lists a sync's runs, newest first (run ids sort by start time), at
// most limit.
func (s *Store) Runs(ctx context.Context, syncID string, limit int) ([]*reverseetlv1.SyncRun, error) {
	if strings.ContainsAny(syncID, ".*> ") {
		return nil, nil
	}
	keys, err := s.runs.ListKeysFiltered(ctx, syncID+".*")
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var names []string
	for k := range keys.Keys() {
		names = append(names, k)
	}
	slices.Sort(names)
	slices.Reverse(names)
	if limit > 0 && len(names) > limit {
		names = names[:limit]
	}
	var out []*reverseetlv1.SyncRun
	for _, k := range names {
		r := &reverseetlv1.SyncRun{}
		if _, err := get(ctx, s.runs, k, r); errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// AllRuns lists every stored run whose status is keep's (start-up recovery).
func (s *Store) AllRuns(ctx context.Context, keep func(*reverseetlv1.SyncRun) bool) ([]*reverseetlv1.SyncRun, error) {
	return list(ctx, s.runs, func() *reverseetlv1.SyncRun { return &reverseetlv1.SyncRun{} }, keep)
}
