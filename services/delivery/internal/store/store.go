// Package store keeps the destination configuration only Delivery uses —
// filters and subscriptions — in the JetStream KV bucket DELIVERY_config,
// one key per destination id, written with compare-and-set.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/switchyardhq/switchyard/services/delivery/internal/filter"
	"github.com/switchyardhq/switchyard/services/delivery/internal/pipeline"
)

// Bucket is the KV bucket name.
const Bucket = "DELIVERY_config"

// Config is one destination's Delivery-owned configuration.
type Config struct {
	// Filters are the destination filters.
	Filters []filter.Filter `json:"filters,omitempty"`
	// Subscriptions are the subscriptions (none = the type's defaults).
	Subscriptions []pipeline.Subscription `json:"subscriptions,omitempty"`
}

// Store reads and writes configurations and keeps a watched copy.
type Store struct {
	kv natsjs.KeyValue

	mu      sync.RWMutex
	configs map[string]Config
	subs    map[chan struct{}]struct{}
}

// Open creates the bucket if needed.
func Open(ctx context.Context, js natsjs.JetStream, replicas int) (*Store, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, natsjs.KeyValueConfig{
		Bucket: Bucket, Description: "Delivery: filters and subscriptions per destination",
		History: 5, Storage: natsjs.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("open KV %s: %w", Bucket, err)
	}
	return &Store{kv: kv, configs: map[string]Config{}, subs: map[chan struct{}]struct{}{}}, nil
}

// Get returns a destination's configuration (zero when none).
func (s *Store) Get(id string) Config {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.configs[id]
}

// Load reads a destination's configuration from the bucket, with its
// revision (0 when absent).
func (s *Store) Load(ctx context.Context, id string) (Config, uint64, error) {
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, natsjs.ErrKeyNotFound) {
		return Config{}, 0, nil
	}
	if err != nil {
		return Config{}, 0, fmt.Errorf("load config of %s: %w", id, err)
	}
	var c Config
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return Config{}, 0, fmt.Errorf("decode config of %s: %w", id, err)
	}
	return c, e.Revision(), nil
}

// ErrConflict is a concurrent write; the caller retries.
var ErrConflict = errors.New("configuration changed concurrently")

// Update applies change to the stored configuration with compare-and-set,
// retrying a few times on conflicts.
func (s *Store) Update(ctx context.Context, id string, change func(*Config) error) (Config, error) {
	for range 5 {
		c, rev, err := s.Load(ctx, id)
		if err != nil {
			return Config{}, err
		}
		if err := change(&c); err != nil {
			return Config{}, err
		}
		raw, err := json.Marshal(c)
		if err != nil {
			return Config{}, fmt.Errorf("encode config: %w", err)
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, id, raw)
		} else {
			_, err = s.kv.Update(ctx, id, raw, rev)
		}
		if err == nil {
			s.set(id, &c)
			return c, nil
		}
		if !errors.Is(err, natsjs.ErrKeyExists) && !isWrongSeq(err) {
			return Config{}, fmt.Errorf("save config of %s: %w", id, err)
		}
	}
	return Config{}, ErrConflict
}

func isWrongSeq(err error) bool {
	var apiErr *natsjs.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == natsjs.JSErrCodeStreamWrongLastSequence
}

// Delete removes a destination's configuration.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.kv.Delete(ctx, id); err != nil && !errors.Is(err, natsjs.ErrKeyNotFound) {
		return fmt.Errorf("delete config of %s: %w", id, err)
	}
	s.set(id, nil)
	return nil
}

func (s *Store) set(id string, c *Config) {
	s.mu.Lock()
	if c == nil {
		delete(s.configs, id)
	} else {
		s.configs[id] = *c
	}
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
}

// Subscribe returns a channel signalled after every change.
func (s *Store) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

// Watch follows the bucket (changes made by other replicas) until ctx is
// done.
func (s *Store) Watch(ctx context.Context) error {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", Bucket, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watch closed")
			}
			if e == nil {
				continue // initial values done
			}
			if e.Operation() != natsjs.KeyValuePut {
				s.set(e.Key(), nil)
				continue
			}
			var c Config
			if err := json.Unmarshal(e.Value(), &c); err == nil {
				s.set(e.Key(), &c)
			}
		}
	}
}
