// Package dlq stores dead letters in the DLQ stream
// (dlq.<workspaceId>.<destinationId>) and re-sends events to one
// destination through the REPLAY stream: redrive of dead letters and
// replay of the EVENTS archive. Every message it writes to REPLAY or DLQ
// holds one event, also when the event came from a pack.
package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
)

// Headers of dead letters and re-sent events.
const (
	// HeaderDestination names the destination.
	HeaderDestination = "Switchyard-Destination"
	// HeaderReason is the dead letter's reason.
	HeaderReason = "Switchyard-Dlq-Reason"
	// HeaderStatus is the last HTTP status ("0" without an answer).
	HeaderStatus = "Switchyard-Dlq-Status"
	// HeaderResent marks an event on REPLAY: "redrive" or "replay".
	HeaderResent = "Switchyard-Resent"
	// HeaderReceivedAt is when the event first reached EVENTS (RFC 3339),
	// kept across retries so the retry window and the latency count from
	// the first receipt.
	HeaderReceivedAt = "Switchyard-Received-At"
	// HeaderAttempt is set on an event of a pack handed off to REPLAY for
	// its retry: the number of attempts already made (decimal).
	HeaderAttempt = "Switchyard-Attempt"
	// HeaderNotBefore goes with HeaderAttempt: the earliest time of the
	// next attempt (RFC 3339).
	HeaderNotBefore = "Switchyard-Not-Before"
)

// Letter is one dead letter.
type Letter struct {
	// Seq is its sequence in the DLQ stream (its id).
	Seq uint64 `json:"-"`
	// DestinationID is the destination that gave up.
	DestinationID string `json:"destinationId"`
	// WorkspaceID and SourceID route it.
	WorkspaceID string `json:"workspaceId"`
	SourceID    string `json:"sourceId"`
	// MessageID is the event's messageId.
	MessageID string `json:"messageId"`
	// EventType is the event's type.
	EventType string `json:"eventType"`
	// Reason is why it was given up (rejected, retries_exhausted, …).
	Reason string `json:"reason"`
	// Status is the last HTTP status, or 0.
	Status int `json:"status"`
	// Attempts is how many attempts were made.
	Attempts uint64 `json:"attempts"`
	// Error is the last error text.
	Error string `json:"error"`
	// Request and Response are the last request and answer.
	Request  string `json:"request"`
	Response string `json:"response"`
	// ReceivedAt is when the event reached Switchyard; FailedAt when it
	// was given up.
	ReceivedAt time.Time `json:"receivedAt"`
	FailedAt   time.Time `json:"failedAt"`
	// Event is the event as sent to the destination's filters.
	Event json.RawMessage `json:"event"`
}

// Store reads and writes dead letters.
type Store struct {
	// JS is the JetStream API.
	JS natsjs.JetStream
}

// Put stores a dead letter. dedupeKey makes a repeated Put of the same
// failed delivery (e.g. after a crash before the ack) store it once.
func (s *Store) Put(ctx context.Context, l Letter, dedupeKey string) error {
	data, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	msg := jetstream.NewMsg(ctx, streams.DLQSubject(l.WorkspaceID, l.DestinationID), data, jetstream.Headers{
		MsgID: l.MessageID, Workspace: l.WorkspaceID, Source: l.SourceID, EventType: l.EventType,
	})
	msg.Header.Set(jetstream.HeaderMsgID, "dlq:"+dedupeKey)
	msg.Header.Set(HeaderDestination, l.DestinationID)
	msg.Header.Set(HeaderReason, l.Reason)
	msg.Header.Set(HeaderStatus, strconv.Itoa(l.Status))
	if _, err := s.JS.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish dead letter: %w", err)
	}
	return nil
}

// Filter selects dead letters; empty fields match everything.
type Filter struct {
	// Reason matches the reason.
	Reason string
	// EventType matches the event type.
	EventType string
	// MessageIDs match any of these messageIds.
	MessageIDs []string
	// Status matches the last status.
	Status int
}

