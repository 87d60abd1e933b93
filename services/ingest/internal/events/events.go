// Package events publishes accepted events to the EVENTS stream; it is the
// only place in Ingest that knows subjects, headers and the dedupe bucket.
package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/switchyardhq/switchyard/services/ingest/internal/tracking"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// ErrUnavailable means JetStream did not confirm every event; the caller
// answers 503 so the client retries (the messageId makes the retry safe).
var ErrUnavailable = errors.New("event store unavailable")

// DefaultPublishTimeout bounds how long a request waits for JetStream.
const DefaultPublishTimeout = 5 * time.Second

// Publisher stores the events of a source in EVENTS, dropping messageIds
// already accepted within the dedupe window. A request's events are stored
// as one message: the event itself when there is one, otherwise a pack
// (jetstream.PackMsg), split only when it would exceed
// jetstream.MaxPackBytes. JetStream's work and memory are per message, so
// a 100-event batch costs about what a single track call costs.
type Publisher struct {
	JS natsjs.JetStream
	// Dedupe, when set, drops messageIds seen within its window (24 h);
	// without it only the stream's short duplicate window applies (to
	// single-event messages, whose Nats-Msg-Id is the messageId).
	Dedupe *Dedupe
	// Timeout bounds one Publish call (default DefaultPublishTimeout).
	Timeout time.Duration

	duplicates atomic.Int64

	ackOnce sync.Once
	acks    *acker
	ackErr  error
}

// Duplicates counts the events dropped as duplicates since start.
func (p *Publisher) Duplicates() int64 { return p.duplicates.Load() }

func (p *Publisher) acker() (*acker, error) {
	p.ackOnce.Do(func() {
		nc := p.JS.Conn()
		if nc == nil {
			p.ackErr = errNoConn
			return
		}
		p.acks, p.ackErr = newAcker(nc)
	})
	return p.acks, p.ackErr
}

// Publish stores evs and returns only when JetStream acknowledged every
// message holding them; otherwise it returns an error wrapping
// ErrUnavailable.
//
// Order (what makes a failure part way safe): 1. drop ids repeated within
// the request, reserve the rest against concurrent requests of this
// replica (Dedupe.claim), and drop ids the dedupe index holds; 2. publish
// the rest and wait for every acknowledgement; 3. index their ids. The
// stored message itself carries its ids, so an id is recorded exactly when
// its event is stored: a retry after a failure is never dropped wrongly,
// and a retry of a stored event is dropped by every replica once its
// index consumer has read the message.
func (p *Publisher) Publish(ctx context.Context, workspaceID, sourceID string, evs []tracking.Event) error {
	return p.PublishReporting(ctx, workspaceID, sourceID, evs, nil)
}

