package e2e

import (
	"net/http"
	"testing"
	"time"
)

// TestWebhookRetries checks that a webhook destination answering 500 to its
// first requests still gets every event, through Delivery's retries.
func TestWebhookRetries(t *testing.T) {
	t.Parallel()
	s := startSwitchyard(t)
	const failures = 3
	hook := newWebhookReceiver(t, http.StatusInternalServerError, http.StatusInternalServerError, http.StatusInternalServerError)
	s.createWebhookDestination(t, "flaky-hook", hook.URL())

	evs := loadEvents(t, "retry_events.json")
	ids := messageIDs(evs, "", nil)
	sendWithSDK(t, s, evs)

	// Backoff starts at about 1 s and doubles: 1+2+4 s for the scripted
	// failures, with slack for batching and jitter.
	acc := hook.waitAccepted(t, ids, deliveryWait+15*time.Second)
	hook.assertWellFormed(t)

	reqs := hook.snapshot()
	failed := 0
	for _, r := range reqs {
		if r.Status == http.StatusInternalServerError {
			failed++
		}
	}
	if failed != failures {
		t.Errorf("webhook answered 500 to %d requests, want %d (the script)", failed, failures)
	}
	// Every rejected event was tried again: the failed attempts add up to
	// more requests than events.
	if len(reqs) < len(ids)+failures {
		t.Errorf("webhook got %d requests, want at least %d events + %d retries", len(reqs), len(ids), failures)
	}
	for _, id := range ids {
		if len(acc[id]) == 0 {
			t.Errorf("messageId %q never accepted", id)
		}
	}
	for _, r := range reqs[:min(failures, len(reqs))] {
		if len(acc[r.MessageID]) == 0 {
			t.Errorf("messageId %q failed and was not retried to success", r.MessageID)
		}
	}
	if got, ok := field(acc["e2e-retry-01"][0].Body, "properties.attempt"); !ok || asFloat(t, got) != 1 {
		t.Errorf("webhook e2e-retry-01: properties.attempt = %v, want 1", got)
	}
}
