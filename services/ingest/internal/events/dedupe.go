package events

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/switchyardhq/switchyard/services/ingest/internal/dedupe"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
)

// DedupeOptions configure the messageId de-duplication.
type DedupeOptions struct {
	// Window is how long a messageId counts as seen (default 24 h).
	Window time.Duration
	// FilterBits sizes each of the 24 slices of the in-memory filter
	// (default 2^23 bits = 1 MiB per slice).
	FilterBits uint64
	// Dir is the directory of the id store (dedupe.Store); "" keeps it in
	// memory, for tests.
	Dir string
	// CacheBytes is the store's block cache (default 16 MiB).
	CacheBytes int64
}

// legacyBucket is the KV bucket earlier versions kept messageIds in.
const legacyBucket = "INGEST_DEDUPE"

// Dedupe remembers the messageIds accepted within the window. The source
// of truth is the EVENTS stream itself: every message carries its
// messageIds in its headers (jetstream.MessageIDs), so an id is recorded
// exactly when its event is stored, by whichever replica stored it. Each
// replica keeps its own index of those ids: a dedupe.Store on local disk
// (exact, bounded memory), fed by a headers-only consumer of EVENTS that
// resumes from the last sequence it applied, and fronted by an in-memory
// dedupe.Filter that rules out most new ids without a lookup. The replica
// also indexes its own events as soon as JetStream acknowledged them, so
// a retry it receives right after answering is dropped without waiting
// for the consumer.
type Dedupe struct {
	js     natsjs.JetStream
	store  *dedupe.Store
	filter *dedupe.Filter
	window time.Duration
	logger *slog.Logger

	// loaded is set once the store's ids were added to the filter.
	loaded atomic.Bool

	mu       sync.Mutex
	inflight map[string]chan struct{}
}

// NewDedupe opens the id store.
func NewDedupe(ctx context.Context, js natsjs.JetStream, o DedupeOptions, logger *slog.Logger) (*Dedupe, error) {
	if o.Window <= 0 {
		o.Window = 24 * time.Hour
	}
	if logger == nil {
		logger = slog.Default()
	}
	// Before the index was local, ids were kept in this KV bucket; the
	// stream holds them too, so the bucket is removed.
	if err := js.DeleteKeyValue(ctx, legacyBucket); err == nil {
		logger.Info("ingest: removed the former dedupe bucket; ids are indexed from EVENTS", "bucket", legacyBucket)
	}
	st, err := dedupe.OpenStore(dedupe.StoreOptions{Dir: o.Dir, Window: o.Window, CacheBytes: o.CacheBytes, Logger: logger})
	if err != nil {
		return nil, err
	}
	return &Dedupe{
		js: js, store: st, window: o.Window, logger: logger,
		filter:   dedupe.NewFilter(dedupe.FilterOptions{Window: o.Window, Bits: o.FilterBits}),
		inflight: map[string]chan struct{}{},
	}, nil
}

// Filter exposes the in-memory filter (for metrics and tests).
func (d *Dedupe) Filter() *dedupe.Filter { return d.filter }

// Store exposes the id store (for metrics and tests).
func (d *Dedupe) Store() *dedupe.Store { return d.store }

// Close closes the id store (after Run returned).
func (d *Dedupe) Close() error { return d.store.Close() }

// Key is the dedupe key of a messageId within a workspace. Workspace ids
// never contain a NUL byte, so keys of different workspaces never collide.
func Key(workspaceID, messageID string) string { return workspaceID + "\x00" + messageID }

