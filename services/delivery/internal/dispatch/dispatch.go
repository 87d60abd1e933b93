// Package dispatch runs one durable consumer per enabled destination and
// sends each event to it, so one slow destination never slows another.
package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"github.com/switchyardhq/switchyard/services/delivery/internal/webhook"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"google.golang.org/protobuf/proto"
)

// ConsumerName is the durable consumer of a destination.
func ConsumerName(destinationID string) string { return "delivery-" + destinationID }

// Stats are a destination's counters since the process started.
type Stats struct {
	Delivered      atomic.Uint64
	FailedAttempts atomic.Uint64
}

// Dispatcher reconciles running workers with the configuration.
type Dispatcher struct {
	js     natsjs.JetStream
	sender *webhook.Sender
	logger *slog.Logger

	mu      sync.Mutex
	workers map[string]*worker
	stats   map[string]*Stats
	wg      sync.WaitGroup
}

type worker struct {
	dest   *catalogv1.Destination
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a dispatcher.
func New(js natsjs.JetStream, sender *webhook.Sender, logger *slog.Logger) *Dispatcher {
	return &Dispatcher{js: js, sender: sender, logger: logger, workers: map[string]*worker{}, stats: map[string]*Stats{}}
}

// Reconcile starts workers for new or changed enabled destinations, stops
// the others, and deletes the consumers of destinations that no longer exist.
func (d *Dispatcher) Reconcile(ctx context.Context, snaps []*catalogv1.ConfigSnapshot) {
	want := map[string]*catalogv1.Destination{}
	exists := map[string]bool{}
	for _, s := range snaps {
		for _, dst := range s.GetDestinations() {
			exists[dst.GetId()] = true
			if dst.GetEnabled() && dst.GetType() == "webhook" {
				want[dst.GetId()] = dst
			}
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, w := range d.workers {
		if nd, ok := want[id]; ok && proto.Equal(nd, w.dest) {
			continue
		}
		w.cancel()
		<-w.done
		delete(d.workers, id)
		if !exists[id] {
			if err := d.js.DeleteConsumer(ctx, streams.Events, ConsumerName(id)); err != nil && !errors.Is(err, natsjs.ErrConsumerNotFound) {
				d.logger.Warn("delete consumer of removed destination", "destination", id, "err", err)
			}
		}
	}
	for id, dst := range want {
		if _, running := d.workers[id]; running {
			continue
		}
		if d.stats[id] == nil {
			d.stats[id] = &Stats{}
		}
		wctx, cancel := context.WithCancel(ctx)
		w := &worker{dest: dst, cancel: cancel, done: make(chan struct{})}
		d.workers[id] = w
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer close(w.done)
			d.run(wctx, dst, d.stats[id])
		}()
	}
}

// Wait blocks until every worker stopped (after ctx cancellation).
func (d *Dispatcher) Wait() { d.wg.Wait() }

// StatsOf returns a destination's counters, or nil.
func (d *Dispatcher) StatsOf(id string) (*Stats, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, running := d.workers[id]
	return d.stats[id], running
}

// run consumes a destination's events until ctx is done, re-creating its
// consumer after errors.
func (d *Dispatcher) run(ctx context.Context, dst *catalogv1.Destination, st *Stats) {
	logger := d.logger.With("destination", dst.GetId())
	url := dst.GetSettings().GetFields()["url"].GetStringValue()
	headers := map[string]string{}
	for k, v := range dst.GetSettings().GetFields()["headers"].GetStructValue().GetFields() {
		headers[k] = v.GetStringValue()
	}
	for ctx.Err() == nil {
		cons, err := jetstream.EnsureConsumer(ctx, d.js, jetstream.ConsumerOptions{
			Stream:         streams.Events,
			Durable:        ConsumerName(dst.GetId()),
			FilterSubjects: []string{streams.EventsSubject(dst.GetWorkspaceId(), dst.GetSourceId())},
			// A destination receives the events accepted after it was created.
			StartTime:  dst.GetCreatedAt().AsTime(),
			AckWait:    time.Minute,
			MaxDeliver: -1,
		})
		if err == nil {
			err = jetstream.Consume(ctx, cons, func(ctx context.Context, msg natsjs.Msg) error {
				// Ack only after the endpoint answered 2xx (Consume acks on nil).
				if err := d.sender.Send(ctx, url, headers, msg.Data()); err != nil {
					st.FailedAttempts.Add(1)
					logger.Debug("delivery attempt failed; will retry", "err", err)
					return err
				}
				st.Delivered.Add(1)
				return nil
			})
		}
		if ctx.Err() != nil {
			return
		}
		logger.Warn("delivery consumer stopped; restarting", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
