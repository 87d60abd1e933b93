package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation scope of the spans this package makes.
const tracerName = "github.com/switchyardhq/switchyard/services/internal/platform/jetstream"

// NewMsg builds a message for subject with the routing headers h and the
// trace context of ctx, ready for Publish-like calls (e.g. the batch of
// PublishAsyncBatch).
func NewMsg(ctx context.Context, subject string, data []byte, h Headers) *nats.Msg {
	msg := nats.NewMsg(subject)
	msg.Data = data
	h.apply(msg.Header)
	InjectContext(ctx, msg.Header)
	return msg
}

// Publish stores one message in the stream bound to subject and returns
// JetStream's acknowledgement: once it returns without error the message
// is stored. A message whose MsgID was already stored within the stream's
// duplicate window is not stored again; its PubAck has Duplicate set. The
// publish is traced as a producer span and the span's context travels in
// the traceparent header.
func Publish(ctx context.Context, js natsjs.JetStream, subject string, data []byte, h Headers) (*natsjs.PubAck, error) {
	ctx, span := otel.Tracer(tracerName).Start(ctx, "publish "+subjectPrefix(subject),
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", subject),
			attribute.String("messaging.message.id", h.MsgID),
		), trace.WithAttributes(h.attributes()...))
	defer span.End()
	ack, err := js.PublishMsg(ctx, NewMsg(ctx, subject, data, h))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish failed")
		return nil, fmt.Errorf("publish to %s: %w", subject, err)
	}
	span.SetAttributes(attribute.Bool("messaging.nats.duplicate", ack.Duplicate))
	return ack, nil
}

// BatchError reports which messages of a PublishAsyncBatch call were not
// confirmed. Errs has one entry per message, in order: nil where the
// message was acknowledged.
type BatchError struct {
	// Errs[i] is the error of message i, nil when it was acknowledged.
	Errs []error
	// Failed counts the non-nil entries of Errs.
	Failed int
}

// Error summarizes the failures and quotes the first one.
func (e *BatchError) Error() string {
	for i, err := range e.Errs {
		if err != nil {
			return fmt.Sprintf("publish batch: %d of %d messages not acknowledged; first (#%d): %v", e.Failed, len(e.Errs), i, err)
		}
	}
	return "publish batch: no failures"
}

// Unwrap returns the per-message errors, so errors.Is and errors.As see
// them.
func (e *BatchError) Unwrap() []error {
	out := make([]error, 0, e.Failed)
	for _, err := range e.Errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// PublishAsyncBatch publishes every message with PublishMsgAsync and waits
// for all acknowledgements (or ctx). It returns one PubAck per message, in
// order.
//
// Exactly the messages with a non-nil acks[i] are stored. When any message
// is not confirmed, the error is a *BatchError whose Errs[i] says why; such
// a message may or may not be stored (a timeout or a cancelled ctx leaves
// that unknown), so retry it with the same Nats-Msg-Id, which the stream's
// duplicate window makes safe. Build messages with NewMsg to get the
// routing and trace headers.
func PublishAsyncBatch(ctx context.Context, js natsjs.JetStream, msgs []*nats.Msg) ([]*natsjs.PubAck, error) {
	acks := make([]*natsjs.PubAck, len(msgs))
	errs := make([]error, len(msgs))
	futures := make([]natsjs.PubAckFuture, len(msgs))
	for i, m := range msgs {
		if err := ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			errs[i] = fmt.Errorf("publish to %s: %w", m.Subject, err)
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			acks[i] = ack
		case err := <-f.Err():
			errs[i] = fmt.Errorf("publish to %s: %w", msgs[i].Subject, err)
		case <-ctx.Done():
			errs[i] = fmt.Errorf("publish to %s: %w", msgs[i].Subject, ctx.Err())
		}
	}
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	if failed > 0 {
		return acks, &BatchError{Errs: errs, Failed: failed}
	}
	return acks, nil
}

// IsBatchError reports whether err is (or wraps) a *BatchError and returns
// it.
func IsBatchError(err error) (*BatchError, bool) {
	var be *BatchError
	ok := errors.As(err, &be)
	return be, ok
}

// subjectPrefix keeps span names low-cardinality: "events.ws.src" → "events".
func subjectPrefix(subject string) string {
	if i := strings.IndexByte(subject, '.'); i > 0 {
		return subject[:i]
	}
	return subject
}
