package e2e

import (
	"net/http"
	"testing"
)

// TestIngestCases runs ingest cases of ../shared/cases through the binary
// down to the warehouse (the parser-level assertions of every ingest case
// are in services/ingest/internal/tracking/cases_test.go).
func TestIngestCases(t *testing.T) {
	s := startSwitchyard(t)
	key := basicWriteKey(s.Boot.WriteKey)
	post := func(path string, body any) httpResult {
		t.Helper()
		return s.request(t, http.MethodPost, path, body, key)
	}
	order := map[string]any{"type": "track", "userId": "u-1007", "event": "Order Completed", "properties": map[string]any{"total": 12.5}, "messageId": "m-dup-0001"}

	t.Run("ing-07 a repeated messageId is stored once, also after a restart", func(t *testing.T) {
		if r := post("/v1/batch", map[string]any{"batch": []any{order, order}}); r.Status != 200 {
			t.Fatalf("status %d %s", r.Status, r.Body)
		}
		s.waitRowsOnce(t, "http_api.order_completed", []string{"m-dup-0001"})
		s.restart(t)
		if r := post("/v1/batch", map[string]any{"batch": []any{order, map[string]any{"type": "track", "userId": "u-1007", "event": "Order Completed", "messageId": "m-after-restart"}}}); r.Status != 200 {
			t.Fatalf("status %d %s", r.Status, r.Body)
		}
		s.waitRowsOnce(t, "http_api.order_completed", []string{"m-dup-0001", "m-after-restart"})
		s.assertRowsOnce(t, "http_api.tracks", []string{"m-dup-0001", "m-after-restart"})
	})
	t.Run("ing-05 numeric userIds are exact text", func(t *testing.T) {
		r := post("/v1/batch", map[string]any{"batch": []any{
			map[string]any{"type": "identify", "userId": 55520, "traits": map[string]any{"plan": "pro"}, "messageId": "i-1"},
			map[string]any{"type": "identify", "userId": "55520", "traits": map[string]any{"plan": "pro"}, "messageId": "i-2"},
			map[string]any{"type": "identify", "userId": 9007199254740993, "traits": map[string]any{"plan": "team"}, "messageId": "i-3"},
		}})
		if r.Status != 200 {
			t.Fatalf("status %d %s", r.Status, r.Body)
		}
		s.waitRowsOnce(t, "http_api.identifies", []string{"i-1", "i-2", "i-3"})
		row := s.oneRow(t, "select user_id from http_api.identifies where id = 'i-3'")
		if row["user_id"] != "9007199254740993" {
			t.Errorf("user_id = %v", row["user_id"])
		}
	})
	t.Run("ing-09 NUL is stripped before the warehouse", func(t *testing.T) {
		r := post("/v1/track", `{"type":"track","userId":"u-1009","event":"Note Saved","messageId":"nul-1","properties":{"note":"abc\u0000def","k\u0000ey":"v","nested":{"t":"x\u0000"}}}`)
		if r.Status != 200 {
			t.Fatalf("status %d %s", r.Status, r.Body)
		}
		s.waitRowsOnce(t, "http_api.note_saved", []string{"nul-1"})
		wantColumns(t, "note_saved", s.oneRow(t, "select note, key, nested_t from http_api.note_saved"), map[string]any{"note": "abcdef", "key": "v", "nested_t": "x"})
	})
	t.Run("ing-03 an item without identity is rejected, the other stored", func(t *testing.T) {
		r := post("/v1/batch", map[string]any{"batch": []any{
			map[string]any{"type": "track", "event": "Button Clicked", "messageId": "bc-0"},
			map[string]any{"type": "track", "anonymousId": "anon-5001", "event": "Button Clicked", "messageId": "bc-1"},
		}})
		var out struct {
			Rejected []struct {
				Index int    `json:"index"`
				Code  string `json:"code"`
			} `json:"rejected"`
		}
		decodeJSON(t, r.Body, &out)
		if r.Status != 200 || len(out.Rejected) != 1 || out.Rejected[0].Index != 0 || out.Rejected[0].Code != "missing_user_id" {
			t.Fatalf("status %d %s", r.Status, r.Body)
		}
		s.waitRowsOnce(t, "http_api.button_clicked", []string{"bc-1"})
	})
	t.Run("settings endpoint points analytics.js back here", func(t *testing.T) {
		r := s.request(t, http.MethodGet, "/v1/projects/"+s.Boot.WriteKey+"/settings", nil, nil)
		var out struct {
			Integrations map[string]map[string]any `json:"integrations"`
		}
		decodeJSON(t, r.Body, &out)
		if r.Status != 200 || out.Integrations["Segment.io"]["apiHost"] != s.httpAddr+"/v1" {
			t.Errorf("status %d %s", r.Status, r.Body)
		}
	})
}
