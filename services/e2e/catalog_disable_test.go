package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// configDeadline is how fast a catalog change must reach Ingest (issue 4).
const configDeadline = time.Second

// TestCatalogSourceDisableReachesIngest proves through the real binary that
// disabling a source makes the Tracking API refuse its write key within one
// second, that re-enabling restores it, and that a revoked write key is
// refused as quickly.
func TestCatalogSourceDisableReachesIngest(t *testing.T) {
	t.Parallel()
	s := startSwitchyard(t)
	res := s.admin(t, http.MethodPost, "/api/v1/sources", map[string]any{"name": "Disable Probe", "type": "node-js"})
	if res.Status != http.StatusOK {
		t.Fatalf("create source: %d %s", res.Status, res.Body)
	}
	var created struct {
		Source struct {
			ID        string   `json:"id"`
			WriteKeys []string `json:"writeKeys"`
		} `json:"source"`
	}
	decodeJSON(t, res.Body, &created)
	id, key := created.Source.ID, created.Source.WriteKeys[0]

	n := 0
	track := func() int {
		n++
		return s.request(t, http.MethodPost, "/v1/track", map[string]any{
			"userId": "u-disable", "event": "Probe", "messageId": fmt.Sprintf("e2e-disable-%d", n),
		}, basicWriteKey(key)).Status
	}
	// waitStatus polls the Tracking API until it answers want and returns
	// how long that took after the change.
	waitStatus := func(what string, want int, changed time.Time) time.Duration {
		t.Helper()
		for {
			got := track()
			elapsed := time.Since(changed)
			if got == want {
				return elapsed
			}
			if elapsed > 5*time.Second {
				t.Fatalf("%s: Tracking API still answers %d after %v, want %d", what, got, elapsed, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitStatus("new source", http.StatusOK, time.Now())

	patch := func(body map[string]any) time.Time {
		res := s.admin(t, http.MethodPatch, "/api/v1/sources/"+id, body)
		if res.Status != http.StatusOK {
			t.Fatalf("patch %v: %d %s", body, res.Status, res.Body)
		}
		// Count from the moment the catalog acknowledged the change.
		return time.Now()
	}
	for _, step := range []struct {
		name string
		body map[string]any
		want int
	}{
		{"disable", map[string]any{"enabled": false}, http.StatusForbidden},
		{"re-enable", map[string]any{"enabled": true}, http.StatusOK},
	} {
		if took := waitStatus(step.name, step.want, patch(step.body)); took > configDeadline {
			t.Errorf("%s reached Ingest after %v, want within %v", step.name, took, configDeadline)
		} else {
			t.Logf("%s reached Ingest after %v", step.name, took)
		}
	}

	res = s.admin(t, http.MethodDelete, "/api/v1/sources/"+id+"/write-keys/"+key, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", res.Status, res.Body)
	}
	if took := waitStatus("revoke", http.StatusUnauthorized, time.Now()); took > configDeadline {
		t.Errorf("revoked key refused after %v, want within %v", took, configDeadline)
	}
}
