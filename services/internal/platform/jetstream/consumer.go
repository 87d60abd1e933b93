package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// ConsumerOptions describes a durable pull consumer.
type ConsumerOptions struct {
	// Stream is the stream the consumer reads.
	Stream string
	// Durable is the consumer's durable name (e.g. "delivery-<id>").
	Durable string
	// FilterSubjects restricts the consumer to these subjects; empty means
	// the whole stream.
	FilterSubjects []string
	// AckWait is how long the server waits for an ack before redelivering;
	// 0 means the server default (30 s). Ignored by the server when BackOff
	// is set.
	AckWait time.Duration
	// MaxDeliver bounds deliveries per message; -1 (or 0) is unlimited.
	MaxDeliver int
	// BackOff are the redelivery delays after ack timeouts; MaxDeliver must
	// then exceed len(BackOff).
	BackOff []time.Duration
	// MaxAckPending bounds unacknowledged messages in flight; 0 means the
	// server default (1000).
	MaxAckPending int
	// StartTime, when set, makes a new consumer start at the first message
	// stored at or after it instead of the stream's first message. It must
	// stay the same across calls, since JetStream cannot change where an
	// existing consumer starts.
	StartTime time.Time
}

// EnsureConsumer creates or updates a durable pull consumer with explicit
// acks that starts from the first message of the stream, or from
// opts.StartTime.
func EnsureConsumer(ctx context.Context, js natsjs.JetStream, opts ConsumerOptions) (natsjs.Consumer, error) {
	cfg := natsjs.ConsumerConfig{
		Durable:        opts.Durable,
		AckPolicy:      natsjs.AckExplicitPolicy,
		DeliverPolicy:  natsjs.DeliverAllPolicy,
		AckWait:        opts.AckWait,
		MaxDeliver:     opts.MaxDeliver,
		BackOff:        opts.BackOff,
		MaxAckPending:  opts.MaxAckPending,
		FilterSubjects: opts.FilterSubjects,
	}
	if !opts.StartTime.IsZero() {
		start := opts.StartTime.UTC()
		cfg.DeliverPolicy, cfg.OptStartTime = natsjs.DeliverByStartTimePolicy, &start
	}
	if len(opts.FilterSubjects) == 1 {
		cfg.FilterSubjects, cfg.FilterSubject = nil, opts.FilterSubjects[0]
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, opts.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("ensure consumer %s on stream %s: %w", opts.Durable, opts.Stream, err)
	}
	return cons, nil
}

// transientRetryWait is the pause after a fetch error that may heal (a
// leader election, a reconnect) before fetching again.
const transientRetryWait = 250 * time.Millisecond

// ConsumeBatches fetches up to batchSize messages at a time, waiting at
// most maxWait for a batch to fill, and hands every non-empty batch to
// handle until ctx is done; then it returns nil.
//
// Ack invariant: handle acks, naks or terms every message itself;
// ConsumeBatches never acks. Graceful shutdown: cancelling ctx stops
// fetching at once, but a batch already handed to handle finishes: handle
// runs with a context that keeps ctx's values and is NOT cancelled with
// it, so in-flight work can complete and ack (bound that work with its own
// timeouts). Messages that arrived while ctx was being cancelled, before
// reaching handle, are nak'ed so they are redelivered without waiting for
// AckWait.
//
// It returns an error only when consuming cannot continue (connection
// closed, consumer deleted); other fetch errors are retried.
func ConsumeBatches(ctx context.Context, cons natsjs.Consumer, batchSize int, maxWait time.Duration, handle func(ctx context.Context, msgs []natsjs.Msg)) error {
	if batchSize <= 0 {
		return fmt.Errorf("consume: batch size %d must be positive", batchSize)
	}
	if maxWait <= 0 {
		return fmt.Errorf("consume: max wait %s must be positive", maxWait)
	}
	handleCtx := context.WithoutCancel(ctx)
	for {
		if ctx.Err() != nil {
			return nil
		}
		msgs, err := fetch(ctx, cons, batchSize, maxWait)
		if ctx.Err() != nil {
			for _, m := range msgs {
				_ = m.Nak()
			}
			return nil
		}
		if len(msgs) > 0 {
			handle(handleCtx, msgs)
		}
		if err != nil {
			if fatalConsumeError(err) {
				return fmt.Errorf("consume: %w", err)
			}
			t := time.NewTimer(transientRetryWait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
	}
}

// fetch runs one pull request bounded by maxWait and ctx and collects what
// it delivers.
func fetch(ctx context.Context, cons natsjs.Consumer, batchSize int, maxWait time.Duration) ([]natsjs.Msg, error) {
	fctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	batch, err := cons.Fetch(batchSize, natsjs.FetchContext(fctx))
	if err != nil {
		return nil, err
	}
	var msgs []natsjs.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	err = batch.Error()
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		// Our own maxWait elapsed: an empty or short batch, not a failure.
		err = nil
	}
	return msgs, err
}

func fatalConsumeError(err error) bool {
	return errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, natsjs.ErrConnectionClosed) ||
		errors.Is(err, natsjs.ErrConsumerDeleted) ||
		errors.Is(err, natsjs.ErrConsumerNotFound) ||
		errors.Is(err, natsjs.ErrInvalidOption)
}

