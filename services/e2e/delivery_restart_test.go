package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// dedupeReceiver is a webhook endpoint that drops repeats by the
// Idempotency-Key header, as the issue asks receivers to do. While failing
// it answers 503 to everything.
type dedupeReceiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	failing  bool
	attempts map[string]int // per key, every request
	accepted map[string]int // per key, 2xx answers
}

func newDedupeReceiver(t *testing.T) *dedupeReceiver {
	t.Helper()
	r := &dedupeReceiver{failing: true, attempts: map[string]int{}, accepted: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		key := req.Header.Get("Idempotency-Key")
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts[key]++
		if r.failing {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		r.accepted[key]++
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *dedupeReceiver) snapshot() (attempts, accepted map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, b := map[string]int{}, map[string]int{}
	for k, v := range r.attempts {
		a[k] = v
	}
	for k, v := range r.accepted {
		b[k] = v
	}
	return a, b
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached after %v", what, timeout)
		}
		time.Sleep(pollInterval)
	}
}

// TestDeliverySIGKILLMidRetry kills the real binary with SIGKILL while
// every event of a webhook is waiting for a retry, starts it again on the
// same data dir, and checks that every event is delivered and that the
// receiver, deduplicating by Idempotency-Key, saw each event once.
func TestDeliverySIGKILLMidRetry(t *testing.T) {
	t.Parallel()
	s := startSwitchyard(t)
	hook := newDedupeReceiver(t)
	s.createWebhookDestination(t, "kill-hook", hook.srv.URL+"/hook")

	evs := loadEvents(t, "delivery_kill_events.json")
	ids := messageIDs(evs, "", nil)
	sendWithSDK(t, s, evs)

	// Mid-retry: every event was tried and answered 503.
	waitFor(t, "every event attempted once", deliveryWait, func() bool {
		att, _ := hook.snapshot()
		for _, id := range ids {
			if att[id] == 0 {
				return false
			}
		}
		return true
	})

	fmt.Fprintf(s.logs, "=== e2e: sending SIGKILL\n")
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	<-s.done
	s.cmd = nil
	hook.mu.Lock()
	hook.failing = false
	hook.mu.Unlock()
	s.start(t)

	waitFor(t, "every event accepted after the restart", deliveryWait+30*time.Second, func() bool {
		_, acc := hook.snapshot()
		for _, id := range ids {
			if acc[id] == 0 {
				return false
			}
		}
		return true
	})
	att, acc := hook.snapshot()
	repeats := 0
	for _, id := range ids {
		if acc[id] == 0 {
			t.Errorf("messageId %s never accepted", id)
		}
		repeats += acc[id] - 1
	}
	// After dedupe by key the receiver holds each event exactly once.
	if len(acc) != len(ids) {
		t.Errorf("receiver saw %d distinct idempotency keys, want %d: %v", len(acc), len(ids), acc)
	}
	t.Logf("%d events: %d requests in all, %d accepted repeats dropped by the receiver's dedupe", len(ids), sum(att), repeats)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
