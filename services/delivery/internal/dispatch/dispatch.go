// Package dispatch runs, per enabled destination, durable consumers on
// EVENTS (delivery-<destinationId>), REPLAY
// (delivery-<destinationId>-replay) and RETL (delivery-retl-<destinationId>)
// and sends each event or Reverse ETL record through the destination's
// plan, so one slow or failing destination never delays another. Replicas
// share a destination's work through the same durables.
//
// A message holds one event or a pack of events (see carrier). Ack
// invariant: a message is acked only when each of its events is settled:
// the destination accepted every action call, it was filtered away, its
// dead letter was stored, or (an event of a pack) its retry was stored on
// REPLAY. A single-event message to retry is nak'ed with the retry delay
// and JetStream redelivers it — also after a crash or restart, since the
// redelivery state (and the delivery count) lives in the consumer.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	reverseetlv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/reverseetl/v1"
	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations"
	_ "github.com/switchyardhq/switchyard/services/delivery/internal/destinations/all" // every destination type
	"github.com/switchyardhq/switchyard/services/delivery/internal/dlq"
	"github.com/switchyardhq/switchyard/services/delivery/internal/metrics"
	"github.com/switchyardhq/switchyard/services/delivery/internal/pipeline"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// ConsumerName is the durable consumer of a destination on EVENTS.
func ConsumerName(destinationID string) string { return "delivery-" + destinationID }

// ReplayConsumerName is the durable consumer of a destination on REPLAY.
func ReplayConsumerName(destinationID string) string { return "delivery-" + destinationID + "-replay" }

// RecordConsumerName is the durable consumer of a destination on RETL.
func RecordConsumerName(destinationID string) string { return "delivery-retl-" + destinationID }

// Options tune the dispatcher.
type Options struct {
	// SendTimeout bounds one attempt (default 10 s).
	SendTimeout time.Duration
	// Retry is the retry policy.
	Retry pipeline.RetryPolicy
	// Concurrency is how many events of one destination are in flight at
	// once (default 32; 1 keeps the stream's order per destination).
	Concurrency int
	// BatchWait is how long a batching destination waits to fill a batch
	// (default 50 ms).
	BatchWait time.Duration
	// Transport is the base HTTP transport cloned per destination (default
	// http.DefaultTransport).
	Transport *http.Transport
	// AckWait is the consumers' AckWait (default two attempts plus a batch
	// wait plus 30 s); unsettled messages are marked in progress every
	// AckWait/4.
	AckWait time.Duration
}

// Dispatcher reconciles running workers with the configuration.
type Dispatcher struct {
	js      natsjs.JetStream
	logger  *slog.Logger
	opts    Options
	metrics *metrics.Registry
	dlq     *dlq.Store
	tracer  trace.Tracer

	mu      sync.Mutex
	workers map[string]*worker
	wg      sync.WaitGroup
}

type worker struct {
	spec   pipeline.Spec
	err    error // why it does not run, if so
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a dispatcher.
func New(js natsjs.JetStream, reg *metrics.Registry, logger *slog.Logger, opts Options) *Dispatcher {
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = 10 * time.Second
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 32
	}
	if opts.BatchWait <= 0 {
		opts.BatchWait = 50 * time.Millisecond
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport.(*http.Transport)
	}
	opts.Retry = opts.Retry.WithDefaults()
	return &Dispatcher{
		js: js, logger: logger, opts: opts, metrics: reg, dlq: &dlq.Store{JS: js},
		tracer:  otel.Tracer("github.com/switchyardhq/switchyard/services/delivery/internal/dispatch"),
		workers: map[string]*worker{},
	}
}