// Run indexes the ids of every EVENTS message (resuming after the last
// one applied, or from one window ago for a new store), marks the filter
// warm when it has caught up, and keeps indexing until ctx is done. When
// the consumer fails the filter goes cold (every id is looked up in the
// store) and the consumer restarts.
func (d *Dedupe) Run(ctx context.Context) error {
	// The filter starts empty: it may only answer "never seen" once it
	// holds every id of the store (until then every id is looked up).
	start := time.Now()
	n := 0
	if err := d.store.Scan(ctx, start, func(k []byte, at time.Time) {
		d.filter.Add(string(k), at)
		n++
	}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		d.logger.Warn("ingest: dedupe index not loaded into the filter; every messageId is looked up", "err", err)
	} else {
		d.loaded.Store(true)
		d.logger.Info("ingest: dedupe index loaded", "ids", n, "took", time.Since(start).Round(time.Millisecond))
	}
	for {
		err := d.tail(ctx)
		d.filter.SetWarm(false)
		if ctx.Err() != nil {
			return nil
		}
		d.logger.Warn("ingest: dedupe consumer stopped; looking up every messageId until it resumes", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func (d *Dedupe) tail(ctx context.Context) error {
	name, err := d.js.StreamNameBySubject(ctx, "events.>")
	if err != nil {
		return fmt.Errorf("stream of events.>: %w", err)
	}
	info, err := d.js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	state := info.CachedInfo().State
	cfg := natsjs.OrderedConsumerConfig{FilterSubjects: []string{"events.>"}, HeadersOnly: true}
	applied := d.store.Applied()
	if applied > 0 && applied <= state.LastSeq && applied+1 >= state.FirstSeq {
		cfg.DeliverPolicy, cfg.OptStartSeq = natsjs.DeliverByStartSequencePolicy, applied+1
	} else {
		// A new store (or a stream that was re-created): index what the
		// stream holds from one window ago.
		start := time.Now().Add(-d.window)
		cfg.DeliverPolicy, cfg.OptStartTime = natsjs.DeliverByStartTimePolicy, &start
	}
	caughtUp := state.LastSeq <= applied
	if caughtUp {
		d.setWarm()
	}
	cons, err := d.js.OrderedConsumer(ctx, name, cfg)
	if err != nil {
		return fmt.Errorf("dedupe consumer: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("dedupe consumer: %w", err)
	}
	go func() { <-ctx.Done(); it.Stop() }()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		md, err := msg.Metadata()
		if err != nil {
			continue
		}
		d.apply(msg, md)
		if !caughtUp && md.NumPending == 0 {
			caughtUp = true
			d.setWarm()
			d.logger.Info("ingest: dedupe index caught up with the stream", "seq", md.Sequence.Stream)
		}
	}
}

// setWarm lets the filter rule ids out: the stream consumer caught up and
// the store's ids are in the filter.
func (d *Dedupe) setWarm() {
	if d.loaded.Load() {
		d.filter.SetWarm(true)
	}
}

// apply indexes the ids of one stored message.
func (d *Dedupe) apply(msg natsjs.Msg, md *natsjs.MsgMetadata) {
	ids, err := jetstream.MessageIDs(msg.Headers())
	if err != nil {
		d.logger.Warn("ingest: EVENTS message with unreadable messageIds; not indexed", "seq", md.Sequence.Stream, "err", err)
	}
	ws := workspaceOf(msg.Subject())
	keys := make([][]byte, 0, len(ids))
	for _, id := range ids {
		k := Key(ws, id)
		d.filter.Add(k, md.Timestamp)
		keys = append(keys, []byte(k))
	}
	if err := d.store.Add(keys, md.Timestamp, md.Sequence.Stream); err != nil {
		d.logger.Error("ingest: dedupe store write failed", "seq", md.Sequence.Stream, "err", err)
	}
}

// workspaceOf reads the workspace id of an EVENTS subject
// (events.<workspaceId>.<sourceId>).
func workspaceOf(subject string) string {
	rest, ok := strings.CutPrefix(subject, "events.")
	if !ok {
		return ""
	}
	ws, _, _ := strings.Cut(rest, ".")
	return ws
}

// claim reserves keys for one request until release is called: a request
// carrying a key another request is publishing waits for that one to end
// (and then finds the key in the index if it was stored), so two
// concurrent requests never both store the same messageId.
func (d *Dedupe) claim(ctx context.Context, keys []string) (release func(), err error) {
	for {
		var wait chan struct{}
		d.mu.Lock()
		for _, k := range keys {
			if ch, busy := d.inflight[k]; busy {
				wait = ch
				break
			}
		}
		if wait == nil {
			mine := make(chan struct{})
			for _, k := range keys {
				d.inflight[k] = mine
			}
			d.mu.Unlock()
			return func() {
				d.mu.Lock()
				for _, k := range keys {
					delete(d.inflight, k)
				}
				d.mu.Unlock()
				close(mine)
			}, nil
		}
		d.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Seen reports, per key, whether it was stored within the window. Keys the
// filter rules out cost nothing; the others cost one store lookup each.
func (d *Dedupe) Seen(_ context.Context, keys []string) ([]bool, error) {
	seen := make([]bool, len(keys))
	now := time.Now()
	var todo []int
	var lookup [][]byte
	for i, k := range keys {
		if d.filter.MayContain(k, now) {
			todo = append(todo, i)
			lookup = append(lookup, []byte(k))
		}
	}
	if len(todo) == 0 {
		return seen, nil
	}
	found, err := d.store.Seen(lookup, now)
	if err != nil {
		return nil, fmt.Errorf("dedupe lookup: %w", err)
	}
	for j, i := range todo {
		seen[i] = found[j]
	}
	return seen, nil
}

// add indexes keys of events this replica just stored.
func (d *Dedupe) add(keys []string) {
	now := time.Now()
	bk := make([][]byte, len(keys))
	for i, k := range keys {
		d.filter.Add(k, now)
		bk[i] = []byte(k)
	}
	if err := d.store.Add(bk, now, 0); err != nil {
		d.logger.Error("ingest: dedupe store write failed; the stream consumer indexes these ids", "ids", len(keys), "err", err)
	}
}
