package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
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

// eventsNATS starts an embedded NATS server with Switchyard's streams.
func eventsNATS(t *testing.T) *jetstream.Conn {
	t.Helper()
	_, conn := testenv.NATS(t)
	if err := streams.Ensure(t.Context(), conn.JS, streams.DefaultOptions); err != nil {
		t.Fatal(err)
	}
	return conn
}

// newTestDedupe opens a dedupe index, closed when t ends.
func newTestDedupe(t *testing.T, conn *jetstream.Conn, opts DedupeOptions) *Dedupe {
	t.Helper()
	dd, err := NewDedupe(t.Context(), conn.JS, opts, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dd.Close() })
	return dd
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

func TestPublishStoresARequestAsOneMessage(t *testing.T) {
	conn := eventsNATS(t)
	dd := newTestDedupe(t, conn, DedupeOptions{FilterBits: 1 << 16, Dir: t.TempDir()})
	p := &Publisher{JS: conn.JS, Dedupe: dd}
	evs := trackEvents("h", 250)
	if err := p.Publish(t.Context(), "ws-1", "src-1", evs); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(t.Context(), "ws-1", "src-1", trackEvents("single", 1)); err != nil {
		t.Fatal(err)
	}
	stream, err := conn.JS.Stream(t.Context(), streams.Events)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("a batch is one pack, in order, with the routing headers", func(t *testing.T) {
		info, err := stream.Info(t.Context())
		if err != nil || info.State.Msgs != 2 {
			t.Fatalf("stream holds %d messages (%v), want 2", info.State.Msgs, err)
		}
		m, err := stream.GetMsg(t.Context(), 1)
		if err != nil {
			t.Fatal(err)
		}
		h := m.Header
		ids := make([]string, len(evs))
		for i, ev := range evs {
			ids[i] = ev.MessageID
		}
		if m.Subject != streams.EventsSubject("ws-1", "src-1") || h.Get(jetstream.HeaderWorkspace) != "ws-1" || h.Get(jetstream.HeaderSource) != "src-1" ||
			h.Get(jetstream.HeaderMsgID) != jetstream.PackID("ws-1", ids) || !jetstream.IsPack(h) {
			t.Fatalf("pack: subject %s headers %v", m.Subject, h)
		}
		got, err := jetstream.UnpackData(h, m.Data)
		if err != nil || len(got) != 250 {
			t.Fatalf("unpack: %d events, %v", len(got), err)
		}
		for i, ev := range got {
			if ev.MessageID != evs[i].MessageID || ev.Type != "track" || string(ev.JSON) != string(evs[i].JSON) {
				t.Fatalf("event %d = %+v %s, want %+v %s", i, ev, ev.JSON, evs[i], evs[i].JSON)
			}
		}
	})
	t.Run("a single event keeps the one-event format", func(t *testing.T) {
		m, err := stream.GetMsg(t.Context(), 2)
		if err != nil {
			t.Fatal(err)
		}
		h := m.Header
		if jetstream.IsPack(h) || h.Get(jetstream.HeaderMsgID) != "ws-1/single-0" || h.Get(jetstream.HeaderMessageID) != "single-0" || h.Get(jetstream.HeaderEventType) != "track" ||
			string(m.Data) != string(trackEvents("single", 1)[0].JSON) {
			t.Fatalf("single: headers %v data %s", h, m.Data)
		}
	})
	t.Run("a repeat is dropped at once by the replica that stored it", func(t *testing.T) {
		if err := p.Publish(t.Context(), "ws-1", "src-1", trackEvents("h", 3)); err != nil {
			t.Fatal(err)
		}
		if p.Duplicates() != 3 {
			t.Errorf("Duplicates %d, want 3", p.Duplicates())
		}
		if n, _ := stream.Info(t.Context()); n.State.Msgs != 2 {
			t.Errorf("stream holds %d messages, want still 2", n.State.Msgs)
		}
	})
	t.Run("another replica indexes the stream and drops the repeat too", func(t *testing.T) {
		other, err := NewDedupe(t.Context(), conn.JS, DedupeOptions{FilterBits: 1 << 16, Dir: t.TempDir()}, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { _ = other.Run(ctx); close(done) }()
		defer func() { cancel(); <-done; _ = other.Close() }()
		waitFor(t, "the other replica's index to catch up", other.Filter().Warm)
		op := &Publisher{JS: conn.JS, Dedupe: other}
		batch := append(trackEvents("h", 2), trackEvents("single", 1)[0], trackEvents("new", 1)[0])
		if err := op.Publish(t.Context(), "ws-1", "src-1", batch); err != nil {
			t.Fatal(err)
		}
		if op.Duplicates() != 3 {
			t.Errorf("Duplicates %d, want 3 (h-0, h-1, single-0)", op.Duplicates())
		}
		m, err := stream.GetMsg(t.Context(), 3)
		if err != nil || m.Header.Get(jetstream.HeaderMessageID) != "new-0" {
			t.Fatalf("third message: %v %v, want the single event new-0", err, m)
		}
		// Another workspace's identical messageId is a different event.
		if err := op.Publish(t.Context(), "ws-2", "src-1", trackEvents("h", 1)); err != nil || op.Duplicates() != 3 {
			t.Fatalf("ws-2 h-0: %v, duplicates %d", err, op.Duplicates())
		}
	})
}

func TestMessageIDsAHeaderCannotCarryAreStoredExactly(t *testing.T) {
	conn := eventsNATS(t)
	dd := newTestDedupe(t, conn, DedupeOptions{FilterBits: 1 << 16})
	p := &Publisher{JS: conn.JS, Dedupe: dd}
	// Pairs a NATS header would turn into the same value (CR/LF become
	// spaces, surrounding white space is trimmed): every one is a distinct
	// messageId and must be stored, under its own id.
	ids := []string{"nl\nx", "nl x", " lead", "lead", "trail\t", "trail", "crlf\r\nx", "crlf  x", "bell\u0007", "bell"}
	for _, id := range ids {
		ev := tracking.Event{Type: "track", MessageID: id, JSON: []byte(`{"type":"track","messageId":` + strconv.Quote(id) + `}`)}
		before := p.Duplicates()
		if err := p.Publish(t.Context(), "ws", "src", []tracking.Event{ev}); err != nil {
			t.Fatal(err)
		}
		if p.Duplicates() != before {
			t.Errorf("%q taken for a duplicate", id)
		}
	}
	if p.Duplicates() != 0 {
		t.Fatalf("%d distinct messageIds taken for duplicates", p.Duplicates())
	}
	stream, _ := conn.JS.Stream(t.Context(), streams.Events)
	info, _ := stream.Info(t.Context())
	var got []string
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := jetstream.UnpackData(m.Header, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			got = append(got, ev.MessageID)
		}
	}
	if len(got) != len(ids) {
		t.Fatalf("stored %q, want %d events", got, len(ids))
	}
	for i, id := range ids {
		if got[i] != id {
			t.Errorf("event %d stored as %q, want %q", i, got[i], id)
		}
	}
}

