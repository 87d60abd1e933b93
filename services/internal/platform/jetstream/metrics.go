package jetstream

import (
	"context"
	"errors"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// RegisterConsumerMetrics reports, at every metrics collection, each
// durable consumer of the given streams: messages not yet delivered
// (jetstream.consumer.pending), delivered but not acknowledged
// (jetstream.consumer.ack_pending) and redelivered (jetstream.consumer.
// redelivered), labelled by stream and consumer. A consumer whose pending
// count grows is a destination or warehouse falling behind.
func RegisterConsumerMetrics(meter metric.Meter, js natsjs.JetStream, streams ...string) (metric.Registration, error) {
	pending, err1 := meter.Int64ObservableGauge("jetstream.consumer.pending",
		metric.WithDescription("Messages of the stream the consumer has not received yet"), metric.WithUnit("{message}"))
	ackPending, err2 := meter.Int64ObservableGauge("jetstream.consumer.ack_pending",
		metric.WithDescription("Messages delivered to the consumer and not acknowledged yet"), metric.WithUnit("{message}"))
	redelivered, err3 := meter.Int64ObservableGauge("jetstream.consumer.redelivered",
		metric.WithDescription("Messages currently redelivered at least once"), metric.WithUnit("{message}"))
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	return meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		for _, name := range streams {
			stream, err := js.Stream(ctx, name)
			if err != nil {
				continue // not created yet
			}
			lister := stream.ListConsumers(ctx)
			for info := range lister.Info() {
				attrs := metric.WithAttributes(attribute.String("stream", name), attribute.String("consumer", info.Name))
				o.ObserveInt64(pending, int64(info.NumPending), attrs)
				o.ObserveInt64(ackPending, int64(info.NumAckPending), attrs)
				o.ObserveInt64(redelivered, int64(info.NumRedelivered), attrs)
			}
		}
		return nil
	}, pending, ackPending, redelivered)
}
