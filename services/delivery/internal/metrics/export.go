package metrics

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// exported mirrors the registry's counts into OpenTelemetry, so they reach
// /metrics and survive aggregation across replicas:
//   - switchyard.delivery.events{destination, outcome, reason}: outcome is
//     delivered, retrying (a failed attempt that will be retried),
//     filtered, or dead_lettered (with the reason);
//   - switchyard.delivery.latency{destination}: seconds from an event's
//     receipt to the destination's acceptance.
var exported = newExported()

type otelInstruments struct {
	events  metric.Int64Counter
	latency metric.Float64Histogram
}

func newExported() *otelInstruments {
	// The global meter provider delegates to the one telemetry.Setup installs
	// later, so package-level instruments are fine.
	m := otel.Meter("github.com/switchyardhq/switchyard/services/delivery")
	events, _ := m.Int64Counter("switchyard.delivery.events", metric.WithDescription("Delivery outcomes per destination"), metric.WithUnit("{event}"))
	latency, _ := m.Float64Histogram("switchyard.delivery.latency", metric.WithDescription("Time from an event's receipt to its acceptance by the destination"),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400))
	return &otelInstruments{events: events, latency: latency}
}

func (o *otelInstruments) outcome(destination, outcome, reason string) {
	attrs := []attribute.KeyValue{attribute.String("destination", destination), attribute.String("outcome", outcome)}
	if reason != "" {
		attrs = append(attrs, attribute.String("reason", reason))
	}
	o.events.Add(context.Background(), 1, metric.WithAttributes(attrs...))
}
