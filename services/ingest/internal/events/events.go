// Package events publishes accepted events to the EVENTS stream; it is the
// only place in Ingest that knows subjects, headers and the dedupe bucket.
package events

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/switchyardhq/switchyard/services/ingest/internal/tracking"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
)

// ErrUnavailable means JetStream did not confirm every event; the caller
// answers 503 so the client retries (the messageId makes the retry safe).
var ErrUnavailable = errors.New("event store unavailable")

// DefaultPublishTimeout bounds how long a request waits for JetStream.
const DefaultPublishTimeout = 5 * time.Second

// Publisher stores events of a source in EVENTS, one message per event,
// dropping messageIds already accepted within the dedupe window.
type Publisher struct {
	JS natsjs.JetStream
	// Dedupe, when set, drops messageIds seen within its window (24 h);
	// without it only the stream's short duplicate window applies.
	Dedupe *Dedupe
	// Timeout bounds one Publish call (default DefaultPublishTimeout).
	Timeout time.Duration

	duplicates atomic.Int64
}

// Duplicates counts the events dropped as duplicates since start.
func (p *Publisher) Duplicates() int64 { return p.duplicates.Load() }

// Publish stores evs and returns only when JetStream acknowledged every one
// that is not a duplicate; otherwise it returns an error wrapping
// ErrUnavailable.
//
// Order (what makes a failure part way safe): 1. drop ids repeated within
// the request and ids the dedupe bucket holds; 2. publish the rest to
// EVENTS with Nats-Msg-Id = messageId and wait for every ack; 3. only then
// record their ids in the dedupe bucket. An id is therefore never marked
// seen unless its event is stored, so a retry after a failure is never
// dropped wrongly; an event stored whose mark failed is answered 503, and
// its retry (within minutes) is absorbed by the stream's duplicate window.
func (p *Publisher) Publish(ctx context.Context, workspaceID, sourceID string, evs []tracking.Event) error {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultPublishTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if nc := p.JS.Conn(); nc != nil && !nc.IsConnected() {
		return fmt.Errorf("%w: not connected to NATS", ErrUnavailable)
	}
	evs = uniqueIDs(evs)
	var keys []string
	if p.Dedupe != nil {
		keys = make([]string, len(evs))
		for i, ev := range evs {
			keys[i] = Key(workspaceID, ev.MessageID)
		}
		seen, err := p.Dedupe.Seen(ctx, keys)
		if err != nil {
			return errors.Join(ErrUnavailable, err)
		}
		kept, keptKeys := evs[:0:0], keys[:0:0]
		for i, ev := range evs {
			if !seen[i] {
				kept, keptKeys = append(kept, ev), append(keptKeys, keys[i])
			}
		}
		p.duplicates.Add(int64(len(evs) - len(kept)))
		evs, keys = kept, keptKeys
	}
	if len(evs) == 0 {
		return nil
	}
	subject := streams.EventsSubject(workspaceID, sourceID)
	if len(evs) == 1 {
		if _, err := jetstream.Publish(ctx, p.JS, subject, evs[0].JSON, headers(workspaceID, sourceID, evs[0])); err != nil {
			return errors.Join(ErrUnavailable, err)
		}
	} else {
		msgs := make([]*nats.Msg, len(evs))
		for i, ev := range evs {
			msgs[i] = jetstream.NewMsg(ctx, subject, ev.JSON, headers(workspaceID, sourceID, ev))
		}
		if _, err := jetstream.PublishAsyncBatch(ctx, p.JS, msgs); err != nil {
			return errors.Join(ErrUnavailable, err)
		}
	}
	if p.Dedupe != nil {
		if err := p.Dedupe.Mark(ctx, keys); err != nil {
			return errors.Join(ErrUnavailable, err)
		}
	}
	return nil
}

// uniqueIDs keeps the first event of each messageId (a batch that repeats
// an id stores it once).
func uniqueIDs(evs []tracking.Event) []tracking.Event {
	if len(evs) < 2 {
		return evs
	}
	seen := make(map[string]struct{}, len(evs))
	out := evs[:0:0]
	for _, ev := range evs {
		if _, dup := seen[ev.MessageID]; dup {
			continue
		}
		seen[ev.MessageID] = struct{}{}
		out = append(out, ev)
	}
	return out
}

func headers(ws, src string, ev tracking.Event) jetstream.Headers {
	return jetstream.Headers{MsgID: ev.MessageID, Workspace: ws, Source: src, EventType: ev.Type}
}