func (f Filter) match(l *Letter) bool {
	if f.Reason != "" && l.Reason != f.Reason {
		return false
	}
	if f.EventType != "" && l.EventType != f.EventType {
		return false
	}
	if f.Status != 0 && l.Status != f.Status {
		return false
	}
	if len(f.MessageIDs) > 0 {
		for _, id := range f.MessageIDs {
			if id == l.MessageID {
				return true
			}
		}
		return false
	}
	return true
}

// scan calls fn for every dead letter of the destination from sequence
// from on, until fn returns false.
func (s *Store) scan(ctx context.Context, workspaceID, destinationID string, from uint64, fn func(*Letter) bool) error {
	cfg := natsjs.OrderedConsumerConfig{FilterSubjects: []string{streams.DLQSubject(workspaceID, destinationID)}}
	if from > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = natsjs.DeliverByStartSequencePolicy, from
	}
	cons, err := s.JS.OrderedConsumer(ctx, streams.DLQ, cfg)
	if err != nil {
		return fmt.Errorf("read dead letters: %w", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("read dead letters: %w", err)
	}
	remaining := info.NumPending
	for remaining > 0 {
		msg, err := cons.Next(natsjs.FetchMaxWait(2 * time.Second))
		if err != nil {
			if errors.Is(err, natsjs.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
				return nil
			}
			return fmt.Errorf("read dead letters: %w", err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read dead letters: %w", err)
		}
		remaining = md.NumPending
		var l Letter
		if err := json.Unmarshal(msg.Data(), &l); err != nil {
			continue // not ours
		}
		l.Seq = md.Sequence.Stream
		if !fn(&l) {
			return nil
		}
	}
	return nil
}

// List returns up to limit dead letters matching f from sequence from on,
// and the sequence to continue from (0 at the end).
func (s *Store) List(ctx context.Context, workspaceID, destinationID string, f Filter, from uint64, limit int) ([]Letter, uint64, error) {
	var out []Letter
	var next uint64
	err := s.scan(ctx, workspaceID, destinationID, from, func(l *Letter) bool {
		if !f.match(l) {
			return true
		}
		if len(out) == limit {
			next = l.Seq
			return false
		}
		out = append(out, *l)
		return true
	})
	return out, next, err
}

// ErrNotFound is a dead letter that does not exist (or belongs elsewhere).
var ErrNotFound = errors.New("dead letter not found")

// Get returns the dead letter with sequence seq of the destination.
func (s *Store) Get(ctx context.Context, workspaceID, destinationID string, seq uint64) (*Letter, error) {
	stream, err := s.JS.Stream(ctx, streams.DLQ)
	if err != nil {
		return nil, fmt.Errorf("open dead letters: %w", err)
	}
	raw, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, natsjs.ErrMsgNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get dead letter %d: %w", seq, err)
	}
	if raw.Subject != streams.DLQSubject(workspaceID, destinationID) {
		return nil, ErrNotFound
	}
	var l Letter
	if err := json.Unmarshal(raw.Data, &l); err != nil {
		return nil, fmt.Errorf("decode dead letter %d: %w", seq, err)
	}
	l.Seq = seq
	return &l, nil
}

