package streams

import (
	"context"
	"fmt"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Replay is the stream of events re-sent to one destination: dead letters
// being redriven and EVENTS being replayed. Delivery reads it with a second
// durable consumer per destination.
const Replay = "REPLAY"

// DLQSubject is the subject of a destination's dead letters.
func DLQSubject(workspaceID, destinationID string) string {
	return "dlq." + workspaceID + "." + destinationID
}

// ReplaySubject is the subject of events re-sent to one destination.
func ReplaySubject(workspaceID, destinationID string) string {
	return "replay." + workspaceID + "." + destinationID
}

// DLQMaxAge is how long dead letters are kept.
const DLQMaxAge = 14 * 24 * time.Hour

// DLQConfig is the DLQ stream configuration: deliveries that were rejected
// or exhausted their retries, the original event as data and the reason in
// headers.
func DLQConfig(o Options) natsjs.StreamConfig {
	return natsjs.StreamConfig{
		Name:        DLQ,
		Description: "Dead letters of destinations: the event, with reason and last response in headers",
		Subjects:    []string{"dlq.>"},
		Storage:     natsjs.FileStorage,
		Retention:   natsjs.LimitsPolicy,
		MaxAge:      DLQMaxAge,
		Duplicates:  o.DuplicateWindow,
		Replicas:    max(o.Replicas, 1),
		Discard:     natsjs.DiscardOld,
	}
}

// ReplayConfig is the REPLAY stream configuration.
func ReplayConfig(o Options) natsjs.StreamConfig {
	return natsjs.StreamConfig{
		Name:        Replay,
		Description: "Events re-sent to one destination (redrive, replay)",
		Subjects:    []string{"replay.>"},
		Storage:     natsjs.FileStorage,
		Retention:   natsjs.LimitsPolicy,
		MaxAge:      o.EventsMaxAge,
		Duplicates:  o.DuplicateWindow,
		Replicas:    max(o.Replicas, 1),
		Discard:     natsjs.DiscardOld,
	}
}

// EnsureDelivery creates or updates the streams Delivery owns (DLQ, REPLAY).
func EnsureDelivery(ctx context.Context, js natsjs.JetStream, o Options) error {
	if o.EventsMaxAge == 0 {
		o.EventsMaxAge = DefaultOptions.EventsMaxAge
	}
	if o.DuplicateWindow == 0 {
		o.DuplicateWindow = DefaultOptions.DuplicateWindow
	}
	for _, cfg := range []natsjs.StreamConfig{DLQConfig(o), ReplayConfig(o)} {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}
