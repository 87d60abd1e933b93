package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/switchyardhq/switchyard/services/delivery/internal/dlq"
	"github.com/switchyardhq/switchyard/services/delivery/internal/pipeline"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
)

// carrier is one consumed JetStream message and the events it holds: one
// for a single-event message (and for a Reverse ETL record), one per
// element for a pack (jetstream.UnpackData).
//
// Ack invariant: every event of a carrier is settled exactly once, either
// done (delivered, filtered or routed away, dead-lettered with its letter
// stored, or — pack events only — handed off to REPLAY for its retry with
// the publish acknowledged) or given back (to be redelivered, with a
// delay). When the last event is settled the message is double-acked if
// every event was done, else nak'ed with the longest delay asked for; so
// a message is never acked while one of its events may still be lost.
// Until then the session marks it in progress every AckWait/4 (heartbeat),
// so JetStream does not redeliver a pack whose events take long.
type carrier struct {
	msg natsjs.Msg
	// pack is true for a pack: a retry of one of its events is handed
	// off to REPLAY (the other events need not wait for it). For a
	// single-event message a retry is a nak with the delay, and JetStream
	// keeps the retry state, as before packs.
	pack bool
	// parent is the handling context (not cancelled on shutdown) carrying
	// the trace context of the message's headers; every event's span is
	// its child.
	parent context.Context
	// Routing and delivery state shared by the message's events.
	workspace, source string
	received          time.Time
	attempt           uint64 // attempt number of this delivery of the events
	numDelivered      uint64
	replay            bool   // redriven or replayed (Switchyard-Resent)
	base              string // "<stream>:<stream sequence>"

	mu     sync.Mutex
	open   int           // events not yet settled
	back   bool          // an event was given back: nak instead of ack
	delay  time.Duration // the longest delay an event asked for
	closed bool          // acked or nak'ed: no more heartbeats
}

// settlement is how an event was settled: done, or given back (back) to
// be redelivered after delay.
type settlement struct {
	back  bool
	delay time.Duration
}

// pullWait bounds one pull request; the server ends it (or heartbeats)
// within that time even when no message comes.
const pullWait = 30 * time.Second

