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
// when it breaks (nextBackoff). The last snapshot stays in use while
// disconnected.
func (w *Watcher) Run(ctx context.Context) error {
	backoff := time.Duration(0)
	for {
		received, err := w.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		backoff = nextBackoff(backoff, received)
		w.logger.Warn("config watch interrupted; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// Reconnect backoff bounds.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// nextBackoff is the wait before reconnecting after a stream that broke: the
// shortest wait when the stream had delivered a snapshot (Catalog restarted,
// a connection dropped), otherwise the previous wait doubled, up to
// maxBackoff (Catalog is down).
func nextBackoff(prev time.Duration, received bool) time.Duration {
	if received || prev < minBackoff {
		return minBackoff
	}
	return min(prev*2, maxBackoff)
}

// follow reads the stream until it breaks; received reports whether it
// delivered a snapshot.
func (w *Watcher) follow(ctx context.Context) (received bool, err error) {
	stream, err := w.client.WatchConfig(ctx, &catalogv1.WatchConfigRequest{})
	if err != nil {
		return false, err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return received, err
		}
		received = true
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
