// Package kvstore keeps the catalog in JetStream key-value buckets, one per
// resource kind, with revision compare-and-set on every write.
package kvstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyardhq/switchyard/services/catalog/internal/catalog"
	"golang.org/x/sync/errgroup"
)

// BucketPrefix prefixes every catalog bucket name, e.g. CATALOG_sources.
const BucketPrefix = "CATALOG_"

// Store is a catalog.Store over JetStream KV.
type Store struct {
	buckets map[catalog.Kind]jetstream.KeyValue
}

// Options tune the buckets.
type Options struct {
	// Replicas is the bucket replication factor (1 on a single server).
	Replicas int
}

// Open creates or opens the buckets.
func Open(ctx context.Context, js jetstream.JetStream, opts Options) (*Store, error) {
	if opts.Replicas == 0 {
		opts.Replicas = 1
	}
	s := &Store{buckets: make(map[catalog.Kind]jetstream.KeyValue)}
	for _, k := range catalog.Kinds {
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      BucketPrefix + string(k),
			Description: "Switchyard catalog: " + string(k),
			History:     5,
			Storage:     jetstream.FileStorage,
			Replicas:    opts.Replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("open bucket %s: %w", k, err)
		}
		s.buckets[k] = kv
	}
	return s, nil
}

func mapErr(err error) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return fmt.Errorf("%w: %v", catalog.ErrConflict, err)
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence:
		return fmt.Errorf("%w: %v", catalog.ErrConflict, err)
	}
	return err
}

// Create stores a new key; it fails with catalog.ErrConflict when the key exists.
func (s *Store) Create(ctx context.Context, kind catalog.Kind, key string, value []byte) (uint64, error) {
	rev, err := s.buckets[kind].Create(ctx, key, value)
	return rev, mapErr(err)
}

// Update replaces a key if its revision is still rev.
func (s *Store) Update(ctx context.Context, kind catalog.Kind, key string, value []byte, rev uint64) (uint64, error) {
	n, err := s.buckets[kind].Update(ctx, key, value, rev)
	return n, mapErr(err)
}

// Delete removes a key if its revision is still rev.
func (s *Store) Delete(ctx context.Context, kind catalog.Kind, key string, rev uint64) error {
	return mapErr(s.buckets[kind].Delete(ctx, key, jetstream.LastRevision(rev)))
}

// Watch streams every bucket: first all current values, then ready, then changes.
func (s *Store) Watch(ctx context.Context, apply func(catalog.Change), ready func()) error {
	type item struct {
		ch    catalog.Change
		ready bool
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make(chan item, 256)
	g, gctx := errgroup.WithContext(ctx)
	for kind, kv := range s.buckets {
		w, err := kv.WatchAll(gctx)
		if err != nil {
			return fmt.Errorf("watch %s: %w", kind, err)
		}
		g.Go(func() error {
			defer w.Stop()
			for {
				select {
				case <-gctx.Done():
					return nil
				case e, ok := <-w.Updates():
					if !ok {
						return fmt.Errorf("watch %s closed", kind)
					}
					if e == nil { // end of the initial values
						select {
						case out <- item{ready: true}:
						case <-gctx.Done():
						}
						continue
					}
					key := e.Key()
					ch := catalog.Change{Kind: kind, Key: key, Revision: e.Revision(), Value: e.Value(),
						Deleted: e.Operation() != jetstream.KeyValuePut}
					select {
					case out <- item{ch: ch}:
					case <-gctx.Done():
						return nil
					}
				}
			}
		})
	}
	go func() { _ = g.Wait(); close(out) }()
	pending := len(s.buckets)
	for it := range out {
		if it.ready {
			pending--
			if pending == 0 {
				ready()
			}
			continue
		}
		apply(it.ch)
	}
	return g.Wait()
}

// Get returns the latest value and revision of key.
func (s *Store) Get(ctx context.Context, kind catalog.Kind, key string) ([]byte, uint64, error) {
	e, err := s.buckets[kind].Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, &catalog.NotFoundError{Kind: kind, ID: key}
	}
	if err != nil {
		return nil, 0, err
	}
	return e.Value(), e.Revision(), nil
}
