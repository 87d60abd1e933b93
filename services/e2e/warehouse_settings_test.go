package e2e

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
)

// syncEntry is one entry of GET /api/v1/warehouses/{id}/syncs.
type syncEntry struct {
	ID           string         `json:"id"`
	Trigger      string         `json:"trigger"`
	Status       string         `json:"status"`
	StartedAt    string         `json:"startedAt"`
	FinishedAt   string         `json:"finishedAt"`
	RowsPerTable map[string]any `json:"rowsPerTable"`
	Errors       []string       `json:"errors"`
}

// finished reports whether the sync ended.
func (e syncEntry) finished() bool { return e.Status != "" && e.Status != "SYNC_STATUS_RUNNING" }

// waitSyncs polls warehouse id's sync history (newest first) until done accepts it, and fails
// the test after warehouseWait.
func (s *switchyard) waitSyncs(t *testing.T, id string, what string, done func([]syncEntry) bool) []syncEntry {
	t.Helper()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	deadline := time.After(warehouseWait)
	for {
		res := s.admin(t, http.MethodGet, "/api/v1/warehouses/"+id+"/syncs", nil)
		if res.Status != http.StatusOK {
			t.Fatalf("list syncs: status %d: %s", res.Status, res.Body)
		}
		var out struct {
			Syncs []syncEntry `json:"syncs"`
		}
		decodeJSON(t, res.Body, &out)
		if done(out.Syncs) {
			return out.Syncs
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("sync history: %s not seen after %v; last: %s", what, warehouseWait, truncate(res.Body, 4000))
		}
	}
}