func TestPublishSplitsLargeRequestsIntoPacksThatFit(t *testing.T) {
	conn := eventsNATS(t)
	p := &Publisher{JS: conn.JS}
	// 2,500 events of ~1 KB: 2.5 MB, beyond one message (the server's
	// max_payload is 1 MiB).
	pad := strings.Repeat("x", 1000)
	evs := make([]tracking.Event, 2500)
	for i := range evs {
		id := fmt.Sprintf("big-%04d", i)
		evs[i] = tracking.Event{Type: "track", MessageID: id, JSON: []byte(`{"type":"track","messageId":"` + id + `","p":"` + pad + `"}`)}
	}
	if err := p.Publish(t.Context(), "ws", "src", evs); err != nil {
		t.Fatal(err)
	}
	stream, err := conn.JS.Stream(t.Context(), streams.Events)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := stream.Info(t.Context())
	if info.State.Msgs < 3 || info.State.Msgs > 5 {
		t.Fatalf("%d messages, want 3-5 packs of at most %d bytes", info.State.Msgs, jetstream.MaxPackBytes)
	}
	var got []string
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Data) > jetstream.MaxPackBytes {
			t.Errorf("pack %d: %d bytes", seq, len(m.Data))
		}
		evs, err := jetstream.UnpackData(m.Header, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			got = append(got, ev.MessageID)
		}
	}
	if len(got) != 2500 || got[0] != "big-0000" || got[2499] != "big-2499" {
		t.Fatalf("stored %d events, first %q last %q", len(got), got[0], got[len(got)-1])
	}
	for i, id := range got {
		if id != fmt.Sprintf("big-%04d", i) {
			t.Fatalf("event %d is %s: order lost", i, id)
		}
	}
}

func TestPublishKeepsEachPackIndexWithinJetStreamsHeaderLimit(t *testing.T) {
	conn := eventsNATS(t)
	p := &Publisher{JS: conn.JS}
	// 2,500 small events with 100-character messageIds (some needing JSON
	// escapes): the index, not the body, decides the split.
	evs := make([]tracking.Event, 2500)
	for i := range evs {
		id := fmt.Sprintf("%04d\"<&>", i) + strings.Repeat("i", 93)
		evs[i] = tracking.Event{Type: "track", MessageID: id, JSON: []byte(`{"type":"track"}`)}
	}
	if err := p.Publish(t.Context(), "ws", "src", evs); err != nil {
		t.Fatalf("JetStream refused a pack: %v", err)
	}
	stream, _ := conn.JS.Stream(t.Context(), streams.Events)
	info, _ := stream.Info(t.Context())
	n := 0
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if l := len(m.Header.Get(jetstream.HeaderPack)); l > jetstream.MaxPackIndexBytes {
			t.Errorf("pack %d: index of %d bytes", seq, l)
		}
		got, err := jetstream.UnpackData(m.Header, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range got {
			if ev.MessageID != evs[n].MessageID {
				t.Fatalf("event %d: %q, want %q", n, ev.MessageID, evs[n].MessageID)
			}
			n++
		}
	}
	if n != 2500 || info.State.Msgs < 2 {
		t.Fatalf("%d events in %d messages", n, info.State.Msgs)
	}
}

