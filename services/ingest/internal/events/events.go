// Package events publishes accepted events to the EVENTS stream; it is the
// only place in Ingest that knows subjects and headers.
package events

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/switchyardhq/switchyard/services/ingest/internal/tracking"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
)

// ErrUnavailable means JetStream did not confirm every event; the caller
// answers 5xx so the client retries (the messageId makes the retry safe).
var ErrUnavailable = errors.New("event store unavailable")

// Publisher stores events of a source in EVENTS.
type Publisher struct {
	JS natsjs.JetStream
}

// Publish stores evs and returns only when JetStream acknowledged every one
// of them; otherwise it returns an error wrapping ErrUnavailable.
func (p *Publisher) Publish(ctx context.Context, workspaceID, sourceID string, evs []tracking.Event) error {
	subject := streams.EventsSubject(workspaceID, sourceID)
	if len(evs) == 1 {
		_, err := jetstream.Publish(ctx, p.JS, subject, evs[0].JSON, headers(workspaceID, sourceID, evs[0]))
		if err != nil {
			return errors.Join(ErrUnavailable, err)
		}
		return nil
	}
	msgs := make([]*nats.Msg, len(evs))
	for i, ev := range evs {
		msgs[i] = jetstream.NewMsg(ctx, subject, ev.JSON, headers(workspaceID, sourceID, ev))
	}
	if _, err := jetstream.PublishAsyncBatch(ctx, p.JS, msgs); err != nil {
		return errors.Join(ErrUnavailable, err)
	}
	return nil
}

func headers(ws, src string, ev tracking.Event) jetstream.Headers {
	return jetstream.Headers{MsgID: ev.MessageID, Workspace: ws, Source: src, EventType: ev.Type}
}
