package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// startRETLSwitchyard is startSwitchyard with the embedded NATS server
// listening on TCP, so the test can read the RETL stream.
func startRETLSwitchyard(t *testing.T) (*switchyard, string) {
	t.Helper()
	natsAddr := freeAddr(t)
	s := startSwitchyard(t)
	// Restart with the NATS listener: same data dir, ports and secrets.
	s.stop(t)
	cmd := exec.Command(binPath, "dev", "--data-dir", s.dataDir, "--http-addr", s.httpAddr, "--grpc-addr", s.grpcAddr, "--nats-addr", natsAddr)
	cmd.Env, cmd.Stdout, cmd.Stderr, cmd.WaitDelay = s.env, s.logs, s.logs, 5*time.Second
	fmt.Fprintf(s.logs, "=== e2e: starting %s\n", strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start switchyard: %v", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { s.exitErr = cmd.Wait(); close(done) }(s.done)
	deadline := time.Now().Add(readyTimeout)
	for {
		resp, err := s.client.Get(s.baseURL() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("switchyard with --nats-addr not ready after %v", readyTimeout)
		}
		time.Sleep(pollInterval)
	}
	return s, "nats://" + natsAddr
}

// retlDeliveryStandIn does, for one destination, what Delivery must do
// with the RETL stream (see services/reverseetl/README.md): a durable
// consumer on retl.record.<ws>.<dest>.*, one webhook POST per record,
// a RecordResult on retl.result.<ws>.<sync>, then the ack. It lives in
// the test only until Delivery consumes RETL.
func retlDeliveryStandIn(t *testing.T, natsURL, workspaceID, destinationID, hookURL string) {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(t.Context(), "RETL", natsjs.ConsumerConfig{
		Durable: "delivery-retl-" + destinationID, AckPolicy: natsjs.AckExplicitPolicy,
		FilterSubject: "retl.record." + workspaceID + "." + destinationID + ".*",
	})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m natsjs.Msg) {
		// The record, as protojson: the fields Delivery needs.
		var rec struct {
			WorkspaceID string `json:"workspaceId"`
			SyncID      string `json:"syncId"`
			RunID       string `json:"runId"`
			RecordID    string `json:"recordId"`
			Operation   string `json:"operation"`
			Attempt     int    `json:"attempt"`
		}
		if err := json.Unmarshal(m.Data(), &rec); err != nil {
			t.Errorf("decode RETL record: %v", err)
			_ = m.Term()
			return
		}
		// The webhook receiver keys requests by messageId: use Nats-Msg-Id.
		body := append([]byte(`{"messageId":"`+m.Headers().Get("Nats-Msg-Id")+`","type":"retl_record","record":`), append(m.Data(), '}')...)
		resp, err := http.Post(hookURL, "application/json", bytes.NewReader(body))
		delivered := err == nil && resp.StatusCode/100 == 2
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		res, _ := json.Marshal(map[string]any{"workspaceId": rec.WorkspaceID, "syncId": rec.SyncID, "runId": rec.RunID,
			"recordId": rec.RecordID, "operation": rec.Operation, "delivered": delivered, "destinationId": destinationID, "attempt": max(rec.Attempt, 1)})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := js.Publish(ctx, "retl.result."+rec.WorkspaceID+"."+rec.SyncID, res); err != nil {
			t.Errorf("publish result: %v", err)
		}
		_ = m.Ack()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
}

// TestRETLWarehouseUsersToWebhook: users identified through the Tracking
// API land in the warehouse's users table; a model over it and two syncs
// (added or updated; deleted) to a webhook deliver the added users, then
// the changed one, then the deleted one, each exactly once.
func TestRETLWarehouseUsersToWebhook(t *testing.T) {
	s, natsURL := startRETLSwitchyard(t)
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
	retlDeliveryStandIn(t, natsURL, s.Boot.WorkspaceID, destID, hook.URL())

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
	// records returns "op:userId:plan" of every accepted RETL request.
	records := func(want int) []string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var got []string
			for _, reqs := range hook.accepted() {
				for _, r := range reqs {
					if r.Body["type"] != "retl_record" {
						continue
					}
					rec, _ := r.Body["record"].(map[string]any)
					f, _ := rec["fields"].(map[string]any)
					got = append(got, fmt.Sprintf("%v:%v:%v", rec["operation"], rec["recordId"], f["plan"]))
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