// Reconcile starts workers for new or changed destinations in want (the
// enabled ones), stops the others, and deletes the consumers of
// destinations that no longer exist (ids not in exists).
func (d *Dispatcher) Reconcile(ctx context.Context, want []pipeline.Spec, exists map[string]bool) {
	byID := map[string]pipeline.Spec{}
	for _, s := range want {
		byID[s.ID] = s
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, w := range d.workers {
		if ns, ok := byID[id]; ok && specEqual(ns, w.spec) {
			continue
		}
		w.cancel()
		<-w.done
		delete(d.workers, id)
		if !exists[id] {
			for _, c := range []struct{ stream, name string }{{streams.Events, ConsumerName(id)}, {streams.Replay, ReplayConsumerName(id)}, {streams.RETL, RecordConsumerName(id)}} {
				if err := d.js.DeleteConsumer(ctx, c.stream, c.name); err != nil && !errors.Is(err, natsjs.ErrConsumerNotFound) && !errors.Is(err, natsjs.ErrStreamNotFound) {
					d.logger.Warn("delete consumer of removed destination", "destination", id, "err", err)
				}
			}
		}
	}
	for id, spec := range byID {
		if _, running := d.workers[id]; running {
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		w := &worker{spec: spec, cancel: cancel, done: make(chan struct{})}
		d.workers[id] = w
		plan, err := pipeline.Compile(spec)
		if err != nil {
			// A destination Delivery cannot serve yet stays visible in its
			// status; its events wait in the stream.
			w.err = err
			d.logger.Warn("destination not started", "destination", id, "type", spec.Type, "err", err)
			close(w.done)
			continue
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer close(w.done)
			d.run(wctx, plan)
		}()
	}
}

// Wait blocks until every worker stopped (after ctx cancellation).
func (d *Dispatcher) Wait() { d.wg.Wait() }

// Metrics is the dispatcher's metrics registry.
func (d *Dispatcher) Metrics() *metrics.Registry { return d.metrics }

// State reports whether a destination's worker runs, and why not.
func (d *Dispatcher) State(id string) (running bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w, ok := d.workers[id]
	if !ok {
		return false, nil
	}
	return w.err == nil, w.err
}

// run serves one destination until ctx is done.
func (d *Dispatcher) run(ctx context.Context, plan *pipeline.Plan) {
	logger := d.logger.With("destination", plan.Spec.ID, "type", plan.Spec.Type)
	tr := d.opts.Transport.Clone() // own pool: a hanging destination holds only its own connections
	tr.MaxIdleConnsPerHost = max(d.opts.Concurrency, 2)
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	client := destinations.NewHTTPClient(otelhttp.NewTransport(tr), d.opts.SendTimeout)
	inst, err := plan.Type.New(destinations.Config{DestinationID: plan.Spec.ID, Settings: plan.Settings, HTTP: client})
	if err != nil {
		logger.Warn("destination settings invalid; not started", "err", err)
		d.mu.Lock()
		if w := d.workers[plan.Spec.ID]; w != nil {
			w.err = err
		}
		d.mu.Unlock()
		return
	}
	defer inst.Close()
	s := &session{d: d, plan: plan, inst: inst, logger: logger}
	s.start(ctx)

	var wg sync.WaitGroup
	for _, c := range []jetstream.ConsumerOptions{
		{
			Stream: streams.Events, Durable: ConsumerName(plan.Spec.ID),
			FilterSubjects: []string{streams.EventsSubject(plan.Spec.WorkspaceID, plan.Spec.SourceID)},
			// A destination receives the events accepted after it was created.
			StartTime: plan.Spec.CreatedAt,
		},
		{
			Stream: streams.Replay, Durable: ReplayConsumerName(plan.Spec.ID),
			FilterSubjects: []string{streams.ReplaySubject(plan.Spec.WorkspaceID, plan.Spec.ID)},
		},
		{
			// Reverse ETL records for this destination, from the first one
			// stored (a record published before the consumer existed is
			// still sent).
			Stream: streams.RETL, Durable: RecordConsumerName(plan.Spec.ID),
			FilterSubjects: []string{streams.RETLRecordFilter(plan.Spec.WorkspaceID, plan.Spec.ID)},
		},
	} {
		c.AckWait = d.ackWait()
		c.MaxDeliver = -1
		c.MaxAckPending = max(1000, 4*d.opts.Concurrency*inst.BatchSize())
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.consume(ctx, c)
		}()
	}
	wg.Wait()
	s.stop()
}

// consume feeds one durable consumer's messages to the session, re-creating
// the consumer after errors, until ctx is done.
func (s *session) consume(ctx context.Context, c jetstream.ConsumerOptions) {
	for ctx.Err() == nil {
		cons, err := jetstream.EnsureConsumer(ctx, s.d.js, c)
		if err == nil {
			err = s.pull(ctx, cons)
		}
		if ctx.Err() != nil {
			return
		}
		s.logger.Warn("delivery consumer stopped; restarting", "consumer", c.Durable, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// session is one running destination.
type session struct {
	d      *Dispatcher
	plan   *pipeline.Plan
	inst   destinations.Instance
	logger *slog.Logger

	in      chan *tracked
	batches chan batchItem
	// batcherDone is closed when the batcher returned.
	batcherDone chan struct{}
	wg          sync.WaitGroup
	sem         chan struct{}
	// gate orders the events of each userId; nil unless the destination
	// has orderByUserId.
	gate *gate
	// opened are the messages with unsettled events, which the heartbeat
	// marks in progress; hbStop stops it and hbDone is closed after.
	openMu sync.Mutex
	opened map[*carrier]struct{}
	hbStop chan struct{}
	hbDone chan struct{}
}

type batchItem struct {
	send pipeline.Send
	t    *tracked
}

// tracked is one event (or Reverse ETL record) waiting for all its action
// calls.
type tracked struct {
	// c is the message holding it and index its position there (0 for a
	// single-event message).
	c          *carrier
	index      int
	ctx        context.Context // c.parent with this attempt's span
	span       trace.Span
	received   time.Time
	attempt    uint64
	messageID  string
	raw        []byte
	mu         sync.Mutex
	remaining  int
	failure    *destinations.Failure
	workspace  string
	source     string
	eventType  string
	dedupeBase string // "<stream>:<seq>", plus ":<index>" in a pack
	replay     bool
	// invalid is why the message could not be split into events (a
	// malformed pack, dead-lettered whole).
	invalid error
	// dups are the messages of redelivered copies of t that the gate
	// dropped while t was held: t's outcome settles them. settled is that
	// outcome once t is settled. Both guarded by mu.
	dups    []*carrier
	settled *settlement
	// key is the ordering key (the userId) when the destination orders
	// its events; "" means unordered.
	key string
	// isRecord marks a Reverse ETL record (from RETL, or redriven); record
	// is its decoded form and resultID the Nats-Msg-Id of its result.
	isRecord bool
	record   *reverseetlv1.Record
	resultID string
}

func (s *session) start(ctx context.Context) {
	n := s.d.opts.Concurrency
	s.in = make(chan *tracked, n)
	s.sem = make(chan struct{}, n)
	s.opened = map[*carrier]struct{}{}
	s.hbStop, s.hbDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.hbDone)
		s.heartbeat(s.heartbeatEvery(), s.hbStop)
	}()
	for range n {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for t := range s.in {
				if ctx.Err() != nil {
					s.abandon(t) // not started: redeliver at once
					continue
				}
				s.drive(t)
			}
		}()
	}
	if s.plan.Settings.Bool(destinations.SettingOrderByUserID) {
		// Ordered delivery sends one event per request: a batch could
		// only hold one event per user anyway.
		s.gate = newGate(s)
		return
	}
	if s.inst.BatchSize() > 1 {
		s.batches = make(chan batchItem, n*s.inst.BatchSize())
		s.batcherDone = make(chan struct{})
		go func() {
			defer close(s.batcherDone)
			s.batcher()
		}()
	}
}

// stop waits for in-flight events after the consumers stopped: the
// handlers finish (events not yet started are given back), held ordered
// events are given back with their remaining delay, then the batcher
// flushes what is left and waits for its requests. A message is nak'ed
// once none of its events is in flight, so a pack with some events
// delivered and others not started is redelivered whole: the delivered
// ones are sent again (at-least-once; receivers dedupe by the idempotency
// key).
func (s *session) stop() {
	defer func() {
		close(s.hbStop)
		<-s.hbDone
	}()
	if s.gate != nil {
		s.gate.close()
	}
	close(s.in)
	s.wg.Wait()
	if s.gate != nil {
		s.gate.timers.Wait()
	}
	if s.batches != nil {
		close(s.batches)
		<-s.batcherDone
	}
}

// abandon gives back an event that was not started (shutdown), and the
// events of its user waiting behind it, in order.
func (s *session) abandon(t *tracked) {
	if t.key != "" {
		s.gate.abandon(t)
		return
	}
	s.settleEvent(t, true, 0)
}

// drive processes t and then, for ordered destinations, the next events
// of the same user that t's completion released.
func (s *session) drive(t *tracked) {
	for t != nil {
		t = s.process(t)
	}
}

// process makes one attempt at t. It returns the next event of t's user
// when t is finished and the destination orders its events.
func (s *session) process(t *tracked) *tracked {
	t.remaining, t.failure = 0, nil
	t.ctx, t.span = s.d.tracer.Start(t.c.parent, "deliver "+s.plan.Spec.Type,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("switchyard.destination.id", s.plan.Spec.ID),
			attribute.String("messaging.message.id", t.messageID),
			attribute.Int64("messaging.nats.num_delivered", int64(t.attempt)),
		))
	if t.c.pack {
		t.span.SetAttributes(attribute.Int("switchyard.pack.index", t.index))
	}
	var sends []pipeline.Send
	if t.invalid != nil {
		return s.finish(t, &destinations.Failure{Reason: destinations.ReasonInvalid, Err: t.invalid})
	}
	if t.isRecord {
		rec, snd, err := s.plan.PrepareRecord(t.raw, t.messageID)
		t.record = rec
		if err != nil {
			return s.finish(t, &destinations.Failure{Reason: destinations.ReasonInvalid, Err: err})
		}
		sends = []pipeline.Send{snd}
	} else {
		out, err := s.plan.Prepare(t.raw, t.messageID, t.replay)
		if err != nil {
			return s.finish(t, &destinations.Failure{Reason: destinations.ReasonInvalid, Err: err})
		}
		if out.Skipped {
			s.d.metrics.Filtered(s.plan.Spec.ID)
			t.span.SetAttributes(attribute.String("switchyard.skipped", out.SkipReason))
			s.ack(t)
			t.span.End()
			return s.release(t)
		}
		sends = out.Sends
	}
	t.remaining = len(sends)
	if s.batches != nil {
		for _, snd := range sends {
			s.batches <- batchItem{send: snd, t: t}
		}
		return nil
	}
	var next *tracked
	for _, snd := range sends {
		err := s.call(t.ctx, snd.Action, []destinations.Payload{snd.Payload})
		if n := s.done(t, err); n != nil {
			next = n
		}
	}
	return next
}

