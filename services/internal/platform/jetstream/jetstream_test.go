package jetstream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyardhq/switchyard/services/internal/platform/natsembed"
)

func TestMain(m *testing.M) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	os.Exit(m.Run())
}

// startServer starts an embedded server on dir and connects to it; both
// are stopped at cleanup (stopping twice is harmless).
func startServer(t *testing.T, dir string) (*server.Server, *Conn) {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ConnectInProcess(srv, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close(context.Background())
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv, conn
}

func ensureEvents(t *testing.T, js natsjs.JetStream) {
	t.Helper()
	_, err := EnsureStream(t.Context(), js, natsjs.StreamConfig{
		Name:       "EVENTS",
		Subjects:   []string{"events.>"},
		Storage:    natsjs.FileStorage,
		Duplicates: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
}

func ensureConsumer(t *testing.T, js natsjs.JetStream, durable string) natsjs.Consumer {
	t.Helper()
	cons, err := EnsureConsumer(t.Context(), js, ConsumerOptions{
		Stream:         "EVENTS",
		Durable:        durable,
		FilterSubjects: []string{"events.>"},
		AckWait:        30 * time.Second,
		MaxDeliver:     -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cons
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		pause()
	}
}

// pause is the polling interval of eventually.
func pause() {
	t := time.NewTimer(5 * time.Millisecond)
	<-t.C
}

// consumeInBackground runs Consume until the test ends and waits for it to
// return.
func consumeInBackground(t *testing.T, cons natsjs.Consumer, handle func(ctx context.Context, msg natsjs.Msg) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Consume(ctx, cons, handle) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Consume: %v", err)
		}
	})
}

func TestPublishConsumeHeaders(t *testing.T) {
	t.Parallel()
	_, conn := startServer(t, t.TempDir())
	ensureEvents(t, conn.JS)
	cons := ensureConsumer(t, conn.JS, "delivery-d1")

	traceID, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	spanID, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	parent := trace.ContextWithSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled,
	}))
	want := Headers{MsgID: "m-1", Workspace: "ws1", Source: "src1", EventType: "track"}
	if _, err := Publish(parent, conn.JS, "events.ws1.src1", []byte(`{"event":"x"}`), want); err != nil {
		t.Fatal(err)
	}

	type seen struct {
		body    string
		headers Headers
		raw     nats.Header
		traceID trace.TraceID
	}
	got := make(chan seen, 1)
	consumeInBackground(t, cons, func(ctx context.Context, msg natsjs.Msg) error {
		got <- seen{string(msg.Data()), HeadersOf(msg), msg.Headers(), trace.SpanContextFromContext(ctx).TraceID()}
		return nil
	})
	var s seen
	select {
	case s = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no message consumed")
	}
	if s.body != `{"event":"x"}` {
		t.Errorf("body = %q", s.body)
	}
	if s.headers != want {
		t.Errorf("headers = %+v, want %+v", s.headers, want)
	}
	for _, k := range []string{"Nats-Msg-Id", "Switchyard-Workspace", "Switchyard-Source", "Switchyard-Event-Type", "Switchyard-Message-Id", TraceHeaderPrefix + "traceparent"} {
		if s.raw.Get(k) == "" {
			t.Errorf("header %s missing (%v)", k, s.raw)
		}
	}
	if s.traceID != traceID {
		t.Errorf("handler trace id = %s, want %s", s.traceID, traceID)
	}
}

func TestDuplicateMsgIDDropped(t *testing.T) {
	t.Parallel()
	_, conn := startServer(t, t.TempDir())
	ensureEvents(t, conn.JS)
	tests := []struct {
		name    string
		msgID   string
		wantDup bool
	}{
		{name: "first publish is stored", msgID: "dup-1", wantDup: false},
		{name: "same id is a duplicate", msgID: "dup-1", wantDup: true},
		{name: "new id is stored", msgID: "dup-2", wantDup: false},
	}
	for _, tt := range tests { // sequential: each case depends on the previous
		t.Run(tt.name, func(t *testing.T) {
			ack, err := Publish(t.Context(), conn.JS, "events.ws.src", []byte("x"), Headers{MsgID: tt.msgID})
			if err != nil {
				t.Fatal(err)
			}
			if ack.Duplicate != tt.wantDup {
				t.Errorf("Duplicate = %v, want %v", ack.Duplicate, tt.wantDup)
			}
		})
	}
	s, err := conn.JS.Stream(t.Context(), "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Errorf("stream holds %d messages, want 2", info.State.Msgs)
	}
}

