package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"
)

// TestRETLWarehouseUsersToWebhook: users identified through the Tracking
// API land in the warehouse's users table; a model over it and two syncs
// (added or updated; deleted) to a webhook deliver the added users, then
// the changed one, then the deleted one, each exactly once. The records go
// the product's one way: Reverse ETL publishes them to RETL and Delivery's
// consumer of the destination sends them and reports the results.
func TestRETLWarehouseUsersToWebhook(t *testing.T) {
	s := startSwitchyard(t)
	identify := func(userID, email, plan string) {
		t.Helper()
		res := s.request(t, http.MethodPost, "/v1/identify", map[string]any{"userId": userID, "traits": map[string]any{"email": email, "plan": plan}}, basicWriteKey(s.Boot.WriteKey))
		if res.Status != http.StatusOK {
			t.Fatalf("identify: %d %s", res.Status, res.Body)
		}
	}
	waitPlan := func(userID, plan string) {
		t.Helper()
		s.pollQuery(t, fmt.Sprintf("select plan from http_api.users where id = '%s'", userID), 30*time.Second, func(q queryResult) bool {
			return len(q.Rows) == 1 && q.Rows[0]["plan"] == plan
		})
	}
	identify("u-1", "ada@example.com", "free")
	identify("u-2", "bob@example.com", "pro")
	identify("u-3", "cy@example.com", "free")
	for _, u := range []string{"u-1", "u-2"} {
		waitPlan(u, map[string]string{"u-1": "free", "u-2": "pro"}[u])
	}
	waitPlan("u-3", "free")

	hook := newWebhookReceiver(t)
	destID := s.createWebhookDestination(t, "retl hook", hook.URL())

	res := s.admin(t, http.MethodPost, "/api/v1/reverse-etl/models", map[string]any{"model": map[string]any{
		"name": "active users", "warehouseId": s.Boot.WarehouseID, "uniqueKey": "id",
		"sql": "select id, email, plan from http_api.users where plan <> 'churned'",
	}})
	if res.Status != http.StatusOK {
		t.Fatalf("create model: %d %s", res.Status, res.Body)
	}
	var model struct {
		Model struct{ ID string } `json:"model"`
	}
	decodeJSON(t, res.Body, &model)
	res = s.admin(t, http.MethodPost, "/api/v1/reverse-etl/models:preview", map[string]any{"modelId": model.Model.ID})
	var preview struct{ Rows []map[string]any }
	decodeJSON(t, res.Body, &preview)
	if res.Status != http.StatusOK || len(preview.Rows) != 3 {
		t.Fatalf("preview: %d %s", res.Status, res.Body)
	}

	newSync := func(selection string) string {
		res := s.admin(t, http.MethodPost, "/api/v1/reverse-etl/syncs", map[string]any{"sync": map[string]any{
			"modelId": model.Model.ID, "destinationId": destID, "recordSelection": selection, "enabled": true,
			"mapping":            map[string]string{"userId": "id", "email": "email", "plan": "plan"},
			"scheduleDefinition": map[string]any{"strategy": "SCHEDULE_STRATEGY_MANUAL"},
		}})
		if res.Status != http.StatusOK {
			t.Fatalf("create sync: %d %s", res.Status, res.Body)
		}
		var out struct {
			Sync struct{ ID string } `json:"sync"`
		}
		decodeJSON(t, res.Body, &out)
		return out.Sync.ID
	}
	upserts := newSync("RECORD_SELECTION_ADDED_OR_UPDATED")
	deletes := newSync("RECORD_SELECTION_DELETED")

	// syncNow runs both syncs and waits for both runs to finish.
	syncNow := func() {
		t.Helper()
		for _, id := range []string{upserts, deletes} {
			res := s.admin(t, http.MethodPost, "/api/v1/reverse-etl/syncs/"+id+"/runs", map[string]any{})
			if res.Status != http.StatusOK {
				t.Fatalf("sync now: %d %s", res.Status, res.Body)
			}
			var out struct {
				Run struct{ ID string } `json:"run"`
			}
			decodeJSON(t, res.Body, &out)
			deadline := time.Now().Add(30 * time.Second)
			for {
				res := s.admin(t, http.MethodGet, "/api/v1/reverse-etl/syncs/"+id+"/runs/"+out.Run.ID, nil)
				var run struct {
					Run struct{ Status string } `json:"run"`
				}
				decodeJSON(t, res.Body, &run)
				if run.Run.Status == "SYNC_RUN_STATUS_SUCCEEDED" {
					break
				}
				if run.Run.Status != "SYNC_RUN_STATUS_RUNNING" || time.Now().After(deadline) {
					t.Fatalf("run %s: %s", out.Run.ID, res.Body)
				}
				time.Sleep(pollInterval)
			}
		}
	}
	// records returns "op:userId:plan" of every accepted RETL request (the
	// webhook also gets the identify events of the source: a record is
	// the body with a recordId).
	records := func(want int) []string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var got []string
			for _, reqs := range hook.accepted() {
				for _, r := range reqs {
					if r.Body["recordId"] == nil {
						continue
					}
					if key := r.Header.Get("Idempotency-Key"); key != r.Body["messageId"] {
						t.Errorf("record request: Idempotency-Key %q, messageId %v", key, r.Body["messageId"])
					}
					f, _ := r.Body["fields"].(map[string]any)
					got = append(got, fmt.Sprintf("%v:%v:%v", r.Body["operation"], r.Body["recordId"], f["plan"]))
				}
			}
			sort.Strings(got)
			if len(got) >= want || time.Now().After(deadline) {
				return got
			}
			time.Sleep(pollInterval)
		}
	}

	syncNow()
	want := []string{"RECORD_OPERATION_ADDED:u-1:free", "RECORD_OPERATION_ADDED:u-2:pro", "RECORD_OPERATION_ADDED:u-3:free"}
	if got := records(3); !slices.Equal(got, want) {
		t.Fatalf("after the first run the webhook got %v, want %v", got, want)
	}

	identify("u-1", "ada@example.com", "pro")
	waitPlan("u-1", "pro")
	syncNow()
	want = append(want, "RECORD_OPERATION_UPDATED:u-1:pro")
	sort.Strings(want)
	if got := records(4); !slices.Equal(got, want) {
		t.Fatalf("after the change the webhook got %v, want %v", got, want)
	}

	identify("u-2", "bob@example.com", "churned")
	waitPlan("u-2", "churned")
	syncNow()
	want = append(want, "RECORD_OPERATION_DELETED:u-2:<nil>")
	sort.Strings(want)
	if got := records(5); !slices.Equal(got, want) {
		t.Fatalf("after the delete the webhook got %v, want %v", got, want)
	}
	// One more run sends nothing: each record went exactly once.
	syncNow()
	if got := records(6); !slices.Equal(got, want) {
		t.Fatalf("a run without changes sent more: %v", got)
	}

	// Load counts arrive from the results: the upserts sync's first run
	// delivered 3.
	res = s.admin(t, http.MethodGet, "/api/v1/reverse-etl/syncs/"+upserts+"/runs", nil)
	var runs struct {
		Runs []struct {
			Added     string `json:"added"`
			Delivered string `json:"delivered"`
		} `json:"runs"`
	}
	decodeJSON(t, res.Body, &runs)
	if len(runs.Runs) != 4 || runs.Runs[3].Added != "3" {
		t.Fatalf("runs of the upserts sync: %s", res.Body)
	}
	deadline := time.Now().Add(15 * time.Second)
	for runs.Runs[3].Delivered != "3" {
		if time.Now().After(deadline) {
			t.Fatalf("first run's delivered count never reached 3: %s", res.Body)
		}
		time.Sleep(pollInterval)
		res = s.admin(t, http.MethodGet, "/api/v1/reverse-etl/syncs/"+upserts+"/runs", nil)
		decodeJSON(t, res.Body, &runs)
	}
}
