// Package catalogwatch keeps a data-plane service's copy of the workspace
// configuration current by following Catalog's WatchConfig stream, so no
// request ever needs a call to Catalog.
package catalogwatch

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
)

// Watcher follows Catalog's configuration. The zero value is not usable.
type Watcher struct {
	client catalogv1.CatalogServiceClient
	logger *slog.Logger

	cur   atomic.Pointer[[]*catalogv1.ConfigSnapshot]
	ready chan struct{}
	once  sync.Once

	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// New returns a watcher; Run starts it.
func New(client catalogv1.CatalogServiceClient, logger *slog.Logger) *Watcher {
	return &Watcher{client: client, logger: logger, ready: make(chan struct{}), subs: make(map[chan struct{}]struct{})}
}

// Run follows the stream until ctx is done, reconnecting with backoff
// (100 ms doubling to 5 s) when it breaks. The last snapshot stays in use
// while disconnected.
func (w *Watcher) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		err := w.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		w.logger.Warn("config watch interrupted; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (w *Watcher) follow(ctx context.Context) error {
	stream, err := w.client.WatchConfig(ctx, &catalogv1.WatchConfigRequest{})
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		snaps := resp.GetSnapshots()
		w.cur.Store(&snaps)
		w.once.Do(func() { close(w.ready) })
		w.mu.Lock()
		for s := range w.subs {
			select {
			case s <- struct{}{}:
			default:
			}
		}
		w.mu.Unlock()
	}
}

// Snapshots returns the latest configuration (nil before the first). The
// result is shared: callers must not modify it.
func (w *Watcher) Snapshots() []*catalogv1.ConfigSnapshot {
	if p := w.cur.Load(); p != nil {
		return *p
	}
	return nil
}

// Subscribe returns a channel signalled after each new snapshot (coalesced)
// and a cancel func.
func (w *Watcher) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	w.subs[ch] = struct{}{}
	w.mu.Unlock()
	if w.Ready() {
		ch <- struct{}{}
	}
	return ch, func() {
		w.mu.Lock()
		delete(w.subs, ch)
		w.mu.Unlock()
	}
}

// WaitReady blocks until the first snapshot arrived.
func (w *Watcher) WaitReady(ctx context.Context) error {
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ready reports whether a snapshot arrived.
func (w *Watcher) Ready() bool {
	select {
	case <-w.ready:
		return true
	default:
		return false
	}
}