func (s *session) call(ctx context.Context, action string, ps []destinations.Payload) error {
	ctx, cancel := context.WithTimeout(ctx, s.d.opts.SendTimeout)
	defer cancel()
	return s.inst.Send(ctx, action, ps)
}

// done records one action call's result; the last one finishes the
// message (and returns what finish returns).
func (s *session) done(t *tracked, err error) *tracked {
	t.mu.Lock()
	if err != nil && t.failure == nil {
		t.failure = destinations.AsFailure(err)
	}
	t.remaining--
	last := t.remaining == 0
	f := t.failure
	t.mu.Unlock()
	if last {
		return s.finish(t, f)
	}
	return nil
}

// release ends t's turn in its user's queue and returns the user's next
// event, if any (ordered destinations only).
func (s *session) release(t *tracked) *tracked {
	if t.key == "" {
		return nil
	}
	return s.gate.release(t)
}

// retryLater schedules t's next attempt after delay: an ordered event is
// held in memory (its user's later events wait behind it, other users'
// flow), an event of a pack is handed off to REPLAY with its retry state,
// a single-event message is nak'ed with the delay so JetStream keeps the
// retry state.
func (s *session) retryLater(t *tracked, delay time.Duration) {
	switch {
	case t.key != "":
		s.gate.wait(t, delay)
	case t.c.pack:
		s.handOff(t, delay)
	default:
		s.settleEvent(t, true, delay)
	}
}