func TestConcurrentRequestsWithTheSameIDStoreItOnce(t *testing.T) {
	conn := eventsNATS(t)
	dd := newTestDedupe(t, conn, DedupeOptions{FilterBits: 1 << 16})
	p := &Publisher{JS: conn.JS, Dedupe: dd}
	const n = 16
	errs := make(chan error, n)
	for i := range n {
		go func() {
			// Every request shares "same" and has one id of its own.
			evs := append(trackEvents("same", 1), trackEvents(fmt.Sprintf("own%d", i), 1)...)
			errs <- p.Publish(t.Context(), "ws", "src", evs)
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	stream, _ := conn.JS.Stream(t.Context(), streams.Events)
	info, _ := stream.Info(t.Context())
	count := map[string]int{}
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		evs, _ := jetstream.UnpackData(m.Header, m.Data)
		for _, ev := range evs {
			count[ev.MessageID]++
		}
	}
	if count["same-0"] != 1 || len(count) != n+1 || p.Duplicates() != n-1 {
		t.Fatalf("stored %v, duplicates %d; want same-0 once and %d own ids", count, p.Duplicates(), n)
	}
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
		for i, ev := range trackEvents("fill", 5) {
			if err := p.Publish(t.Context(), "ws", "src", []tracking.Event{ev}); err != nil {
				t.Fatalf("message %d of 5: %v", i, err)
			}
		}
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

// runDedupe opens a Dedupe on dir and runs it until the test ends or stop
// is called; it returns once the filter is warm.
func runDedupe(t *testing.T, conn *jetstream.Conn, dir string) (*Dedupe, func()) {
	t.Helper()
	dd, err := NewDedupe(t.Context(), conn.JS, DedupeOptions{FilterBits: 1 << 16, Dir: dir}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { _ = dd.Run(ctx); close(done) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			_ = dd.Close()
		}
	}
	t.Cleanup(stop)
	waitFor(t, "a warm filter", dd.Filter().Warm)
	return dd, stop
}

func TestDedupeRemembersAcrossRestarts(t *testing.T) {
	conn := eventsNATS(t)
	dir := t.TempDir()
	dd, stop := runDedupe(t, conn, dir)
	p := &Publisher{JS: conn.JS, Dedupe: dd}
	if err := p.Publish(t.Context(), "ws", "src", trackEvents("r", 5)); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(t.Context(), "ws", "src", trackEvents("one", 1)); err != nil {
		t.Fatal(err)
	}
	// The consumer has read both messages: the restarted index resumes
	// after them, so only what the store holds can drop the repeats.
	waitFor(t, "the index to apply both messages", func() bool { return dd.Store().Applied() == 2 })
	stop()

	dd, _ = runDedupe(t, conn, dir)
	p = &Publisher{JS: conn.JS, Dedupe: dd}
	evs := trackEvents("r", 5)
	evs[0], evs[4] = evs[4], evs[0] // another order: a different pack digest
	if err := p.Publish(t.Context(), "ws", "src", append(evs, trackEvents("one", 1)...)); err != nil {
		t.Fatal(err)
	}
	if p.Duplicates() != 6 {
		t.Fatalf("after a restart %d of 6 repeats dropped", p.Duplicates())
	}
	stream, _ := conn.JS.Stream(t.Context(), streams.Events)
	if info, _ := stream.Info(t.Context()); info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages, want 2", info.State.Msgs)
	}
}

// TestJetStreamDuplicatesAreReported publishes requests a second time past the dedupe index (a
// publisher without one, as with a window shorter than JetStream's): JetStream's Nats-Msg-Id
// window stores nothing again, and the publisher reports the events as duplicates instead of
// accepted — a single event and a batch (one pack) alike. New events are not.
func TestJetStreamDuplicatesAreReported(t *testing.T) {
	t.Parallel()
	conn := eventsNATS(t)
	p := &Publisher{JS: conn.JS}
	for _, evs := range [][]tracking.Event{trackEvents("one", 1), trackEvents("many", 5)} {
		var seen []string
		report := func(id string) { seen = append(seen, id) }
		if err := p.PublishReporting(t.Context(), "ws-1", "src-1", evs, report); err != nil || len(seen) != 0 {
			t.Fatalf("first publish of %d events: %v, reported %v", len(evs), err, seen)
		}
		before := p.Duplicates()
		if err := p.PublishReporting(t.Context(), "ws-1", "src-1", evs, report); err != nil {
			t.Fatal(err)
		}
		if len(seen) != len(evs) || seen[0] != evs[0].MessageID || p.Duplicates()-before != int64(len(evs)) {
			t.Fatalf("second publish of %d events: reported %v, duplicates +%d", len(evs), seen, p.Duplicates()-before)
		}
	}
	info, err := conn.JS.Stream(t.Context(), streams.Events)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 2 {
		t.Fatalf("EVENTS holds %d messages, want 2 (one per first request)", n)
	}
}