func TestHandlerErrorRedelivers(t *testing.T) {
	t.Parallel()
	_, conn := startServer(t, t.TempDir())
	ensureEvents(t, conn.JS)
	cons := ensureConsumer(t, conn.JS, "delivery-retry")
	if _, err := Publish(t.Context(), conn.JS, "events.ws.src", []byte("x"), Headers{MsgID: "r-1"}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var deliveries []uint64
	consumeInBackground(t, cons, func(ctx context.Context, msg natsjs.Msg) error {
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		deliveries = append(deliveries, md.NumDelivered)
		if md.NumDelivered == 1 {
			return errors.New("destination unavailable")
		}
		return nil
	})
	eventually(t, 15*time.Second, "redelivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(deliveries) >= 2
	})
	mu.Lock()
	got := fmt.Sprint(deliveries)
	mu.Unlock()
	if got != "[1 2]" {
		t.Errorf("deliveries = %s, want [1 2]", got)
	}
	// The second delivery was acked: nothing stays pending.
	eventually(t, 10*time.Second, "ack", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
}

func TestConsumerSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv, conn := startServer(t, dir)
	ensureEvents(t, conn.JS)
	cons := ensureConsumer(t, conn.JS, "warehouse-w1")
	for i := range 3 {
		if _, err := Publish(t.Context(), conn.JS, "events.ws.src", fmt.Appendf(nil, "m%d", i), Headers{MsgID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Ack the first message only.
	batch, err := cons.Fetch(1, natsjs.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if err := conn.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()

	_, conn2 := startServer(t, dir)
	cons2, err := conn2.JS.Consumer(t.Context(), "EVENTS", "warehouse-w1")
	if err != nil {
		t.Fatalf("durable consumer lost after restart: %v", err)
	}
	var bodies []string
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	err = ConsumeBatches(ctx, cons2, 10, 500*time.Millisecond, func(ctx context.Context, msgs []natsjs.Msg) {
		for _, m := range msgs {
			bodies = append(bodies, string(m.Data()))
			_ = m.Ack()
		}
		if len(bodies) >= 2 {
			cancel()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(bodies) != "[m1 m2]" {
		t.Errorf("after restart got %v, want [m1 m2]", bodies)
	}
}

func TestConsumeBatchesStopsOnCancel(t *testing.T) {
	t.Parallel()
	_, conn := startServer(t, t.TempDir())
	ensureEvents(t, conn.JS)
	cons := ensureConsumer(t, conn.JS, "delivery-cancel")
	if _, err := Publish(t.Context(), conn.JS, "events.ws.src", []byte("x"), Headers{MsgID: "c-1"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	handled := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		done <- ConsumeBatches(ctx, cons, 1, time.Minute, func(hctx context.Context, msgs []natsjs.Msg) {
			// Shutdown starts while the batch is in flight: the handler's
			// context stays usable so the batch can finish and ack.
			cancel()
			for _, m := range msgs {
				if err := m.DoubleAck(hctx); err != nil {
					handled <- err
					return
				}
			}
			handled <- hctx.Err()
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ConsumeBatches = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("ConsumeBatches did not return after cancel")
	}
	if err := <-handled; err != nil {
		t.Errorf("in-flight batch could not finish: %v", err)
	}
}

func TestPublishAsyncBatch(t *testing.T) {
	t.Parallel()
	_, conn := startServer(t, t.TempDir())
	ensureEvents(t, conn.JS)
	tests := []struct {
		name       string
		subjects   []string
		wantFailed []int
	}{
		{name: "all acknowledged", subjects: []string{"events.a.b", "events.a.c", "events.a.d"}},
		{name: "per message failures reported", subjects: []string{"events.a.b", "nostream.x", "events.a.c", "nostream.y"}, wantFailed: []int{1, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msgs := make([]*nats.Msg, len(tt.subjects))
			for i, s := range tt.subjects {
				msgs[i] = NewMsg(t.Context(), s, []byte("x"), Headers{MsgID: fmt.Sprintf("%s-%d", tt.name, i)})
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			acks, err := PublishAsyncBatch(ctx, conn.JS, msgs)
			failed := map[int]bool{}
			for _, i := range tt.wantFailed {
				failed[i] = true
			}
			if len(tt.wantFailed) == 0 && err != nil {
				t.Fatal(err)
			}
			var be *BatchError
			if len(tt.wantFailed) > 0 && (!errors.As(err, &be) || be.Failed != len(tt.wantFailed)) {
				t.Fatalf("err = %v, want a BatchError with %d failures", err, len(tt.wantFailed))
			}
			for i := range msgs {
				if failed[i] {
					if acks[i] != nil || be.Errs[i] == nil {
						t.Errorf("message %d: ack %v err %v, want failure", i, acks[i], be.Errs[i])
					}
					continue
				}
				if acks[i] == nil {
					t.Errorf("message %d not acknowledged", i)
				}
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    uint64
		want time.Duration
	}{
		{0, time.Second},
		{1, time.Second},
		{2, 2 * time.Second},
		{3, 4 * time.Second},
		{6, 32 * time.Second},
		{7, 60 * time.Second},
		{100, 60 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("delivery %d", tt.n), func(t *testing.T) {
			t.Parallel()
			if got := RetryDelay(tt.n); got != tt.want {
				t.Errorf("RetryDelay(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

func TestConsumeBatchesCancelWhileWaiting(t *testing.T) {
	t.Parallel()
	_, conn := startServer(t, t.TempDir())
	ensureEvents(t, conn.JS)
	cons := ensureConsumer(t, conn.JS, "delivery-idle")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- ConsumeBatches(ctx, cons, 10, time.Minute, func(context.Context, []natsjs.Msg) {})
	}()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ConsumeBatches = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ConsumeBatches kept waiting for its fetch after cancel")
	}
}

func TestHeaderCarrierReadsBareW3CHeaders(t *testing.T) {
	t.Parallel()
	h := nats.Header{}
	h.Set("traceparent", "00-4bf92f3577b34a4ea0f0b3a1c2d3e4f5-00f067aa0ba902b7-01")
	if got := HeaderCarrier(h).Get("traceparent"); got != "00-4bf92f3577b34a4ea0f0b3a1c2d3e4f5-00f067aa0ba902b7-01" {
		t.Errorf("bare traceparent not read: %q", got)
	}
	HeaderCarrier(h).Set("traceparent", "00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01")
	if got := HeaderCarrier(h).Get("traceparent"); got != "00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01" {
		t.Errorf("prefixed header does not win: %q", got)
	}
	if _, ok := h[TraceHeaderPrefix+"traceparent"]; !ok {
		t.Errorf("Set did not write the prefixed header: %v", h)
	}
}