// finish acks, retries or dead-letters the message; a Reverse ETL
// record's result is published before its ack. It returns the next event
// of the same user for ordered destinations.
func (s *session) finish(t *tracked, f *destinations.Failure) *tracked {
	defer t.span.End()
	id := s.plan.Spec.ID
	if f == nil {
		if err := s.publishResult(t, nil); err != nil {
			s.logger.WarnContext(t.ctx, "publish record result; will resend", "record", t.messageID, "err", err)
			s.retryLater(t, s.d.opts.Retry.Delay(1, 0))
			return nil
		}
		s.ack(t)
		s.d.metrics.Delivered(id, time.Since(t.received))
		return s.release(t)
	}
	t.span.RecordError(f)
	now := time.Now()
	sample := metrics.Sample{Time: now, MessageID: t.messageID, Reason: f.Reason, Status: f.Status, Attempt: t.attempt,
		Event: string(t.raw), Request: f.Request, Response: f.Response}
	if sample.Response == "" && f.Err != nil {
		sample.Response = f.Err.Error()
	}
	reason := f.Reason
	if f.Retryable {
		delay := s.d.opts.Retry.Delay(t.attempt, f.RetryAfter)
		if !s.d.opts.Retry.GiveUp(t.received, now, delay) {
			s.d.metrics.Retried(id)
			s.d.metrics.AddSample(id, sample)
			s.retryLater(t, delay)
			return nil
		}
		reason = destinations.ReasonExhausted
	}
	sample.Final = true
	s.d.metrics.AddSample(id, sample)
	letter := dlq.Letter{
		DestinationID: id, WorkspaceID: s.plan.Spec.WorkspaceID, SourceID: t.source, MessageID: t.messageID,
		EventType: t.eventType, Reason: reason, Status: f.Status, Attempts: t.attempt, Error: f.Error(),
		Request: f.Request, Response: f.Response, ReceivedAt: t.received.UTC(), FailedAt: now.UTC(), Event: t.raw,
	}
	if !jsonObject(t.raw) {
		letter.Event = nil
		letter.Error += " (body: " + quoteBody(t.raw) + ")"
	}
	pctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
	defer cancel()
	if err := s.d.dlq.Put(pctx, letter, id+":"+t.dedupeBase+":"+strconv.FormatUint(t.attempt, 10)); err != nil {
		// Never lose it: try again later.
		s.logger.WarnContext(t.ctx, "store dead letter; will retry", "messageId", t.messageID, "err", err)
		s.retryLater(t, s.d.opts.Retry.Delay(1, 0))
		return nil
	}
	s.d.metrics.NotDelivered(id, reason)
	if err := s.publishResult(t, f); err != nil {
		s.logger.WarnContext(t.ctx, "publish record result; will resend", "record", t.messageID, "err", err)
		s.retryLater(t, s.d.opts.Retry.Delay(1, 0))
		return nil
	}
	s.ack(t)
	return s.release(t)
}

