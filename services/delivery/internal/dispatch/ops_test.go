package dispatch

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/switchyardhq/switchyard/services/delivery/internal/dlq"
	"github.com/switchyardhq/switchyard/services/delivery/internal/filter"
	"github.com/switchyardhq/switchyard/services/delivery/internal/metrics"
	"github.com/switchyardhq/switchyard/services/delivery/internal/pipeline"
)

// TestRoutingFiltersAndSubscriptions sends events through a destination
// with filters and a mapped subscription and checks what arrives.
func TestRoutingFiltersAndSubscriptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hook := newStub(t)
	spec := hookSpec("routed", hook.srv.URL, nil)
	spec.Filters = []filter.Filter{
		{ID: "no-tests", If: "match(userId, 'test-*')", Enabled: true, Actions: []filter.Action{{Type: "drop"}}},
		{ID: "pii", If: "all", Enabled: true, Actions: []filter.Action{{Type: "drop_properties", Fields: map[string][]string{"properties": {"email"}}}}},
	}
	spec.Subscriptions = []pipeline.Subscription{{ID: "orders", Action: "send", Trigger: "type = 'track' and event = 'Order Completed'", Enabled: true,
		Mapping: map[string]any{"order": "$.properties", "who": "$.userId", "kind": "order"}}}
	r := e.start(t, Options{}, spec)
	e.publish(t,
		map[string]any{"type": "track", "event": "Order Completed", "userId": "u-1", "messageId": "keep", "properties": map[string]any{"total": 42, "email": "a@b.c"}},
		map[string]any{"type": "track", "event": "Order Completed", "userId": "test-1", "messageId": "drop-filter"},
		map[string]any{"type": "track", "event": "Signed Up", "userId": "u-2", "messageId": "no-subscription"},
		map[string]any{"type": "track", "event": "Order Completed", "userId": "u-3", "messageId": "all-false", "integrations": map[string]any{"All": false}},
		map[string]any{"type": "track", "event": "Order Completed", "userId": "u-4", "messageId": "lowercase-name", "integrations": map[string]any{"All": false, "webhooks": true}},
		map[string]any{"type": "track", "event": "Order Completed", "userId": "u-5", "messageId": "named", "integrations": map[string]any{"All": false, "Webhooks": true}},
		map[string]any{"type": "track", "event": "Order Completed", "userId": "u-6", "messageId": "bundled", "_metadata": map[string]any{"bundled": []any{"Webhooks"}}},
	)
	deadline := time.Now().Add(10 * time.Second)
	for r.d.Metrics().Total("routed").Filtered+r.d.Metrics().Total("routed").Delivered < 7 {
		if time.Now().After(deadline) {
			t.Fatalf("metrics = %+v, want 7 events handled", r.d.Metrics().Total("routed"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := hook.attempts()
	if len(got) != 2 {
		t.Fatalf("hook got %d requests, want 2 (keep, named)", len(got))
	}
	// Events are sent concurrently, so requests may arrive in any order.
	byKey := map[string][]byte{}
	for _, a := range got {
		byKey[a.Key] = a.Body
	}
	t.Run("mapping builds the body; dropped properties are gone", func(t *testing.T) {
		var body map[string]any
		_ = json.Unmarshal(byKey["keep"], &body)
		want := `{"kind":"order","order":{"total":42},"who":"u-1"}`
		if b, _ := json.Marshal(body); string(b) != want {
			t.Errorf("body of keep = %s, want %s", b, want)
		}
	})
	t.Run("integrations: All false blocks, the exact name lets through, bundled is skipped", func(t *testing.T) {
		if _, ok := byKey["named"]; !ok {
			t.Errorf("requests = %v, want keep and named", keys(byKey))
		}
		if tot := r.d.Metrics().Total("routed"); tot.Filtered != 5 || tot.Delivered != 2 {
			t.Errorf("filtered %d delivered %d, want 5 and 2", tot.Filtered, tot.Delivered)
		}
	})
}

// TestDeadLettersRedriveReplayMetrics covers the operations: a rejected
// event is inspectable, redrive re-sends it once the destination is fixed,
// replay re-sends archived events of one type, and metrics count it all.
func TestDeadLettersRedriveReplayMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hook := newStub(t, step{Status: 400, Body: "missing field"}, step{Status: 422, Body: "bad"})
	// One at a time, so the script answers the events in stream order.
	r := e.start(t, Options{Concurrency: 1}, hookSpec("ops", hook.srv.URL, nil))
	start := time.Now()
	e.publish(t,
		map[string]any{"type": "track", "event": "A", "userId": "u-1", "messageId": "m-1"},
		map[string]any{"type": "identify", "userId": "u-1", "messageId": "m-2"},
		map[string]any{"type": "track", "event": "B", "userId": "u-1", "messageId": "m-3"},
	)
	letters := e.waitLetters(t, "ops", 2, 10*time.Second)
	hook.waitAttempts(t, 3, 10*time.Second)
	st := &dlq.Store{JS: e.js}

	t.Run("list filters by reason and status; get returns request and response", func(t *testing.T) {
		ls, _, err := st.List(t.Context(), testWorkspace, "ops", dlq.Filter{Status: 422}, 0, 10)
		if err != nil || len(ls) != 1 || ls[0].MessageID != "m-2" {
			t.Fatalf("List(status 422) = %+v, %v; want m-2", ls, err)
		}
		l, err := st.Get(t.Context(), testWorkspace, "ops", letters[0].Seq)
		if err != nil {
			t.Fatal(err)
		}
		if l.MessageID != "m-1" || l.Status != 400 || l.Reason != "rejected" || l.Request == "" || l.Response == "" {
			t.Errorf("Get = %+v", l)
		}
		if _, err := st.Get(t.Context(), testWorkspace, "other", letters[0].Seq); err != dlq.ErrNotFound {
			t.Errorf("Get of another destination's letter: %v, want ErrNotFound", err)
		}
	})
	t.Run("redrive of a filter re-sends it and removes it from the DLQ", func(t *testing.T) {
		n, err := st.Redrive(t.Context(), testWorkspace, "ops", dlq.Filter{MessageIDs: []string{"m-1"}})
		if err != nil || n != 1 {
			t.Fatalf("Redrive = %d, %v; want 1", n, err)
		}
		got := hook.waitAttempts(t, 4, 10*time.Second)
		if got[3].Key != "m-1" || got[3].Status != 200 {
			t.Errorf("redriven request = %q status %d, want m-1 accepted", got[3].Key, got[3].Status)
		}
		ls, _, _ := st.List(t.Context(), testWorkspace, "ops", dlq.Filter{}, 0, 10)
		if len(ls) != 1 || ls[0].MessageID != "m-2" {
			t.Errorf("DLQ after redrive = %+v, want only m-2", ls)
		}
	})
	t.Run("replay re-sends archived track events of the range to this destination", func(t *testing.T) {
		n, err := st.Replay(t.Context(), dlq.ReplayRequest{ID: "r1", WorkspaceID: testWorkspace, SourceID: testSource, DestinationID: "ops",
			Start: start.Add(-time.Second), End: time.Now().Add(time.Second), EventTypes: []string{"track"}})
		if err != nil || n != 2 {
			t.Fatalf("Replay = %d, %v; want 2 (m-1, m-3)", n, err)
		}
		got := hook.waitAttempts(t, 6, 10*time.Second)
		if got[4].Key != "m-1" || got[5].Key != "m-3" {
			t.Errorf("replayed = %q, %q; want m-1, m-3", got[4].Key, got[5].Key)
		}
	})
	t.Run("metrics per window", func(t *testing.T) {
		waitDelivered(t, r, "ops", 4, 10*time.Second)
		for _, w := range []string{"10m", "1h", "24h", "7d"} {
			s := r.d.Metrics().Window("ops", metrics.Windows[w])
			if s.Delivered != 4 || s.NotDelivered["rejected"] != 2 || s.P95 <= 0 {
				t.Errorf("%s: %+v, want 4 delivered, 2 rejected, a p95", w, s)
			}
		}
		samples := r.d.Metrics().Samples("ops")
		if len(samples) != 2 || samples[0].MessageID != "m-2" || samples[0].Status != 422 || !samples[0].Final || samples[0].Response == "" {
			t.Errorf("samples = %+v, want m-2 (422) newest first", samples)
		}
	})
}

func keys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