// pull feeds the consumer's messages to the session until ctx is done.
//
// It pulls only what the session can start soon: each pull asks for about
// room events' worth of messages (room: what the old per-event prefetch
// held), estimating the events per message from the previous pull, and at
// most twice the server's max payload in bytes. A message waiting in the
// client's buffer gets no heartbeat, so the buffer must drain well within
// AckWait even at a slow destination, and a buffer of 64 packs would hold
// 6,400 events.
func (s *session) pull(ctx context.Context, cons natsjs.Consumer) error {
	room := max(2*s.d.opts.Concurrency*s.inst.BatchSize(), 64)
	maxBytes := 2 << 20
	if nc := s.d.js.Conn(); nc != nil {
		maxBytes = max(maxBytes, 2*int(nc.MaxPayload()))
	}
	perMsg := float64(room) // the first pull takes one message
	fetch := func() (int, natsjs.MessageBatch, context.CancelFunc, error) {
		n := max(1, int(float64(room)/perMsg))
		fctx, cancel := context.WithTimeout(ctx, pullWait)
		batch, err := cons.Fetch(n, natsjs.FetchMaxBytes(maxBytes), natsjs.FetchContext(fctx))
		if err != nil {
			cancel()
			return 0, nil, nil, err
		}
		return n, batch, cancel, nil
	}
	n, batch, cancel, err := fetch()
	for err == nil {
		var (
			next       natsjs.MessageBatch
			nextN      int
			nextCancel context.CancelFunc
			nextErr    error
		)
		msgs, events := 0, 0
		for msg := range batch.Messages() {
			if ctx.Err() != nil {
				_ = msg.Nak() // not started: redeliver at once
				continue
			}
			msgs++
			if msgs == n {
				// The server has completed this pull request: ask for the
				// next one now, so messages published meanwhile do not wait
				// for this one to be handed to the workers. Its messages come
				// on their own subscription, read only after this one's:
				// stream order is kept.
				if msgs > 1 {
					perMsg = max(1, float64(events)/float64(msgs-1))
				}
				nextN, next, nextCancel, nextErr = fetch()
			}
			events += s.accept(ctx, msg)
		}
		cancel()
		if ctx.Err() != nil {
			if nextCancel != nil {
				nextCancel()
			}
			return nil
		}
		if msgs > 0 {
			perMsg = max(1, float64(events)/float64(msgs))
		}
		if berr := batch.Error(); berr != nil && !errors.Is(berr, context.DeadlineExceeded) {
			if nextCancel != nil {
				nextCancel()
			}
			return fmt.Errorf("pull: %w", berr)
		}
		if next == nil && nextErr == nil {
			nextN, next, nextCancel, nextErr = fetch()
		}
		n, batch, cancel, err = nextN, next, nextCancel, nextErr
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("pull: %w", err)
}

// accept splits msg into its events and queues them for the workers, in
// the message's order (an ordered destination queues each user's events
// in the order the stream holds them). It returns how many events it
// queued.
func (s *session) accept(ctx context.Context, msg natsjs.Msg) int {
	hdr := msg.Headers()
	c := &carrier{
		msg: msg, parent: jetstream.ExtractContext(context.WithoutCancel(ctx), msg),
		workspace: hdr.Get(jetstream.HeaderWorkspace), source: hdr.Get(jetstream.HeaderSource),
		attempt: 1, numDelivered: 1, received: time.Now(), replay: hdr.Get(dlq.HeaderResent) != "",
	}
	md, mdErr := msg.Metadata()
	if mdErr == nil {
		c.attempt, c.numDelivered, c.received = md.NumDelivered, md.NumDelivered, md.Timestamp
		c.base = md.Stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10)
	}
	if ra := hdr.Get(dlq.HeaderReceivedAt); ra != "" {
		if ts, err := time.Parse(time.RFC3339Nano, ra); err == nil {
			c.received = ts
		}
	}
	if prior := hdr.Get(dlq.HeaderAttempt); prior != "" && mdErr == nil {
		// An event of a pack handed off for its retry. Its first delivery
		// only waits until the retry is due, so the attempts made on this
		// message are its deliveries after the first, and the attempt
		// count stays exact whether the wait was needed or not.
		if c.numDelivered <= 1 {
			wait := time.Duration(0)
			if nb, err := time.Parse(time.RFC3339Nano, hdr.Get(dlq.HeaderNotBefore)); err == nil {
				wait = time.Until(nb)
			}
			if wait > 0 {
				_ = msg.NakWithDelay(wait)
			} else {
				_ = msg.Nak()
			}
			return 0
		}
		if n, err := strconv.ParseUint(prior, 10, 64); err == nil {
			c.attempt = n + c.numDelivered - 1
		}
	}
	evs, err := jetstream.UnpackData(hdr, msg.Data())
	if err != nil {
		// A malformed pack: dead-lettered whole, once, then acked.
		c.open = 1
		s.watch(c)
		t := &tracked{c: c, raw: msg.Data(), messageID: hdr.Get(jetstream.HeaderMsgID), workspace: c.workspace,
			source: c.source, attempt: c.attempt, received: c.received, invalid: err, dedupeBase: c.base + ":pack"}
		s.enqueue(ctx, t, 0)
		return 1
	}
	if len(evs) == 0 {
		c.closed = true
		s.ackMsg(c)
		return 0
	}
	c.pack = jetstream.IsPack(hdr)
	c.open = len(evs)
	s.watch(c)
	for i, ev := range evs {
		t := s.track(c, ev)
		if t.key != "" && !s.gate.acquire(t) {
			continue // waits behind an earlier event of the same user
		}
		if !s.enqueue(ctx, t, len(evs)-i-1) {
			break
		}
	}
	return len(evs)
}

// enqueue hands t to the workers. On shutdown it abandons t and gives
// back the rest events of t's message that were not tracked yet, and
// returns false.
func (s *session) enqueue(ctx context.Context, t *tracked, rest int) bool {
	select {
	case s.in <- t:
		return true
	case <-ctx.Done():
		s.abandon(t)
		for range rest {
			s.settle(t.c, true, 0)
		}
		return false
	}
}

// track makes the tracked event ev of c.
func (s *session) track(c *carrier, ev jetstream.PackedEvent) *tracked {
	t := &tracked{c: c, index: ev.Index, messageID: ev.MessageID, eventType: ev.Type, raw: ev.JSON,
		workspace: c.workspace, source: c.source, attempt: c.attempt, received: c.received, replay: c.replay, dedupeBase: c.base}
	if c.pack {
		// Events of one pack share the stream sequence: the index tells
		// them apart in dead-letter and hand-off ids.
		t.dedupeBase += ":" + strconv.Itoa(ev.Index)
	}
	t.isRecord = strings.HasPrefix(c.msg.Subject(), recordSubjectPrefix) || ev.Type == pipeline.RecordEventType
	if t.isRecord {
		t.eventType = pipeline.RecordEventType
		t.resultID = t.messageID + ":result"
		if t.replay {
			// A redriven record's result must not be taken for a
			// duplicate of the result of its dead-lettered delivery.
			t.resultID += ":" + c.msg.Headers().Get(jetstream.HeaderMsgID)
		}
	}
	if s.gate != nil {
		t.key = orderKey(t.raw, t.isRecord)
	}
	return t
}

// settleEvent settles t (see settle), and the redelivered copies of t
// that the gate dropped while t was held.
func (s *session) settleEvent(t *tracked, back bool, delay time.Duration) {
	t.mu.Lock()
	dups := t.dups
	t.dups, t.settled = nil, &settlement{back: back, delay: delay}
	t.mu.Unlock()
	s.settle(t.c, back, delay)
	for _, c := range dups {
		s.settle(c, back, delay)
	}
}

