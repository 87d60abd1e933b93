package dispatch

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"
)

// healthyLatencies publishes n events at about rate/s and returns each
// event's publish-to-receipt latency at the healthy stub.
func healthyLatencies(t *testing.T, e *env, healthy *stub, prefix string, n, rate int) []time.Duration {
	t.Helper()
	before := len(healthy.attempts())
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := range n {
		<-tick.C
		e.publish(t, map[string]any{"type": "track", "event": "Tick", "userId": fmt.Sprintf("u-%d", i%10),
			"messageId": fmt.Sprintf("%s-%d", prefix, i), "properties": map[string]any{"sentNs": time.Now().UnixNano()}})
	}
	got := healthy.waitAttempts(t, before+n, 30*time.Second)[before:]
	var lat []time.Duration
	seen := map[string]bool{}
	for _, a := range got {
		var ev struct {
			MessageID  string `json:"messageId"`
			Properties struct {
				SentNs int64 `json:"sentNs"`
			} `json:"properties"`
		}
		if err := json.Unmarshal(a.Body, &ev); err != nil {
			t.Fatal(err)
		}
		if seen[ev.MessageID] {
			t.Errorf("healthy destination got %s twice", ev.MessageID)
		}
		seen[ev.MessageID] = true
		lat = append(lat, a.At.Sub(time.Unix(0, ev.Properties.SentNs)))
	}
	slices.Sort(lat)
	return lat
}

func pct(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[min(len(lat)-1, int(q*float64(len(lat))))]
}

// TestIsolation checks that a destination answering 500 and one that
// hangs do not slow a healthy destination on the same source: the healthy
// one gets every event once, and its latency is reported (not asserted:
// timing on a shared 2-core machine is noise).
func TestIsolation(t *testing.T) {
	t.Parallel()
	const n, rate = 300, 150
	e := newEnv(t)
	healthy := newStub(t)
	failing := newStub(t)
	for range 10000 {
		failing.script = append(failing.script, step{Status: 500})
	}
	hanging := newStub(t)
	hanging.hang = true

	e.start(t, Options{SendTimeout: 3 * time.Second}, hookSpec("healthy", healthy.srv.URL, nil))
	alone := healthyLatencies(t, e, healthy, "alone", n, rate)

	e.start(t, Options{SendTimeout: 3 * time.Second},
		hookSpec("failing", failing.srv.URL, nil), hookSpec("hanging", hanging.srv.URL, nil))
	withBad := healthyLatencies(t, e, healthy, "bad", n, rate)

	if len(alone) != n || len(withBad) != n {
		t.Fatalf("healthy got %d and %d events, want %d each", len(alone), len(withBad), n)
	}
	if len(failing.attempts()) == 0 || len(hanging.attempts()) == 0 {
		t.Fatalf("the bad destinations got no traffic (failing %d, hanging %d)", len(failing.attempts()), len(hanging.attempts()))
	}
	t.Logf("healthy destination, %d events at %d/s: alone p50 %v p99 %v; next to a 500 and a hanging destination p50 %v p99 %v (failing got %d requests, hanging %d)",
		n, rate, pct(alone, 0.5), pct(alone, 0.99), pct(withBad, 0.5), pct(withBad, 0.99), len(failing.attempts()), len(hanging.attempts()))
}
