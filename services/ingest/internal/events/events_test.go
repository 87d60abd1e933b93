package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/switchyardhq/switchyard/services/ingest/internal/tracking"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func trackEvents(prefix string, n int) []tracking.Event {
	evs := make([]tracking.Event, n)
	for i := range evs {
		id := fmt.Sprintf("%s-%d", prefix, i)
		evs[i] = tracking.Event{Type: "track", MessageID: id, JSON: []byte(`{"type":"track","userId":"u","event":"E","messageId":"` + id + `"}`)}
	}
	return evs
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPublishStoresEveryEventWithItsHeaders(t *testing.T) {
	_, conn := testenv.NATS(t)
	if err := streams.Ensure(t.Context(), conn.JS, streams.DefaultOptions); err != nil {
		t.Fatal(err)
	}
	dd, err := NewDedupe(t.Context(), conn.JS, DedupeOptions{FilterBits: 1 << 16}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	dd.Filter().SetWarm(true)
	p := &Publisher{JS: conn.JS, Dedupe: dd, Logger: quietLogger()}
	evs := trackEvents("h", 250)
	if err := p.Publish(t.Context(), "ws-1", "src-1", evs); err != nil {
		t.Fatal(err)
	}
	stream, err := conn.JS.Stream(t.Context(), streams.Events)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("one message per event, in order, with the routing headers", func(t *testing.T) {
		info, err := stream.Info(t.Context())
		if err != nil || info.State.Msgs != 250 {
			t.Fatalf("stream holds %d messages (%v), want 250", info.State.Msgs, err)
		}
		for seq := uint64(1); seq <= 250; seq++ {
			m, err := stream.GetMsg(t.Context(), seq)
			if err != nil {
				t.Fatal(err)
			}
			want := evs[seq-1]
			h := m.Header
			if m.Subject != streams.EventsSubject("ws-1", "src-1") || string(m.Data) != string(want.JSON) ||
				h.Get(jetstream.HeaderMsgID) != want.MessageID || h.Get(jetstream.HeaderMessageID) != want.MessageID ||
				h.Get(jetstream.HeaderWorkspace) != "ws-1" || h.Get(jetstream.HeaderSource) != "src-1" || h.Get(jetstream.HeaderEventType) != "track" {
				t.Fatalf("message %d: subject %s headers %v data %s", seq, m.Subject, h, m.Data)
			}
		}
	})
	t.Run("the dedupe records land after the answer, and a repeat is then dropped", func(t *testing.T) {
		kv, err := conn.JS.KeyValue(t.Context(), DedupeBucket)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the 250 dedupe records", func() bool {
			_, err := kv.Get(t.Context(), Key("ws-1", "h-249"))
			return err == nil
		})
		if err := p.Publish(t.Context(), "ws-1", "src-1", trackEvents("h", 3)); err != nil {
			t.Fatal(err)
		}
		if p.Duplicates() != 3 || p.MarkFailures() != 0 {
			t.Errorf("Duplicates %d MarkFailures %d, want 3 and 0", p.Duplicates(), p.MarkFailures())
		}
	})
	t.Run("a dedupe record JetStream refuses is counted, the events are stored", func(t *testing.T) {
		if err := conn.JS.DeleteKeyValue(t.Context(), DedupeBucket); err != nil {
			t.Fatal(err)
		}
		if err := p.Publish(t.Context(), "ws-1", "src-1", trackEvents("nokv", 2)); err != nil {
			t.Fatalf("events must be stored without the dedupe bucket: %v", err)
		}
		waitFor(t, "2 mark failures", func() bool { return p.MarkFailures() == 2 })
	})
}

func TestPublishFailuresAnswerUnavailable(t *testing.T) {
	_, conn := testenv.NATS(t)
	t.Run("no stream for the subject: refused", func(t *testing.T) {
		p := &Publisher{JS: conn.JS, Timeout: 2 * time.Second}
		err := p.Publish(t.Context(), "ws", "src", trackEvents("nostream", 3))
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err %v, want ErrUnavailable", err)
		}
	})
	t.Run("a stream that discards new messages when full: refused, window given back", func(t *testing.T) {
		cfg := streams.EventsConfig(streams.DefaultOptions)
		cfg.Replicas, cfg.MaxMsgs, cfg.Discard = 1, 5, natsjs.DiscardNew
		if _, err := jetstream.EnsureStream(t.Context(), conn.JS, cfg); err != nil {
			t.Fatal(err)
		}
		p := &Publisher{JS: conn.JS, Timeout: 2 * time.Second}
		err := p.Publish(t.Context(), "ws", "src", trackEvents("full", 8))
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err %v, want ErrUnavailable", err)
		}
		// Every slot of the window is free again: a full window's worth
		// can be taken at once.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := p.acks.window.Acquire(ctx, ackWindow); err != nil {
			t.Fatalf("window not given back: %v", err)
		}
		p.acks.window.Release(ackWindow)
	})
	t.Run("a cancelled request answers unavailable", func(t *testing.T) {
		p := &Publisher{JS: conn.JS}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := p.Publish(ctx, "ws", "src", trackEvents("cancel", 4)); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err %v, want ErrUnavailable", err)
		}
	})
}
