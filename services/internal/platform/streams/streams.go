// Package streams is the JetStream layout shared by every service: stream
// names, subjects and their configuration (DESIGN.md "JetStream layout").
package streams

import (
	"context"
	"fmt"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Stream names.
const (
	Events = "EVENTS"
	RETL   = "RETL"
	DLQ    = "DLQ"
)

// EventsSubject is the subject of an accepted event of a source.
func EventsSubject(workspaceID, sourceID string) string {
	return "events." + workspaceID + "." + sourceID
}

// Options size the streams.
type Options struct {
	// Replicas is the replication factor (1 on a single server, 3 in a cluster).
	Replicas int
	// EventsMaxAge is how long EVENTS keeps events (the replay archive).
	EventsMaxAge time.Duration
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id, so a
	// retried publish of the same messageId is stored once.
	DuplicateWindow time.Duration
}

// DefaultOptions are the single-server defaults.
var DefaultOptions = Options{Replicas: 1, EventsMaxAge: 7 * 24 * time.Hour, DuplicateWindow: 10 * time.Minute}

// EventsConfig is the EVENTS stream configuration.
func EventsConfig(o Options) natsjs.StreamConfig {
	return natsjs.StreamConfig{
		Name:        Events,
		Description: "Every accepted event, canonical Segment JSON",
		Subjects:    []string{"events.>"},
		Storage:     natsjs.FileStorage,
		Retention:   natsjs.LimitsPolicy,
		MaxAge:      o.EventsMaxAge,
		Duplicates:  o.DuplicateWindow,
		Replicas:    o.Replicas,
		Discard:     natsjs.DiscardOld,
	}
}

// Ensure creates or updates every stream.
func Ensure(ctx context.Context, js natsjs.JetStream, o Options) error {
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if _, err := js.CreateOrUpdateStream(ctx, EventsConfig(o)); err != nil {
		return fmt.Errorf("ensure stream %s: %w", Events, err)
	}
	return nil
}