// settle settles one event of c: done, or given back (back) to be
// redelivered after delay. The last one acks or naks the message.
func (s *session) settle(c *carrier, back bool, delay time.Duration) {
	c.mu.Lock()
	c.open--
	if back {
		c.back = true
		c.delay = max(c.delay, delay)
	}
	if c.open > 0 || c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	back, delay = c.back, c.delay
	c.mu.Unlock()
	s.unwatch(c)
	switch {
	case !back:
		s.ackMsg(c)
	case delay > 0:
		_ = c.msg.NakWithDelay(delay)
	default:
		_ = c.msg.Nak()
	}
}

// ackMsg double-acks c's message.
func (s *session) ackMsg(c *carrier) {
	ctx, cancel := context.WithTimeout(c.parent, 5*time.Second)
	defer cancel()
	if err := c.msg.DoubleAck(ctx); err != nil {
		// Redelivered after AckWait: at-least-once; receivers dedupe by
		// the idempotency key.
		s.logger.DebugContext(ctx, "ack failed", "msgId", c.msg.Headers().Get(jetstream.HeaderMsgID), "err", err)
	}
}

// watch and unwatch add and remove an unsettled message of the
// heartbeat.
func (s *session) watch(c *carrier) {
	s.openMu.Lock()
	s.opened[c] = struct{}{}
	s.openMu.Unlock()
}

func (s *session) unwatch(c *carrier) {
	s.openMu.Lock()
	delete(s.opened, c)
	s.openMu.Unlock()
}

// heartbeat marks every unsettled message in progress each interval
// until stop is closed: packs whose events take long, events queued or
// held for ordered delivery. The carrier's lock orders the mark before
// the message's ack or nak (a mark after a nak would reset the nak's
// delay to AckWait).
func (s *session) heartbeat(every time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			s.openMu.Lock()
			cs := make([]*carrier, 0, len(s.opened))
			for c := range s.opened {
				cs = append(cs, c)
			}
			s.openMu.Unlock()
			for _, c := range cs {
				c.mu.Lock()
				if !c.closed {
					_ = c.msg.InProgress()
				}
				c.mu.Unlock()
			}
		}
	}
}

// handOff settles a pack's event that must be retried after delay by
// storing it as a single-event message on the destination's REPLAY
// subject, where its own durable consumer retries it, so the pack can be
// acked without waiting for it. The copy keeps the retry state:
// Switchyard-Received-At (the 4 h window counts from the first receipt),
// Switchyard-Attempt (attempts made) and Switchyard-Not-Before (when the
// next attempt is due). It is not marked as resent: a retry, unlike a
// replay, still obeys the integrations object. Its Nats-Msg-Id
// "retry:<destination>:<stream>:<seq>:<index>" stores it once even when
// the pack is redelivered and the event fails again, so one event never
// gets two retry chains (within the stream's duplicate window).
//
// If the publish fails the event is given back and the whole pack is
// nak'ed with a backoff: its events already delivered are sent again
// (at-least-once; receivers dedupe by the idempotency key).
func (s *session) handOff(t *tracked, delay time.Duration) {
	now := time.Now()
	msg := jetstream.NewMsg(t.ctx, streams.ReplaySubject(s.plan.Spec.WorkspaceID, s.plan.Spec.ID), t.raw, jetstream.Headers{
		MsgID: t.messageID, Workspace: t.workspace, Source: t.source, EventType: t.eventType,
	})
	id := t.dedupeBase
	if id == "" {
		id = t.messageID
	}
	msg.Header.Set(jetstream.HeaderMsgID, "retry:"+s.plan.Spec.ID+":"+id)
	msg.Header.Set(dlq.HeaderReceivedAt, t.received.UTC().Format(time.RFC3339Nano))
	msg.Header.Set(dlq.HeaderAttempt, strconv.FormatUint(t.attempt, 10))
	msg.Header.Set(dlq.HeaderNotBefore, now.Add(delay).UTC().Format(time.RFC3339Nano))
	ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
	defer cancel()
	if _, err := s.d.js.PublishMsg(ctx, msg); err != nil {
		s.logger.WarnContext(t.ctx, "hand off retry to REPLAY; pack will be redelivered", "messageId", t.messageID, "err", err)
		s.settleEvent(t, true, s.d.opts.Retry.Delay(t.c.numDelivered, 0))
		return
	}
	s.settleEvent(t, false, 0)
}

// ackWait is the consumers' AckWait: Options.AckWait, by default two
// attempts plus a batch wait and a margin.
func (d *Dispatcher) ackWait() time.Duration {
	if d.opts.AckWait > 0 {
		return d.opts.AckWait
	}
	return 2*d.opts.SendTimeout + d.opts.BatchWait + 30*time.Second
}

// heartbeatEvery is how often unsettled messages are marked in progress.
func (s *session) heartbeatEvery() time.Duration { return s.d.ackWait() / 4 }