// Redrive re-sends every dead letter of the destination matching f
// through REPLAY and removes it from the DLQ; it returns how many.
// Re-sending is idempotent per dead letter (Nats-Msg-Id "redrive:<seq>").
func (s *Store) Redrive(ctx context.Context, workspaceID, destinationID string, f Filter) (int, error) {
	var letters []Letter
	if err := s.scan(ctx, workspaceID, destinationID, 0, func(l *Letter) bool {
		if f.match(l) {
			letters = append(letters, *l)
		}
		return true
	}); err != nil {
		return 0, err
	}
	stream, err := s.JS.Stream(ctx, streams.DLQ)
	if err != nil {
		return 0, fmt.Errorf("open dead letters: %w", err)
	}
	n := 0
	for _, l := range letters {
		msg := jetstream.NewMsg(ctx, streams.ReplaySubject(workspaceID, destinationID), l.Event, jetstream.Headers{
			MsgID: l.MessageID, Workspace: workspaceID, Source: l.SourceID, EventType: l.EventType,
		})
		msg.Header.Set(jetstream.HeaderMsgID, "redrive:"+strconv.FormatUint(l.Seq, 10))
		msg.Header.Set(HeaderResent, "redrive")
		if _, err := s.JS.PublishMsg(ctx, msg); err != nil {
			return n, fmt.Errorf("redrive dead letter %d: %w", l.Seq, err)
		}
		if err := stream.DeleteMsg(ctx, l.Seq); err != nil && !errors.Is(err, natsjs.ErrMsgNotFound) {
			return n, fmt.Errorf("remove redriven dead letter %d: %w", l.Seq, err)
		}
		n++
	}
	return n, nil
}

// ReplayRequest re-sends archived events of a source to one destination.
type ReplayRequest struct {
	// ID names this replay (dedupes a repeated request).
	ID string
	// WorkspaceID, SourceID and DestinationID route it.
	WorkspaceID, SourceID, DestinationID string
	// Start and End bound the events' receipt time [Start, End).
	Start, End time.Time
	// EventTypes restricts the types (track, identify, …); empty = all.
	EventTypes []string
}

// Replay copies the events of the matching EVENTS messages to the
// destination's REPLAY subject, one message per event (a pack is split),
// and returns how many events it copied. Each copy's Nats-Msg-Id is
// "replay:<replay id>:<messageId>", so repeating a replay stores each
// event once. A malformed pack is skipped: it was dead-lettered when it
// was first consumed.
func (s *Store) Replay(ctx context.Context, r ReplayRequest) (int, error) {
	cons, err := s.JS.OrderedConsumer(ctx, streams.Events, natsjs.OrderedConsumerConfig{
		FilterSubjects: []string{streams.EventsSubject(r.WorkspaceID, r.SourceID)},
		DeliverPolicy:  natsjs.DeliverByStartTimePolicy,
		OptStartTime:   &r.Start,
	})
	if err != nil {
		return 0, fmt.Errorf("read archive: %w", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("read archive: %w", err)
	}
	types := map[string]bool{}
	for _, t := range r.EventTypes {
		types[t] = true
	}
	n := 0
	remaining := info.NumPending
	var futures []natsjs.PubAckFuture
	for remaining > 0 {
		msg, err := cons.Next(natsjs.FetchMaxWait(2 * time.Second))
		if err != nil {
			if errors.Is(err, natsjs.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
				break
			}
			return n, fmt.Errorf("read archive: %w", err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return n, fmt.Errorf("read archive: %w", err)
		}
		remaining = md.NumPending
		if !md.Timestamp.Before(r.End) {
			break
		}
		evs, err := jetstream.UnpackData(msg.Headers(), msg.Data())
		if err != nil {
			continue
		}
		h := jetstream.HeadersOf(msg)
		for _, ev := range evs {
			if len(types) > 0 && !types[ev.Type] {
				continue
			}
			h.MsgID, h.EventType = ev.MessageID, ev.Type
			out := jetstream.NewMsg(ctx, streams.ReplaySubject(r.WorkspaceID, r.DestinationID), ev.JSON, h)
			out.Header.Set(jetstream.HeaderMsgID, "replay:"+r.ID+":"+ev.MessageID)
			out.Header.Set(HeaderResent, "replay")
			f, err := s.JS.PublishMsgAsync(out)
			if err != nil {
				return n, fmt.Errorf("replay %s: %w", ev.MessageID, err)
			}
			futures = append(futures, f)
			n++
		}
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return n, fmt.Errorf("replay: %w", err)
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
	return n, nil
}