func jsonObject(b []byte) bool {
	_, err := pipeline.Decode(b)
	return err == nil
}

// maxLetterBody bounds the body a dead letter quotes in its error: quoting
// and JSON escaping can grow it several times, and a letter must fit in
// one NATS message. Any single event (32 KB at most) is kept whole; a
// larger malformed pack keeps its first 64 KiB (it stays in EVENTS).
const maxLetterBody = 64 << 10

func quoteBody(b []byte) string {
	if len(b) <= maxLetterBody {
		return strconv.Quote(string(b))
	}
	return fmt.Sprintf("first %d of %d bytes: %s", maxLetterBody, len(b), strconv.Quote(string(b[:maxLetterBody])))
}

// ack settles t as done.
func (s *session) ack(t *tracked) { s.settleEvent(t, false, 0) }

// batcher groups payloads per action up to the batch size or BatchWait and
// sends each batch in its own goroutine (at most Concurrency at once).
func (s *session) batcher() {
	size := s.inst.BatchSize()
	pending := map[string][]batchItem{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	flush := func(action string) {
		items := pending[action]
		delete(pending, action)
		if len(items) == 0 {
			return
		}
		s.sem <- struct{}{}
		go func() {
			defer func() { <-s.sem }()
			ps := make([]destinations.Payload, len(items))
			for i, it := range items {
				ps[i] = it.send.Payload
			}
			err := s.call(items[0].t.ctx, action, ps)
			for _, it := range items {
				s.done(it.t, err) // batching destinations are never ordered: no next event
			}
		}()
	}
	flushAll := func() {
		for a := range pending {
			flush(a)
		}
		armed = false
	}
	for {
		select {
		case it, ok := <-s.batches:
			if !ok {
				flushAll()
				for range cap(s.sem) {
					s.sem <- struct{}{} // wait for in-flight batches
				}
				return
			}
			a := it.send.Action
			pending[a] = append(pending[a], it)
			if len(pending[a]) >= size {
				flush(a)
			} else if !armed {
				timer.Reset(s.d.opts.BatchWait)
				armed = true
			}
		case <-timer.C:
			flushAll()
		}
	}
}

// specEqual reports whether two specs configure a worker identically.
func specEqual(a, b pipeline.Spec) bool { return reflect.DeepEqual(a, b) }
