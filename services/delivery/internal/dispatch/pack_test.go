package dispatch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations"
	"github.com/switchyardhq/switchyard/services/delivery/internal/dlq"
	"github.com/switchyardhq/switchyard/services/delivery/internal/pipeline"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
)

// publishPack stores events as one pack, as Ingest stores a request of
// several events, and returns the pack's stream sequence.
func (e *env) publishPack(t *testing.T, events ...map[string]any) uint64 {
	t.Helper()
	evs := make([]jetstream.PackedEvent, len(events))
	for i, ev := range events {
		raw, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		evs[i].JSON = raw
		evs[i].Type, _ = ev["type"].(string)
		evs[i].MessageID, _ = ev["messageId"].(string)
	}
	msg := jetstream.PackMsg(streams.EventsSubject(testWorkspace, testSource),
		jetstream.Headers{Workspace: testWorkspace, Source: testSource}, nats.Header{}, evs)
	ack, err := e.js.PublishMsg(t.Context(), msg)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// storedAt is when EVENTS stored the message with sequence seq.
func (e *env) storedAt(t *testing.T, seq uint64) time.Time {
	t.Helper()
	st, err := e.js.Stream(t.Context(), streams.Events)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(t.Context(), seq)
	if err != nil {
		t.Fatal(err)
	}
	return m.Time
}

// waitSettled polls until the destination's consumer on stream has
// nothing pending or unacknowledged (every message acked).
func (e *env) waitSettled(t *testing.T, stream, consumer string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		info, err := e.js.Consumer(t.Context(), stream, consumer)
		if err != nil {
			t.Fatal(err)
		}
		ci, err := info.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if ci.NumPending == 0 && ci.NumAckPending == 0 && ci.Delivered.Stream > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s: %d pending, %d unacknowledged after %v, want all acked", consumer, ci.NumPending, ci.NumAckPending, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// replayMsgs returns the messages stored on the destination's REPLAY
// subject.
func (e *env) replayMsgs(t *testing.T, destID string) []natsjs.Msg {
	t.Helper()
	cons, err := e.js.OrderedConsumer(t.Context(), streams.Replay, natsjs.OrderedConsumerConfig{
		FilterSubjects: []string{streams.ReplaySubject(testWorkspace, destID)}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []natsjs.Msg
	for range info.NumPending {
		m, err := cons.Next(natsjs.FetchMaxWait(2 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// idStub is a webhook answering per messageId: the scripted answers of an
// event's messageId in turn, then 200 (a batch gets the first scripted
// answer among its events). It records every request.
type idStub struct {
	srv    *httptest.Server
	mu     sync.Mutex
	script map[string][]step
	tries  map[string]int
	reqs   []idReq
}

type idReq struct {
	at     time.Time
	key    string
	ids    []string
	bodies []json.RawMessage
	status int
}

func newIDStub(t *testing.T, script map[string][]step) *idStub {
	t.Helper()
	s := &idStub{script: script, tries: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var bodies []json.RawMessage
		if len(raw) > 0 && raw[0] == '[' {
			_ = json.Unmarshal(raw, &bodies)
		} else {
			bodies = []json.RawMessage{raw}
		}
		req := idReq{at: time.Now(), key: r.Header.Get("Idempotency-Key"), bodies: bodies, status: 200}
		s.mu.Lock()
		var answer *step
		for _, b := range bodies {
			var ev struct {
				MessageID string `json:"messageId"`
			}
			_ = json.Unmarshal(b, &ev)
			req.ids = append(req.ids, ev.MessageID)
			n := s.tries[ev.MessageID]
			s.tries[ev.MessageID]++
			if sc := s.script[ev.MessageID]; answer == nil && n < len(sc) {
				answer = &sc[n]
			}
		}
		if answer != nil {
			req.status = answer.Status
		}
		s.reqs = append(s.reqs, req)
		s.mu.Unlock()
		if answer != nil && answer.DelayMS > 0 {
			select {
			case <-time.After(time.Duration(answer.DelayMS) * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		if answer != nil {
			for k, v := range answer.Headers {
				w.Header().Set(k, v)
			}
		}
		w.WriteHeader(req.status)
		if answer != nil {
			_, _ = io.WriteString(w, answer.Body)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// requests returns the requests so far.
func (s *idStub) requests() []idReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// accepted counts the accepted deliveries of each messageId.
func (s *idStub) accepted() map[string]int {
	out := map[string]int{}
	for _, r := range s.requests() {
		if r.status < 300 {
			for _, id := range r.ids {
				out[id]++
			}
		}
	}
	return out
}

// waitAccepted polls until n distinct messageIds were accepted.
func (s *idStub) waitAccepted(t *testing.T, n int, timeout time.Duration) map[string]int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.accepted()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook accepted %d distinct events after %v, want %d: %v", len(got), timeout, n, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// attemptsOf returns the requests that held messageId id.
func (s *idStub) attemptsOf(id string) []idReq {
	var out []idReq
	for _, r := range s.requests() {
		if slices.Contains(r.ids, id) {
			out = append(out, r)
		}
	}
	return out
}

func trackEvents(prefix string, n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range n {
		out[i] = map[string]any{"type": "track", "event": "Packed", "userId": fmt.Sprintf("u-%d", i%3),
			"messageId": fmt.Sprintf("%s-%d", prefix, i+1), "properties": map[string]any{"i": i}}
	}
	return out
}

func wantOnce(t *testing.T, got map[string]int, events []map[string]any) {
	t.Helper()
	if len(got) != len(events) {
		t.Errorf("accepted %v, want each of %d events once", got, len(events))
	}
	for _, ev := range events {
		if id := ev["messageId"].(string); got[id] != 1 {
			t.Errorf("%s accepted %d times, want once", id, got[id])
		}
	}
}

// TestPackToWebhook checks that the events of a pack reach a webhook each
// once, with its own idempotency key (unbatched), or together in one
// batch request (batching), and that the pack is acked.
func TestPackToWebhook(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	single := newIDStub(t, nil)
	batched := newIDStub(t, nil)
	// The batch size equals the pack's size, so the batch is sent when
	// full, not when BatchWait runs out.
	r := e.start(t, Options{BatchWait: 10 * time.Second},
		hookSpec("pack-single", single.srv.URL, nil),
		hookSpec("pack-batched", batched.srv.URL, map[string]any{"batchSize": float64(25)}))
	events := trackEvents("pk", 25)
	e.publishPack(t, events...)

	t.Run("unbatched: one request per event, Idempotency-Key = messageId", func(t *testing.T) {
		wantOnce(t, single.waitAccepted(t, 25, 10*time.Second), events)
		for _, req := range single.requests() {
			if len(req.ids) != 1 || req.key != req.ids[0] {
				t.Errorf("request for %v has Idempotency-Key %q, want its messageId", req.ids, req.key)
			}
		}
		waitDelivered(t, r, "pack-single", 25, 10*time.Second)
		e.waitSettled(t, streams.Events, ConsumerName("pack-single"), 10*time.Second)
	})
	t.Run("batching: the pack's events in one request", func(t *testing.T) {
		wantOnce(t, batched.waitAccepted(t, 25, 10*time.Second), events)
		reqs := batched.requests()
		if len(reqs) != 1 {
			t.Fatalf("batching webhook got %d requests, want 1 with the 25 events", len(reqs))
		}
		sum := sha256.Sum256([]byte(strings.Join(reqs[0].ids, "\n")))
		if want := "batch-" + hex.EncodeToString(sum[:16]); reqs[0].key != want {
			t.Errorf("batch Idempotency-Key = %q, want %q (its messageIds)", reqs[0].key, want)
		}
		for i, b := range reqs[0].bodies {
			var ev map[string]any
			if err := json.Unmarshal(b, &ev); err != nil || ev["event"] != "Packed" || ev["messageId"] != reqs[0].ids[i] {
				t.Errorf("batch element %d = %s, want the event as stored", i, b)
			}
		}
		e.waitSettled(t, streams.Events, ConsumerName("pack-batched"), 10*time.Second)
	})
}

// TestPackRetryThroughReplay checks that a failing event of a pack is
// retried alone, through REPLAY, with its attempt count and first
// receipt, while the pack is acked.
func TestPackRetryThroughReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hook := newIDStub(t, map[string][]step{"rt-2": {{Status: 500, Body: "oops"}}})
	r := e.start(t, Options{}, hookSpec("pack-retry", hook.srv.URL, nil))
	events := trackEvents("rt", 3)
	seq := e.publishPack(t, events...)
	stored := e.storedAt(t, seq)

	wantOnce(t, hook.waitAccepted(t, 3, 10*time.Second), events)
	waitDelivered(t, r, "pack-retry", 3, 10*time.Second)
	e.waitSettled(t, streams.Events, ConsumerName("pack-retry"), 10*time.Second)
	e.waitSettled(t, streams.Replay, ReplayConsumerName("pack-retry"), 10*time.Second)

	t.Run("only the failed event is sent again, with its idempotency key", func(t *testing.T) {
		for _, ev := range events {
			id := ev["messageId"].(string)
			want := 1
			if id == "rt-2" {
				want = 2
			}
			got := hook.attemptsOf(id)
			if len(got) != want {
				t.Errorf("%s: %d requests, want %d", id, len(got), want)
			}
			for _, req := range got {
				if req.key != id {
					t.Errorf("%s sent with Idempotency-Key %q", id, req.key)
				}
			}
		}
		if tot := r.d.Metrics().Total("pack-retry"); tot.Delivered != 3 || tot.Retried != 1 {
			t.Errorf("metrics = %+v, want 3 delivered, 1 retried", tot)
		}
	})
	t.Run("the retry went through REPLAY with its retry state, not as a replay", func(t *testing.T) {
		msgs := e.replayMsgs(t, "pack-retry")
		if len(msgs) != 1 {
			t.Fatalf("REPLAY holds %d messages for the destination, want 1", len(msgs))
		}
		h := msgs[0].Headers()
		if got, want := h.Get(jetstream.HeaderMsgID), fmt.Sprintf("retry:pack-retry:%s:%d:1", streams.Events, seq); got != want {
			t.Errorf("Nats-Msg-Id = %q, want %q", got, want)
		}
		if h.Get(jetstream.HeaderMessageID) != "rt-2" || h.Get(jetstream.HeaderEventType) != "track" || h.Get(dlq.HeaderAttempt) != "1" {
			t.Errorf("headers = %v, want messageId rt-2, type track, attempt 1", h)
		}
		if h.Get(dlq.HeaderResent) != "" {
			t.Errorf("a retry is marked %s=%q; it must not bypass the integrations object", dlq.HeaderResent, h.Get(dlq.HeaderResent))
		}
		if ra, err := time.Parse(time.RFC3339Nano, h.Get(dlq.HeaderReceivedAt)); err != nil || !ra.Equal(stored) {
			t.Errorf("%s = %q, want the pack's receipt %v", dlq.HeaderReceivedAt, h.Get(dlq.HeaderReceivedAt), stored)
		}
		var ev map[string]any
		if err := json.Unmarshal(msgs[0].Data(), &ev); err != nil || ev["messageId"] != "rt-2" {
			t.Errorf("REPLAY body = %s, want the event rt-2", msgs[0].Data())
		}
		attempts := hook.attemptsOf("rt-2")
		notBefore, err := time.Parse(time.RFC3339Nano, h.Get(dlq.HeaderNotBefore))
		if err != nil {
			t.Fatalf("%s = %q: %v", dlq.HeaderNotBefore, h.Get(dlq.HeaderNotBefore), err)
		}
		// Backoff base 200 ms: the first delay is in [100, 200) ms.
		if gap := notBefore.Sub(attempts[0].at); gap < 90*time.Millisecond || gap > time.Second {
			t.Errorf("not before = %v after the failure, want the first backoff (100-200 ms)", gap)
		}
		if attempts[1].at.Before(notBefore) {
			t.Errorf("retry at %v, before its not-before %v", attempts[1].at, notBefore)
		}
	})
}

// TestPackRetryWindowFromFirstReceipt checks that an event of a pack that
// keeps failing is dead-lettered when the retry window, counted from the
// pack's receipt, closes, with every attempt counted (the first from the
// pack, the others from REPLAY).
func TestPackRetryWindowFromFirstReceipt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var fails []step
	for range 100 {
		fails = append(fails, step{Status: 503, Body: "still down"})
	}
	hook := newIDStub(t, map[string][]step{"win-2": fails})
	const window = 2 * time.Second
	r := e.start(t, Options{Retry: pipeline.RetryPolicy{Base: 100 * time.Millisecond, MaxAge: window}}, hookSpec("pack-window", hook.srv.URL, nil))
	events := trackEvents("win", 2)
	seq := e.publishPack(t, events...)
	stored := e.storedAt(t, seq)

	ls := e.waitLetters(t, "pack-window", 1, 20*time.Second)
	l := ls[0]
	if l.Reason != destinations.ReasonExhausted || l.MessageID != "win-2" || l.Status != 503 || !strings.Contains(l.Response, "still down") {
		t.Errorf("dead letter = reason %q messageId %q status %d response %q, want retries_exhausted win-2 503 with the body", l.Reason, l.MessageID, l.Status, l.Response)
	}
	if !l.ReceivedAt.Equal(stored) {
		t.Errorf("letter receivedAt = %v, want the pack's receipt %v", l.ReceivedAt, stored)
	}
	if d := l.FailedAt.Sub(stored); d > window {
		t.Errorf("given up %v after the pack's receipt, want within the %v window", d, window)
	}
	n := len(hook.attemptsOf("win-2"))
	if n < 3 || uint64(n) != l.Attempts {
		t.Errorf("win-2 got %d requests, the letter says %d attempts; want the same, at least 3", n, l.Attempts)
	}
	if got := hook.accepted()["win-1"]; got != 1 {
		t.Errorf("win-1 accepted %d times, want once", got)
	}
	if len(e.replayMsgs(t, "pack-window")) != 1 {
		t.Errorf("REPLAY holds %d messages, want the one hand-off", len(e.replayMsgs(t, "pack-window")))
	}
	if got := r.d.Metrics().Total("pack-window").NotDelivered[destinations.ReasonExhausted]; got != 1 {
		t.Errorf("not delivered (retries_exhausted) = %d, want 1", got)
	}
	e.waitSettled(t, streams.Events, ConsumerName("pack-window"), 10*time.Second)
	e.waitSettled(t, streams.Replay, ReplayConsumerName("pack-window"), 10*time.Second)
}

// TestPackRejectedEvent checks that an event of a pack the destination
// rejects is dead-lettered alone while the others are delivered.
func TestPackRejectedEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hook := newIDStub(t, map[string][]step{"rej-2": {{Status: 400, Body: "missing field"}}})
	r := e.start(t, Options{}, hookSpec("pack-reject", hook.srv.URL, nil))
	events := trackEvents("rej", 3)
	events[1]["type"], events[1]["traits"] = "identify", map[string]any{"plan": "pro"}
	delete(events[1], "event")
	seq := e.publishPack(t, events...)

	ls := e.waitLetters(t, "pack-reject", 1, 10*time.Second)
	waitDelivered(t, r, "pack-reject", 2, 10*time.Second)
	e.waitSettled(t, streams.Events, ConsumerName("pack-reject"), 10*time.Second)
	want, _ := json.Marshal(events[1])
	l := ls[0]
	if l.Reason != destinations.ReasonRejected || l.MessageID != "rej-2" || l.EventType != "identify" || l.Status != 400 || l.Attempts != 1 {
		t.Errorf("dead letter = %+v, want rejected rej-2 identify 400, 1 attempt", l)
	}
	if string(l.Event) != string(want) {
		t.Errorf("dead letter event = %s, want %s", l.Event, want)
	}
	if !l.ReceivedAt.Equal(e.storedAt(t, seq)) {
		t.Errorf("letter receivedAt = %v, want the pack's receipt", l.ReceivedAt)
	}
	got := hook.accepted()
	if got["rej-1"] != 1 || got["rej-3"] != 1 || len(hook.attemptsOf("rej-2")) != 1 {
		t.Errorf("accepted %v, rej-2 tried %d times; want rej-1 and rej-3 once, rej-2 tried once", got, len(hook.attemptsOf("rej-2")))
	}
	if n := len(e.replayMsgs(t, "pack-reject")); n != 0 {
		t.Errorf("REPLAY holds %d messages, want none (a rejection is final)", n)
	}
	// The pack is settled: no other letter can come.
	if ls := e.waitLetters(t, "pack-reject", 1, time.Second); len(ls) != 1 {
		t.Errorf("%d dead letters, want 1", len(ls))
	}
}

// TestPackOrderedByUser checks ordered delivery inside a pack: u-1's
// first event is retried (held in memory), u-1's later events, in the
// same pack and in a later single message, wait behind it, u-2's flow.
func TestPackOrderedByUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hook := newUserStub(t, "u1-1")
	r := e.start(t, Options{}, hookSpec("pack-ordered", hook.srv.URL, map[string]any{"orderByUserId": true}))
	e.publishPack(t,
		map[string]any{"type": "track", "event": "A", "userId": "u-1", "messageId": "u1-1"},
		map[string]any{"type": "track", "event": "B", "userId": "u-2", "messageId": "u2-1"},
		map[string]any{"type": "track", "event": "C", "userId": "u-1", "messageId": "u1-2"},
		map[string]any{"type": "track", "event": "D", "userId": "u-2", "messageId": "u2-2"},
		map[string]any{"type": "track", "event": "E", "userId": "u-1", "messageId": "u1-3"},
	)
	e.publish(t, map[string]any{"type": "track", "event": "F", "userId": "u-1", "messageId": "u1-4"})

	got := hook.wait(t, 6, 15*time.Second)
	u1, at := order(got, "u-1")
	u2, at2 := order(got, "u-2")
	if want := []string{"u1-1", "u1-2", "u1-3", "u1-4"}; !slices.Equal(u1, want) {
		t.Errorf("u-1 accepted %v, want %v", u1, want)
	}
	if want := []string{"u2-1", "u2-2"}; !slices.Equal(u2, want) {
		t.Errorf("u-2 accepted %v, want %v", u2, want)
	}
	if gap := at["u1-1"].Sub(hook.failedAt); gap < time.Second {
		t.Errorf("u1-1 retried %v after its 503, want >= 1s (Retry-After)", gap)
	}
	for _, id := range u2 {
		if !at2[id].Before(at["u1-1"]) {
			t.Errorf("%s accepted at %v, not before u-1's retry at %v", id, at2[id], at["u1-1"])
		}
	}
	e.waitSettled(t, streams.Events, ConsumerName("pack-ordered"), 10*time.Second)
	if n := len(e.replayMsgs(t, "pack-ordered")); n != 0 {
		t.Errorf("REPLAY holds %d messages, want none (ordered retries are held in memory)", n)
	}
	if tot := r.d.Metrics().Total("pack-ordered"); tot.Delivered != 6 || tot.Retried != 1 {
		t.Errorf("metrics = %+v, want 6 delivered, 1 retried", tot)
	}
}

// TestMixedSinglesAndPacks checks a stream holding single-event messages
// (as stored before packs, and for one-event requests) between packs.
func TestMixedSinglesAndPacks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hook := newIDStub(t, nil)
	batched := newIDStub(t, nil)
	r := e.start(t, Options{}, hookSpec("mixed", hook.srv.URL, nil),
		hookSpec("mixed-batched", batched.srv.URL, map[string]any{"batchSize": float64(4)}))
	all := trackEvents("mx", 8)
	e.publish(t, all[0])
	e.publishPack(t, all[1:4]...)
	e.publish(t, all[4])
	e.publishPack(t, all[5:8]...)

	wantOnce(t, hook.waitAccepted(t, 8, 10*time.Second), all)
	wantOnce(t, batched.waitAccepted(t, 8, 10*time.Second), all)
	waitDelivered(t, r, "mixed", 8, 10*time.Second)
	waitDelivered(t, r, "mixed-batched", 8, 10*time.Second)
	e.waitSettled(t, streams.Events, ConsumerName("mixed"), 10*time.Second)
	e.waitSettled(t, streams.Events, ConsumerName("mixed-batched"), 10*time.Second)
}

// TestMalformedPack checks that a message whose pack index does not
// describe its body is dead-lettered whole, once, and acked, and that
// the consumer goes on.
func TestMalformedPack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hook := newIDStub(t, nil)
	r := e.start(t, Options{}, hookSpec("malformed", hook.srv.URL, nil))
	body := `[{"type":"track","messageId":"bad-1"},{"type":"track","messageId":"bad-2"}]`
	bad := nats.NewMsg(streams.EventsSubject(testWorkspace, testSource))
	bad.Data = []byte(body)
	bad.Header.Set(jetstream.HeaderWorkspace, testWorkspace)
	bad.Header.Set(jetstream.HeaderSource, testSource)
	bad.Header.Set(jetstream.HeaderMsgID, "pack:broken")
	bad.Header.Set(jetstream.HeaderPack, `[[10,"track","bad-1"],[999,"track","bad-2"]]`) // sizes do not match
	if _, err := e.js.PublishMsg(t.Context(), bad); err != nil {
		t.Fatal(err)
	}
	events := trackEvents("after", 3)
	e.publishPack(t, events...)

	wantOnce(t, hook.waitAccepted(t, 3, 10*time.Second), events)
	ls := e.waitLetters(t, "malformed", 1, 10*time.Second)
	e.waitSettled(t, streams.Events, ConsumerName("malformed"), 10*time.Second)
	l := ls[0]
	if len(ls) != 1 || l.Reason != destinations.ReasonInvalid || l.MessageID != "pack:broken" || (l.Event != nil && string(l.Event) != "null") {
		t.Errorf("dead letters = %+v, want one invalid_payload letter for pack:broken without an event", ls)
	}
	if !strings.Contains(l.Error, "malformed event pack") || !strings.Contains(l.Error, `\"messageId\":\"bad-2\"`) {
		t.Errorf("letter error = %q, want the reason and the whole body", l.Error)
	}
	if got := r.d.Metrics().Total("malformed").NotDelivered[destinations.ReasonInvalid]; got != 1 {
		t.Errorf("not delivered (invalid_payload) = %d, want 1", got)
	}
	if ids := hook.accepted(); ids["bad-1"]+ids["bad-2"] != 0 {
		t.Errorf("events of the malformed pack were sent: %v", ids)
	}
}

// TestReplayOfPacks checks that replaying a time range that holds packs
// re-sends each event once, as a single-event message.
func TestReplayOfPacks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hook := newIDStub(t, nil)
	r := e.start(t, Options{}, hookSpec("pack-replay", hook.srv.URL, nil))
	start := time.Now()
	events := trackEvents("rp", 5)
	events[2]["type"] = "identify"
	delete(events[2], "event")
	e.publishPack(t, events[:3]...)
	e.publish(t, events[3])
	e.publishPack(t, events[4], map[string]any{"type": "page", "name": "Home", "messageId": "rp-page"})
	all := append(slices.Clone(events), map[string]any{"messageId": "rp-page"})
	wantOnce(t, hook.waitAccepted(t, 6, 10*time.Second), all)
	waitDelivered(t, r, "pack-replay", 6, 10*time.Second)
	st := &dlq.Store{JS: e.js}

	t.Run("a type filter picks events inside packs", func(t *testing.T) {
		n, err := st.Replay(t.Context(), dlq.ReplayRequest{ID: "types", WorkspaceID: testWorkspace, SourceID: testSource, DestinationID: "pack-replay",
			Start: start.Add(-time.Second), End: time.Now().Add(time.Second), EventTypes: []string{"identify", "page"}})
		if err != nil || n != 2 {
			t.Fatalf("Replay(identify, page) = %d, %v; want 2", n, err)
		}
		waitDelivered(t, r, "pack-replay", 8, 10*time.Second)
		got := hook.accepted()
		if got["rp-3"] != 2 || got["rp-page"] != 2 || got["rp-1"] != 1 {
			t.Errorf("accepted %v, want rp-3 and rp-page twice, the rest once", got)
		}
	})
	t.Run("every event of the range is re-sent once, singly", func(t *testing.T) {
		n, err := st.Replay(t.Context(), dlq.ReplayRequest{ID: "all", WorkspaceID: testWorkspace, SourceID: testSource, DestinationID: "pack-replay",
			Start: start.Add(-time.Second), End: time.Now().Add(time.Second)})
		if err != nil || n != 6 {
			t.Fatalf("Replay = %d, %v; want 6", n, err)
		}
		waitDelivered(t, r, "pack-replay", 14, 10*time.Second)
		got := hook.accepted()
		for _, ev := range all {
			id := ev["messageId"].(string)
			want := 2
			if id == "rp-3" || id == "rp-page" {
				want = 3
			}
			if got[id] != want {
				t.Errorf("%s accepted %d times, want %d", id, got[id], want)
			}
		}
		msgs := e.replayMsgs(t, "pack-replay")
		if len(msgs) != 8 {
			t.Fatalf("REPLAY holds %d messages, want 8 (2 + 6)", len(msgs))
		}
		for _, m := range msgs {
			h := m.Headers()
			var ev struct{ MessageID, Type string }
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				t.Fatalf("REPLAY body %s: %v", m.Data(), err)
			}
			if jetstream.IsPack(h) || h.Get(jetstream.HeaderMessageID) != ev.MessageID || h.Get(jetstream.HeaderEventType) != ev.Type || h.Get(dlq.HeaderResent) != "replay" {
				t.Errorf("REPLAY message %s has headers %v, want its messageId, type and resent=replay", m.Data(), h)
			}
		}
		e.waitSettled(t, streams.Replay, ReplayConsumerName("pack-replay"), 10*time.Second)
	})
}

// TestPackShutdownGivesBack checks shutdown in the middle of a pack: the
// event in flight finishes, the others are not started, the pack is
// nak'ed at once, and after a restart every event arrives (the delivered
// one again: at-least-once).
func TestPackShutdownGivesBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hook := newIDStub(t, map[string][]step{"sd-1": {{Status: 200, DelayMS: 1000}}})
	spec := hookSpec("pack-shutdown", hook.srv.URL, nil)
	first := e.start(t, Options{Concurrency: 1}, spec)
	events := trackEvents("sd", 4)
	e.publishPack(t, events...)
	deadline := time.Now().Add(10 * time.Second)
	for len(hook.requests()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first event was never sent")
		}
		time.Sleep(5 * time.Millisecond)
	}
	first.stop() // sd-1 is in flight for 1 s; the others wait
	if got := first.d.Metrics().Total("pack-shutdown").Delivered; got != 1 {
		t.Fatalf("delivered before shutdown = %d, want 1 (the event in flight)", got)
	}
	if n := len(hook.requests()); n != 1 {
		t.Fatalf("%d requests before shutdown, want 1", n)
	}

	second := e.start(t, Options{Concurrency: 1}, spec)
	// A nak'ed pack comes back at once; one left to AckWait would not
	// within this timeout.
	waitDelivered(t, second, "pack-shutdown", 4, 10*time.Second)
	e.waitSettled(t, streams.Events, ConsumerName("pack-shutdown"), 10*time.Second)
	got := hook.accepted()
	if got["sd-1"] != 2 || got["sd-2"] != 1 || got["sd-3"] != 1 || got["sd-4"] != 1 {
		t.Errorf("accepted %v, want sd-1 twice (delivered, then re-sent with its pack), the others once", got)
	}
}

// deliveries is how many times the consumer delivered a message
// (redeliveries included).
func (e *env) deliveries(t *testing.T, stream, consumer string) uint64 {
	t.Helper()
	c, err := e.js.Consumer(t.Context(), stream, consumer)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return ci.Delivered.Consumer
}

// TestPackHeartbeat checks that a pack whose events take longer than
// AckWait is not redelivered: its events are sent one after the other
// (slow destination), or one of them is held for an ordered retry.
func TestPackHeartbeat(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	slow := newIDStub(t, map[string][]step{})
	events := trackEvents("hb", 4)
	for _, ev := range events {
		slow.script[ev["messageId"].(string)] = []step{{Status: 200, DelayMS: 600}}
	}
	held := newIDStub(t, map[string][]step{"hbu1-1": {{Status: 503, Headers: map[string]string{"Retry-After": "3"}}}})
	const ackWait = time.Second
	r := e.start(t, Options{AckWait: ackWait, Concurrency: 1},
		hookSpec("hb-slow", slow.srv.URL, nil),
		hookSpec("hb-ordered", held.srv.URL, map[string]any{"orderByUserId": true}))
	e.publishPack(t, append(events,
		map[string]any{"type": "track", "event": "A", "userId": "u-1", "messageId": "hbu1-1"},
		map[string]any{"type": "track", "event": "B", "userId": "u-2", "messageId": "hbu2-1"})...)

	t.Run("slow destination: 4 × 600 ms, AckWait 1 s, each event sent once", func(t *testing.T) {
		waitDelivered(t, r, "hb-slow", 6, 20*time.Second)
		e.waitSettled(t, streams.Events, ConsumerName("hb-slow"), 10*time.Second)
		all := append(slices.Clone(events), map[string]any{"messageId": "hbu1-1"}, map[string]any{"messageId": "hbu2-1"})
		wantOnce(t, slow.accepted(), all)
		if n := e.deliveries(t, streams.Events, ConsumerName("hb-slow")); n != 1 {
			t.Errorf("the pack was delivered %d times, want once", n)
		}
	})
	t.Run("ordered: an event held 3 s for Retry-After, AckWait 1 s, no redelivery", func(t *testing.T) {
		waitDelivered(t, r, "hb-ordered", 6, 20*time.Second)
		e.waitSettled(t, streams.Events, ConsumerName("hb-ordered"), 10*time.Second)
		all := append(slices.Clone(events), map[string]any{"messageId": "hbu1-1"}, map[string]any{"messageId": "hbu2-1"})
		wantOnce(t, held.accepted(), all)
		if tries := held.attemptsOf("hbu1-1"); len(tries) != 2 || tries[1].at.Sub(tries[0].at) < 3*time.Second {
			t.Errorf("hbu1-1 tried %d times, want twice, 3 s (Retry-After) apart", len(tries))
		}
		if n := e.deliveries(t, streams.Events, ConsumerName("hb-ordered")); n != 1 {
			t.Errorf("the pack was delivered %d times, want once", n)
		}
	})
}