// TestWarehouseSettings creates a PostgreSQL warehouse through REST with Warehouse's settings
// (interval schedule of an hour, the pages table disabled), sends a track and a page with the
// real SDK, asks for "sync now" and checks that the manual sync loaded the track and that no
// pages table exists. Settings Warehouse could not run with are refused by Catalog with 400.
func TestWarehouseSettings(t *testing.T) {
	t.Parallel()
	// The database first, so that it is dropped after the process stopped (cleanups run last
	// registered first).
	dsn := testenv.Postgres(t)
	s := startSwitchyard(t)

	t.Run("a setting Warehouse cannot run with is refused", func(t *testing.T) {
		res := s.admin(t, http.MethodPost, "/api/v1/warehouses", map[string]any{
			"name": "pg-bad", "type": "WAREHOUSE_TYPE_POSTGRES", "sourceIds": []string{s.Boot.SourceID},
			"settings": map[string]any{"dsn": dsn, "schedule": "interval"},
		})
		var e struct {
			Code, Message, Reason, Field string
		}
		decodeJSON(t, res.Body, &e)
		if res.Status != http.StatusBadRequest || e.Code != "INVALID_ARGUMENT" || e.Reason != "CATALOG_REQUIRED" ||
			e.Field != "settings.interval_seconds" || e.Message == "" {
			t.Fatalf("interval without interval_seconds: status %d %+v, want 400 INVALID_ARGUMENT CATALOG_REQUIRED settings.interval_seconds", res.Status, e)
		}
	})

	res := s.admin(t, http.MethodPost, "/api/v1/warehouses", map[string]any{
		"name": "pg", "type": "WAREHOUSE_TYPE_POSTGRES", "sourceIds": []string{s.Boot.SourceID},
		"settings": map[string]any{"dsn": dsn, "schedule": "interval", "interval_seconds": 3600, "disabled_tables": []string{"pages"}},
	})
	if res.Status != http.StatusOK {
		t.Fatalf("create warehouse: status %d: %s", res.Status, res.Body)
	}
	var created struct {
		Warehouse struct {
			ID       string         `json:"id"`
			Settings map[string]any `json:"settings"`
		} `json:"warehouse"`
	}
	decodeJSON(t, res.Body, &created)
	whID, set := created.Warehouse.ID, created.Warehouse.Settings
	if whID == "" || set["schedule"] != "interval" || set["dsn"] != "••••••" {
		t.Fatalf("created warehouse = %s", res.Body)
	}
	if tables, _ := set["disabled_tables"].([]any); !slices.Equal(tables, []any{"pages"}) {
		t.Fatalf("created warehouse's disabled_tables = %v", set["disabled_tables"])
	}

	// The interval schedule syncs once at start. Once that sync ended, the events sent next
	// wait for the next one: the hour's tick or "sync now".
	s.waitSyncs(t, whID, "the start-up interval sync", func(ss []syncEntry) bool {
		return slices.ContainsFunc(ss, func(e syncEntry) bool { return e.Trigger == "interval" && e.finished() })
	})

	evs := loadEvents(t, "pipeline_events.json")
	track := evs[slices.IndexFunc(evs, func(e event) bool { return e["type"] == "track" })]
	page := evs[slices.IndexFunc(evs, func(e event) bool { return e["type"] == "page" })]
	sendWithSDK(t, s, []event{track, page})

	res = s.admin(t, http.MethodPost, "/api/v1/warehouses/"+whID+"/syncs", map[string]any{})
	if res.Status != http.StatusOK {
		t.Fatalf("sync now: status %d: %s", res.Status, res.Body)
	}
	var run struct {
		Schedule string `json:"schedule"`
		Started  bool   `json:"started"`
	}
	decodeJSON(t, res.Body, &run)
	if run.Schedule != "interval" || !run.Started {
		t.Fatalf("sync now = %s, want schedule interval, started", res.Body)
	}

	syncs := s.waitSyncs(t, whID, "a finished manual sync", func(ss []syncEntry) bool {
		return slices.ContainsFunc(ss, func(e syncEntry) bool { return e.Trigger == "manual" && e.finished() })
	})
	manual := syncs[slices.IndexFunc(syncs, func(e syncEntry) bool { return e.Trigger == "manual" })]
	t.Run("the manual sync loaded the track and no page", func(t *testing.T) {
		if manual.Status != "SYNC_STATUS_SUCCESS" || manual.FinishedAt == "" || len(manual.Errors) != 0 {
			t.Errorf("manual sync = %+v, want SYNC_STATUS_SUCCESS, finished, no errors", manual)
		}
		if n, ok := manual.RowsPerTable["http_api.tracks"]; !ok || asFloat(t, n) != 1 {
			t.Errorf("manual sync rowsPerTable = %v, want http_api.tracks: 1", manual.RowsPerTable)
		}
		if _, ok := manual.RowsPerTable["http_api.pages"]; ok {
			t.Errorf("manual sync wrote pages: %v", manual.RowsPerTable)
		}
		for _, e := range syncs {
			if e.Trigger == "interval" && len(e.RowsPerTable) != 0 {
				t.Errorf("an interval sync loaded rows, so the manual one was not the one that loaded: %+v", e)
			}
		}
	})

	query := func(sql string) queryResult {
		t.Helper()
		res := s.admin(t, http.MethodPost, "/api/v1/warehouses/"+whID+"/query", map[string]any{"sql": sql})
		if res.Status != http.StatusOK {
			t.Fatalf("query %q: status %d: %s", sql, res.Status, res.Body)
		}
		var qr queryResult
		decodeJSON(t, res.Body, &qr)
		return qr
	}
	t.Run("the track's row is in the warehouse", func(t *testing.T) {
		qr := query("select id, user_id, event_text from http_api.tracks")
		if len(qr.Rows) != 1 {
			t.Fatalf("http_api.tracks rows = %v, want the one track", qr.Rows)
		}
		wantColumns(t, "http_api.tracks", qr.Rows[0], map[string]any{
			"id": track.messageID(), "user_id": track["userId"], "event_text": track["event"],
		})
	})
	t.Run("there is no pages table", func(t *testing.T) {
		qr := query("select table_name from information_schema.tables where table_schema = 'http_api' order by table_name")
		var tables []string
		for _, r := range qr.Rows {
			name, _ := r["table_name"].(string)
			tables = append(tables, name)
		}
		if slices.Contains(tables, "pages") || !slices.Contains(tables, "tracks") {
			t.Errorf("tables of http_api = %v, want tracks and no pages", tables)
		}
	})
}