// PublishReporting is Publish that also calls seenBefore with the
// messageId of every event dropped because an earlier request stored it
// (within the dedupe window); repeats inside evs are dropped silently.
func (p *Publisher) PublishReporting(ctx context.Context, workspaceID, sourceID string, evs []tracking.Event, seenBefore func(messageID string)) error {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultPublishTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return errors.Join(ErrUnavailable, err)
	}
	nc := p.JS.Conn()
	if nc != nil && !nc.IsConnected() {
		return fmt.Errorf("%w: not connected to NATS", ErrUnavailable)
	}
	acks, err := p.acker()
	if err != nil {
		return errors.Join(ErrUnavailable, err)
	}
	evs = uniqueIDs(evs)
	var keys []string
	if p.Dedupe != nil {
		keys = make([]string, len(evs))
		for i, ev := range evs {
			keys[i] = Key(workspaceID, ev.MessageID)
		}
		release, err := p.Dedupe.claim(ctx, keys)
		if err != nil {
			return errors.Join(ErrUnavailable, err)
		}
		defer release()
		seen, err := p.Dedupe.Seen(ctx, keys)
		if err != nil {
			return errors.Join(ErrUnavailable, err)
		}
		kept, keptKeys := evs[:0:0], keys[:0:0]
		for i, ev := range evs {
			if !seen[i] {
				kept, keptKeys = append(kept, ev), append(keptKeys, keys[i])
			} else if seenBefore != nil {
				seenBefore(ev.MessageID)
			}
		}
		p.duplicates.Add(int64(len(evs) - len(kept)))
		evs, keys = kept, keptKeys
	}
	if len(evs) == 0 {
		return nil
	}
	subject := streams.EventsSubject(workspaceID, sourceID)
	ctx, span := otel.Tracer(tracerName).Start(ctx, "publish events",
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", subject),
			attribute.Int("messaging.batch.message_count", len(evs)),
		))
	defer span.End()
	msgs := eventMsgs(ctx, subject, workspaceID, sourceID, evs)
	span.SetAttributes(attribute.Int("switchyard.stream.messages", len(msgs)))
	dups, err := acks.publish(ctx, msgs)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish failed")
		return errors.Join(ErrUnavailable, err)
	}
	if dups > 0 && dups == len(msgs) {
		// JetStream's own duplicate window (Nats-Msg-Id; 10 minutes) caught what the dedupe
		// index did not (a window shorter than JetStream's, or a retry of a request whose
		// first attempt was stored but not yet indexed): nothing was stored again. Reported
		// when every message of the request was a duplicate (the ack does not say which pack
		// of a request split into several was).
		p.duplicates.Add(int64(len(evs)))
		if seenBefore != nil {
			for _, ev := range evs {
				seenBefore(ev.MessageID)
			}
		}
	}
	if p.Dedupe != nil {
		p.Dedupe.add(keys)
	}
	return nil
}

// tracerName is the instrumentation scope of the publish span.
const tracerName = "github.com/switchyardhq/switchyard/services/ingest/internal/events"

// eventMsgs builds the EVENTS messages of one request's events: one
// single-event message when there is one event (a pack of one when its
// messageId or type cannot be a NATS header value), otherwise packs of
// consecutive events, each within jetstream.MaxPackBytes of events and
// jetstream.MaxPackIndexBytes of index. Every
// message carries the routing headers and the trace context of ctx.
func eventMsgs(ctx context.Context, subject, ws, src string, evs []tracking.Event) []*nats.Msg {
	tc := nats.Header{}
	jetstream.InjectContext(ctx, tc)
	h := jetstream.Headers{Workspace: ws, Source: src}
	var msgs []*nats.Msg
	packed := make([]jetstream.PackedEvent, 0, len(evs))
	size, index := 0, 0
	flush := func() {
		if len(packed) == 1 && jetstream.HeaderSafe(packed[0].MessageID) && jetstream.HeaderSafe(packed[0].Type) {
			one := h
			one.MsgID, one.EventType = packed[0].MessageID, packed[0].Type
			m := jetstream.NewMsg(ctx, subject, packed[0].JSON, one)
			// JetStream's duplicate window is per stream: scope it to the
			// workspace, as the dedupe index is.
			m.Header.Set(jetstream.HeaderMsgID, ws+"/"+packed[0].MessageID)
			msgs = append(msgs, m)
		} else if len(packed) > 0 {
			// A pack's index JSON-escapes what a header could not carry.
			msgs = append(msgs, jetstream.PackMsg(subject, h, tc, packed))
		}
		packed, size, index = packed[len(packed):], 0, 0
	}
	for _, ev := range evs {
		pe := jetstream.PackedEvent{MessageID: ev.MessageID, Type: ev.Type, JSON: ev.JSON}
		entry := jetstream.PackIndexEntrySize(pe)
		if size > 0 && (size+len(ev.JSON)+1 > jetstream.MaxPackBytes || index+entry > jetstream.MaxPackIndexBytes) {
			flush()
		}
		packed = append(packed, pe)
		size += len(ev.JSON) + 1
		index += entry
	}
	flush()
	return msgs
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
