// Package events publishes accepted events to the EVENTS stream; it is the
// only place in Ingest that knows subjects, headers and the dedupe bucket.
package events

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
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

// Publisher stores events of a source in EVENTS, one message per event,
// dropping messageIds already accepted within the dedupe window.
type Publisher struct {
	JS natsjs.JetStream
	// Dedupe, when set, drops messageIds seen within its window (24 h);
	// without it only the stream's short duplicate window applies.
	Dedupe *Dedupe
	// Timeout bounds one Publish call (default DefaultPublishTimeout).
	Timeout time.Duration
	// Logger reports dedupe records that could not be written (default:
	// slog.Default()).
	Logger *slog.Logger

	duplicates   atomic.Int64
	markFailures atomic.Int64

	ackOnce sync.Once
	acks    *acker
	ackErr  error
}

// Duplicates counts the events dropped as duplicates since start.
func (p *Publisher) Duplicates() int64 { return p.duplicates.Load() }

// MarkFailures counts the dedupe records (one per stored event) that
// JetStream did not confirm since start; see Publish.
func (p *Publisher) MarkFailures() int64 { return p.markFailures.Load() }

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

// Publish stores evs and returns only when JetStream acknowledged every one
// that is not a duplicate; otherwise it returns an error wrapping
// ErrUnavailable.
//
// Order (what makes a failure part way safe): 1. drop ids repeated within
// the request and ids the dedupe bucket holds; 2. publish the rest to
// EVENTS with Nats-Msg-Id = messageId (asynchronously, in one group whose
// acknowledgements are counted) and wait for every ack; 3. only then add
// their ids to the in-memory filter and send their records to the dedupe
// bucket, without waiting for those acks: the answer does not wait for
// them. An id is therefore never recorded unless its event is stored, so a
// retry after a failure is never dropped wrongly (a drop needs the KV
// record, read back by a get). A record still in flight, or one that
// failed (counted in MarkFailures and logged), only means that a
// duplicate arriving meanwhile is looked up, not found and published
// again; the stream's duplicate window (Nats-Msg-Id, 10 min) still absorbs
// it, exactly as it absorbs a concurrent duplicate on another replica.
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
		wsKey := base64.RawURLEncoding.EncodeToString([]byte(workspaceID)) + "."
		for i, ev := range evs {
			keys[i] = wsKey + base64.RawURLEncoding.EncodeToString([]byte(ev.MessageID))
		}
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
	if err := acks.publish(ctx, msgs, nil); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish failed")
		return errors.Join(ErrUnavailable, err)
	}
	if p.Dedupe != nil {
		p.Dedupe.add(keys)
		err := acks.publish(ctx, p.Dedupe.records(keys), func(failed int, first string) {
			if failed > 0 {
				p.markFailed(failed, first)
			}
		})
		if err != nil {
			p.markFailed(len(keys), err.Error())
		}
	}
	return nil
}

func (p *Publisher) markFailed(n int, why string) {
	p.markFailures.Add(int64(n))
	l := p.Logger
	if l == nil {
		l = slog.Default()
	}
	l.Warn("ingest: dedupe records not written; duplicates of these events are dropped only within the stream's duplicate window", "records", n, "err", why)
}

// tracerName is the instrumentation scope of the publish span.
const tracerName = "github.com/switchyardhq/switchyard/services/ingest/internal/events"

// eventMsgs builds one EVENTS message per event: the routing headers of
// jetstream.NewMsg and the trace context of ctx, whose header values are
// computed once and shared by the messages (nats.go only reads them).
func eventMsgs(ctx context.Context, subject, ws, src string, evs []tracking.Event) []*nats.Msg {
	tc := nats.Header{}
	jetstream.InjectContext(ctx, tc)
	wsV, srcV := []string{ws}, []string{src}
	types := map[string][]string{}
	msgs := make([]*nats.Msg, len(evs))
	structs := make([]nats.Msg, len(evs))
	for i, ev := range evs {
		typ, ok := types[ev.Type]
		if !ok {
			typ = []string{ev.Type}
			types[ev.Type] = typ
		}
		id := []string{ev.MessageID}
		h := make(nats.Header, 5+len(tc))
		h[jetstream.HeaderMsgID] = id
		h[jetstream.HeaderMessageID] = id
		if ws != "" {
			h[jetstream.HeaderWorkspace] = wsV
		}
		if src != "" {
			h[jetstream.HeaderSource] = srcV
		}
		if ev.Type != "" {
			h[jetstream.HeaderEventType] = typ
		}
		for k, v := range tc {
			h[k] = v
		}
		m := &structs[i]
		m.Subject, m.Data, m.Header = subject, ev.JSON, h
		msgs[i] = m
	}
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
