package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestTraceContinuesToDestination checks that the W3C trace context of a
// Tracking API request rides with the event through JetStream and arrives
// at the destination: the webhook request carries a traceparent with the
// caller's trace id (and a different parent span, Switchyard's own).
func TestTraceContinuesToDestination(t *testing.T) {
	t.Parallel()
	sy := startSwitchyard(t)
	recv := newWebhookReceiver(t)
	sy.createWebhookDestination(t, "trace hook", recv.URL())

	const traceID = "4bf92f3577b34a4ea0f0b3a1c2d3e4f5"
	const callerSpan = "00f067aa0ba902b7"
	res := sy.request(t, http.MethodPost, "/v1/track",
		`{"userId":"trace-user","event":"Traced","messageId":"trace-msg-1"}`,
		func(r *http.Request) {
			r.SetBasicAuth(sy.Boot.WriteKey, "")
			r.Header.Set("traceparent", "00-"+traceID+"-"+callerSpan+"-01")
		})
	if res.Status != http.StatusOK {
		t.Fatalf("track: status %d: %s", res.Status, res.Body)
	}
	got := recv.waitAccepted(t, []string{"trace-msg-1"}, deliveryWait)["trace-msg-1"][0]
	tp := got.Header.Get("traceparent")
	parts := strings.Split(tp, "-")
	if len(parts) != 4 {
		t.Fatalf("webhook traceparent = %q, want a W3C traceparent", tp)
	}
	if parts[1] != traceID {
		t.Errorf("webhook trace id = %s, want the caller's %s", parts[1], traceID)
	}
	if parts[2] == callerSpan {
		t.Errorf("webhook parent span = caller's span %s; want Switchyard's delivery span", callerSpan)
	}
}