// Defaults of Consume.
const (
	// DefaultBatchSize is how many messages Consume fetches at once. Keep
	// batchSize × handling time well under the consumer's AckWait.
	DefaultBatchSize = 16
	// DefaultMaxWait is how long Consume waits for a batch to fill.
	DefaultMaxWait = 2 * time.Second
	// ackTimeout bounds the double ack of one message.
	ackTimeout = 5 * time.Second
)

// RetryDelay is the redelivery delay after the numDelivered-th failed
// delivery: 1 s, 2 s, 4 s, … capped at 60 s.
func RetryDelay(numDelivered uint64) time.Duration {
	const maxDelay = 60 * time.Second
	if numDelivered <= 1 {
		return time.Second
	}
	if numDelivered > 7 { // 2^6 s already exceeds the cap
		return maxDelay
	}
	return min(time.Second<<(numDelivered-1), maxDelay)
}

// Consume handles messages one at a time, in stream order within each
// fetched batch (DefaultBatchSize, DefaultMaxWait), until ctx is done, then
// returns nil after the in-flight batch is finished (see ConsumeBatches).
//
// Each message is handled in a consumer span that continues the trace
// found in its headers. Ack invariant: when handle returns nil the message
// is acked with a double ack (the server confirms it, so it will not be
// redelivered); when handle returns an error it is nak'ed with RetryDelay
// of its delivery count, and redelivered until the consumer's MaxDeliver.
// A failed ack means redelivery after AckWait: at-least-once, never lost.
func Consume(ctx context.Context, cons natsjs.Consumer, handle func(ctx context.Context, msg natsjs.Msg) error) error {
	tracer := otel.Tracer(tracerName)
	return ConsumeBatches(ctx, cons, DefaultBatchSize, DefaultMaxWait, func(bctx context.Context, msgs []natsjs.Msg) {
		for _, msg := range msgs {
			handleOne(bctx, tracer, msg, handle)
		}
	})
}

func handleOne(ctx context.Context, tracer trace.Tracer, msg natsjs.Msg, handle func(ctx context.Context, msg natsjs.Msg) error) {
	var numDelivered uint64 = 1
	if md, err := msg.Metadata(); err == nil {
		numDelivered = md.NumDelivered
	}
	mctx, span := tracer.Start(ExtractContext(ctx, msg), "process "+subjectPrefix(msg.Subject()),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", msg.Subject()),
			attribute.String("messaging.message.id", HeadersOf(msg).MsgID),
			attribute.Int64("messaging.nats.num_delivered", int64(numDelivered)),
		), trace.WithAttributes(HeadersOf(msg).attributes()...))
	defer span.End()

	if err := handle(mctx, msg); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "handler failed")
		_ = msg.NakWithDelay(RetryDelay(numDelivered))
		return
	}
	actx, cancel := context.WithTimeout(mctx, ackTimeout)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		span.RecordError(fmt.Errorf("ack: %w", err))
	}
}
