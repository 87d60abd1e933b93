package dispatch

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// userStub answers 503 with Retry-After to the first request of one
// messageId and 200 to everything else, recording what it accepted.
type userStub struct {
	srv      *httptest.Server
	failOnce string
	mu       sync.Mutex
	failedAt time.Time
	accepted []accepted
}

type accepted struct {
	userID, messageID string
	at                time.Time
}

func newUserStub(t *testing.T, failOnce string) *userStub {
	u := &userStub{failOnce: failOnce}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var ev struct{ UserID, MessageID string }
		_ = json.Unmarshal(raw, &ev)
		u.mu.Lock()
		defer u.mu.Unlock()
		if ev.MessageID == u.failOnce && u.failedAt.IsZero() {
			u.failedAt = time.Now()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		u.accepted = append(u.accepted, accepted{ev.UserID, ev.MessageID, time.Now()})
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *userStub) wait(t *testing.T, n int, timeout time.Duration) []accepted {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		u.mu.Lock()
		got := slices.Clone(u.accepted)
		u.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("stub accepted %d events after %v, want %d", len(got), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// order returns the accepted messageIds of one user, and when each came.
func order(got []accepted, userID string) (ids []string, at map[string]time.Time) {
	at = map[string]time.Time{}
	for _, a := range got {
		if a.userID == userID {
			ids = append(ids, a.messageID)
			at[a.messageID] = a.at
		}
	}
	return ids, at
}

// TestOrderedDeliveryPerUser is issue 5 point 6: with orderByUserId the
// events of one userId arrive in order although the first one is retried,
// and other users' events flow during that retry. Without the setting the
// retried event is overtaken (what the setting prevents).
func TestOrderedDeliveryPerUser(t *testing.T) {
	t.Parallel()
	events := []map[string]any{
		{"type": "track", "event": "A", "userId": "u-1", "messageId": "u1-1"},
		{"type": "track", "event": "B", "userId": "u-2", "messageId": "u2-1"},
		{"type": "track", "event": "C", "userId": "u-1", "messageId": "u1-2"},
		{"type": "track", "event": "D", "userId": "u-2", "messageId": "u2-2"},
		{"type": "track", "event": "E", "userId": "u-1", "messageId": "u1-3"},
		{"type": "track", "event": "F", "userId": "u-3", "messageId": "u3-1"},
	}
	e := newEnv(t)
	ordered := newUserStub(t, "u1-1")
	unordered := newUserStub(t, "u1-1")
	e.start(t, Options{},
		hookSpec("ordered", ordered.srv.URL, map[string]any{"orderByUserId": true}),
		hookSpec("unordered", unordered.srv.URL, nil))
	e.publish(t, events...)

	got := ordered.wait(t, 6, 15*time.Second)
	u1, at := order(got, "u-1")
	u2, at2 := order(got, "u-2")
	t.Run("orderByUserId: u-1's events arrive in order despite the retry of the first", func(t *testing.T) {
		if want := []string{"u1-1", "u1-2", "u1-3"}; !slices.Equal(u1, want) {
			t.Errorf("u-1 accepted %v, want %v", u1, want)
		}
		if want := []string{"u2-1", "u2-2"}; !slices.Equal(u2, want) {
			t.Errorf("u-2 accepted %v, want %v", u2, want)
		}
		if gap := at["u1-1"].Sub(ordered.failedAt); gap < time.Second {
			t.Errorf("u1-1 retried %v after its 503, want >= 1s (Retry-After)", gap)
		}
	})
	t.Run("orderByUserId: other users flow while u-1 waits for its retry", func(t *testing.T) {
		_, at3 := order(got, "u-3")
		for _, ts := range []time.Time{at2["u2-1"], at2["u2-2"], at3["u3-1"]} {
			if !ts.Before(at["u1-1"]) {
				t.Errorf("another user's event was accepted at %v, not before u-1's retry at %v", ts, at["u1-1"])
			}
		}
	})
	t.Run("without the setting the retried event is overtaken", func(t *testing.T) {
		got := unordered.wait(t, 6, 15*time.Second)
		u1, _ := order(got, "u-1")
		if len(u1) != 3 || u1[2] != "u1-1" {
			t.Errorf("u-1 accepted %v, want u1-2 and u1-3 (in any order) before the retried u1-1", u1)
		}
	})
}
