package events

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/switchyardhq/switchyard/services/ingest/internal/dedupe"
)

// DedupeBucket is the JetStream KV bucket that remembers every accepted
// messageId for the dedupe window (the bucket's TTL).
const DedupeBucket = "INGEST_DEDUPE"

// DedupeOptions configure the messageId de-duplication.
type DedupeOptions struct {
	// Window is how long a messageId counts as seen (default 24 h).
	Window time.Duration
	// FilterBits sizes each of the 24 slices of the in-memory filter
	// (default 2^23 bits = 1 MiB per slice).
	FilterBits uint64
	// Replicas of the KV bucket (default 1).
	Replicas int
}

// Dedupe is the durable record of accepted messageIds: the KV bucket
// INGEST_DEDUPE (source of truth, survives restarts, shared by every
// Ingest replica) fronted by an in-memory dedupe.Filter fed by a watch of
// the bucket.
type Dedupe struct {
	kv     natsjs.KeyValue
	js     natsjs.JetStream
	filter *dedupe.Filter
	prefix string // "$KV.INGEST_DEDUPE."
	logger *slog.Logger
}

// NewDedupe creates or updates the bucket (TTL = window).
func NewDedupe(ctx context.Context, js natsjs.JetStream, o DedupeOptions, logger *slog.Logger) (*Dedupe, error) {
	if o.Window <= 0 {
		o.Window = 24 * time.Hour
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, natsjs.KeyValueConfig{
		Bucket:      DedupeBucket,
		Description: "messageIds accepted by Ingest within the dedupe window",
		History:     1,
		TTL:         o.Window,
		Storage:     natsjs.FileStorage,
		Replicas:    o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure KV bucket %s: %w", DedupeBucket, err)
	}
	return &Dedupe{
		kv: kv, js: js, logger: logger,
		filter: dedupe.NewFilter(dedupe.FilterOptions{Window: o.Window, Bits: o.FilterBits}),
		prefix: "$KV." + DedupeBucket + ".",
	}, nil
}

// Filter exposes the in-memory filter (for metrics and tests).
func (d *Dedupe) Filter() *dedupe.Filter { return d.filter }

// Key is the KV key of a messageId within a workspace: both parts
// base64url-encoded, so any messageId maps to a valid key, exactly (no
// hashing, hence no collisions).
func Key(workspaceID, messageID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(workspaceID)) + "." + base64.RawURLEncoding.EncodeToString([]byte(messageID))
}

// Run replays the bucket into the filter, marks it warm, and then keeps
// adding the keys other replicas write, until ctx is done. When the watch
// fails the filter goes cold (every id is looked up) and the watch restarts.
func (d *Dedupe) Run(ctx context.Context) error {
	for {
		err := d.watch(ctx)
		d.filter.SetWarm(false)
		if ctx.Err() != nil {
			return nil
		}
		d.logger.Warn("ingest: dedupe watch stopped; looking up every messageId until it resumes", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func (d *Dedupe) watch(ctx context.Context) error {
	w, err := d.kv.WatchAll(ctx, natsjs.MetaOnly(), natsjs.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watch closed")
			}
			if e == nil { // the replay of existing keys is complete
				d.filter.SetWarm(true)
				continue
			}
			d.filter.Add(e.Key(), e.Created())
		}
	}
}

// lookupParallelism bounds concurrent KV gets of one request.
const lookupParallelism = 32

// Seen reports, per key, whether it is in the bucket. Keys the filter
// rules out cost nothing; the others cost one KV get each.
func (d *Dedupe) Seen(ctx context.Context, keys []string) ([]bool, error) {
	seen := make([]bool, len(keys))
	now := time.Now()
	var todo []int
	for i, k := range keys {
		if d.filter.MayContain(k, now) {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return seen, nil
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		sem      = make(chan struct{}, lookupParallelism)
	)
	for _, i := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			_, err := d.kv.Get(ctx, keys[i])
			switch {
			case err == nil:
				seen[i] = true
			case errors.Is(err, natsjs.ErrKeyNotFound):
			default:
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("dedupe lookup: %w", err)
				}
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	return seen, firstErr
}

// add puts keys in the filter (they are recorded as seen now).
func (d *Dedupe) add(keys []string) {
	now := time.Now()
	for _, k := range keys {
		d.filter.Add(k, now)
	}
}

// records are the KV puts that record keys (empty values: the key is
// the record).
func (d *Dedupe) records(keys []string) []*nats.Msg {
	msgs := make([]*nats.Msg, len(keys))
	structs := make([]nats.Msg, len(keys))
	for i, k := range keys {
		structs[i].Subject = d.prefix + k
		msgs[i] = &structs[i]
	}
	return msgs
}
