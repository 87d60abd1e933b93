package pipeline

import (
	"context"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

const scope = "github.com/switchyardhq/switchyard/services/warehouse"

// instruments are Warehouse's metrics (exported at /metrics):
//   - switchyard.warehouse.events: events committed, by warehouse and schema;
//   - switchyard.warehouse.loads: load transactions, by warehouse and status;
//   - switchyard.warehouse.load.lag: seconds from an event's arrival in
//     JetStream to the commit of its row (the oldest event of each load).
type instruments struct {
	events metric.Int64Counter
	loads  metric.Int64Counter
	lag    metric.Float64Histogram
}

func newInstruments() instruments {
	m := otel.Meter(scope)
	events, _ := m.Int64Counter("switchyard.warehouse.events", metric.WithDescription("Events committed to warehouse tables"), metric.WithUnit("{event}"))
	loads, _ := m.Int64Counter("switchyard.warehouse.loads", metric.WithDescription("Warehouse load transactions by status"), metric.WithUnit("{load}"))
	lag, _ := m.Float64Histogram("switchyard.warehouse.load.lag", metric.WithDescription("Time from an event's arrival to the commit of its row"),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600))
	return instruments{events: events, loads: loads, lag: lag}
}

// startLoadSpan starts the span of one load, linked to the trace of every
// event it carries (at most 128 links), so an event's trace leads to the
// load that stored it.
func startLoadSpan(ctx context.Context, warehouseID, schemaName string, msgs []natsjs.Msg, events int) (context.Context, trace.Span) {
	links := make([]trace.Link, 0, min(len(msgs), 128))
	for _, msg := range msgs[:min(len(msgs), 128)] {
		if sc := trace.SpanContextFromContext(jetstream.ExtractContext(context.Background(), msg)); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	return otel.Tracer(scope).Start(ctx, "warehouse load "+schemaName,
		trace.WithLinks(links...),
		trace.WithAttributes(
			attribute.String("switchyard.warehouse.id", warehouseID),
			attribute.String("switchyard.warehouse.schema", schemaName),
			attribute.Int("switchyard.events", events),
			attribute.Int("messaging.batch.message_count", len(msgs)),
		))
}

// recordLoad records a load's outcome on its span and in the metrics.
func (in instruments) recordLoad(ctx context.Context, span trace.Span, warehouseID, schemaName string, msgs []natsjs.Msg, events int, err error) {
	wh := attribute.String("warehouse", warehouseID)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "load failed")
		in.loads.Add(ctx, 1, metric.WithAttributes(wh, attribute.String("status", "failed")))
		return
	}
	in.loads.Add(ctx, 1, metric.WithAttributes(wh, attribute.String("status", "committed")))
	in.events.Add(ctx, int64(events), metric.WithAttributes(wh, attribute.String("schema", schemaName)))
	oldest := time.Now()
	for _, msg := range msgs {
		if md, err := msg.Metadata(); err == nil && md.Timestamp.Before(oldest) {
			oldest = md.Timestamp
		}
	}
	in.lag.Record(ctx, time.Since(oldest).Seconds(), metric.WithAttributes(wh))
}
