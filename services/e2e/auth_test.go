package e2e

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestAuth checks that the REST API, the Tracking API and the warehouse query
// endpoint reject what they must, with the documented status codes, and accept
// the bootstrap credentials.
func TestAuth(t *testing.T) {
	t.Parallel()
	s := startSwitchyard(t)

	validBatch := map[string]any{
		"batch": []map[string]any{{
			"type":      "track",
			"userId":    "user-auth",
			"event":     "Auth Probe",
			"messageId": "e2e-auth-01",
		}},
	}

	t.Run("REST without token is 401", func(t *testing.T) {
		res := s.request(t, http.MethodGet, "/api/v1/destinations", nil, nil)
		if res.Status != http.StatusUnauthorized {
			t.Errorf("GET /api/v1/destinations without token: status %d, want 401: %s", res.Status, res.Body)
		}
	})

	t.Run("REST with a wrong token is 401", func(t *testing.T) {
		res := s.request(t, http.MethodGet, "/api/v1/destinations", nil, bearer("not-"+s.Boot.AdminToken))
		if res.Status != http.StatusUnauthorized {
			t.Errorf("GET /api/v1/destinations with a wrong token: status %d, want 401: %s", res.Status, res.Body)
		}
	})

	t.Run("REST with the admin token is 200", func(t *testing.T) {
		res := s.admin(t, http.MethodGet, "/api/v1/destinations", nil)
		if res.Status != http.StatusOK {
			t.Errorf("GET /api/v1/destinations with the admin token: status %d, want 200: %s", res.Status, res.Body)
		}
	})

	t.Run("Tracking API with an unknown write key is 401", func(t *testing.T) {
		res := s.request(t, http.MethodPost, "/v1/batch", validBatch, basicWriteKey("unknown-"+s.Boot.WriteKey))
		if res.Status != http.StatusUnauthorized {
			t.Errorf("POST /v1/batch with an unknown write key: status %d, want 401: %s", res.Status, res.Body)
		}
	})

	t.Run("Tracking API with the write key is 200 success", func(t *testing.T) {
		res := s.request(t, http.MethodPost, "/v1/batch", validBatch, basicWriteKey(s.Boot.WriteKey))
		if res.Status != http.StatusOK {
			t.Fatalf("POST /v1/batch: status %d, want 200: %s", res.Status, res.Body)
		}
		var out struct {
			Success *bool `json:"success"`
		}
		if err := json.Unmarshal(res.Body, &out); err != nil || out.Success == nil || !*out.Success {
			t.Errorf("POST /v1/batch: body %s, want {\"success\":true}", res.Body)
		}
	})

	t.Run("Tracking API with invalid JSON is 400 with code and message", func(t *testing.T) {
		res := s.request(t, http.MethodPost, "/v1/batch", `{"batch":[{"type":"track",`, basicWriteKey(s.Boot.WriteKey))
		if res.Status != http.StatusBadRequest {
			t.Fatalf("POST /v1/batch with invalid JSON: status %d, want 400: %s", res.Status, res.Body)
		}
		var out struct {
			Code    any    `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(res.Body, &out); err != nil {
			t.Fatalf("400 body is not JSON: %v: %s", err, res.Body)
		}
		if out.Code == nil || out.Code == "" || out.Message == "" {
			t.Errorf("400 body %s: want non-empty \"code\" and \"message\"", res.Body)
		}
	})

	t.Run("query without token is 401", func(t *testing.T) {
		res := s.request(t, http.MethodPost, s.queryPath(), map[string]any{"sql": "select 1 as one"}, nil)
		if res.Status != http.StatusUnauthorized {
			t.Errorf("query without token: status %d, want 401: %s", res.Status, res.Body)
		}
	})

	t.Run("read-only query is 200", func(t *testing.T) {
		qr := s.query(t, "select 1 as one")
		if len(qr.Rows) != 1 || asFloat(t, qr.Rows[0]["one"]) != 1 {
			t.Errorf("select 1 as one: rows %v, want [{one: 1}]", qr.Rows)
		}
	})

	for _, sql := range []string{
		"delete from http_api.tracks",
		"create table http_api.e2e_intruder (a integer)",
		"drop schema http_api cascade",
	} {
		t.Run("query "+sql+" is 400", func(t *testing.T) {
			res, _ := s.tryQuery(t, sql)
			if res.Status != http.StatusBadRequest {
				t.Errorf("query %q: status %d, want 400: %s", sql, res.Status, res.Body)
			}
		})
	}
}
