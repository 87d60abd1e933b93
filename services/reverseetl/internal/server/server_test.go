package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	reverseetlv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/reverseetl/v1"
	"github.com/switchyardhq/switchyard/services/internal/platform/auth"
	"github.com/switchyardhq/switchyard/services/internal/platform/status"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/events"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/runner"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/server"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/store"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
)

const (
	ws   = "ws_1"
	wh   = "wh_1"
	dest = "dest_1"
)

// config is the workspace configuration the service sees: one warehouse
// (a real engine) and one destination.
type config struct{ e sqlengine.Engine }

func (c config) Engine(w, id string) (sqlengine.Engine, error) {
	if w != ws || id != wh {
		return nil, fmt.Errorf("warehouse %s not found", id)
	}
	return c.e, nil
}
func (c config) HasWarehouse(w, id string) bool   { return w == ws && id == wh }
func (c config) HasDestination(w, id string) bool { return w == ws && id == dest }

// gate blocks publishing while closed is false, so a run can be cancelled
// mid-way.
type gate struct {
	pub     runner.Publisher
	mu      sync.Mutex
	blocked bool
	waiting chan struct{}
}

func (g *gate) Publish(ctx context.Context, msgs []*nats.Msg) error {
	g.mu.Lock()
	blocked := g.blocked
	g.mu.Unlock()
	if blocked {
		close(g.waiting)
		<-ctx.Done()
		return ctx.Err()
	}
	return g.pub.Publish(ctx, msgs)
}

type env struct {
	t    *testing.T
	ctx  context.Context
	e    sqlengine.Engine
	js   natsjs.JetStream
	srv  *server.Server
	run  *runner.Runner
	gate *gate
	recv natsjs.ConsumeContext
	mu   sync.Mutex
	got  []*reverseetlv1.Record
	hdrs []nats.Header
}

func newEnv(t *testing.T, e sqlengine.Engine) *env {
	t.Helper()
	_, conn := testenv.NATS(t)
	ctx := auth.WithPrincipal(t.Context(), &catalogv1.Principal{WorkspaceId: ws, UserId: "usr_1"})
	if err := streams.EnsureRETL(ctx, conn.JS, streams.DefaultOptions); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, conn.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	g := &gate{pub: &events.Publisher{JS: conn.JS}}
	base, cancel := context.WithCancel(context.Background())
	r := runner.New(base, st, g, config{e}, logger)
	r.PageSize = 2
	resultsCtx, stopResults := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.ConsumeResults(resultsCtx, conn.JS) }()
	t.Cleanup(func() { stopResults(); <-done; r.Stop(); cancel() })
	v := &env{t: t, ctx: ctx, e: e, js: conn.JS, run: r, gate: g,
		srv: &server.Server{Store: st, Runner: r, Engines: config{e}, Catalog: config{e}, NewID: func(p string) string { return p + "_" + fmt.Sprint(time.Now().UnixNano()) }}}
	// The test receiver: what Delivery's consumer of dest_1 would read.
	cons, err := conn.JS.OrderedConsumer(ctx, streams.RETL, natsjs.OrderedConsumerConfig{FilterSubjects: []string{streams.RETLRecordFilter(ws, dest)}})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m natsjs.Msg) {
		rec, err := events.DecodeRecord(m.Data())
		if err != nil {
			t.Errorf("decode record: %v", err)
			return
		}
		v.mu.Lock()
		v.got = append(v.got, rec)
		v.hdrs = append(v.hdrs, nats.Header(m.Headers()))
		v.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return v
}

func (v *env) exec(q string) {
	v.t.Helper()
	if _, err := v.e.DB().ExecContext(v.ctx, q); err != nil {
		v.t.Fatalf("%s: %v", q, err)
	}
}

// waitRun polls the run until it is no longer in progress.
func (v *env) waitRun(syncID, runID string) *reverseetlv1.SyncRun {
	v.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := v.srv.GetSyncRun(v.ctx, &reverseetlv1.GetSyncRunRequest{SyncId: syncID, RunId: runID})
		if err != nil {
			v.t.Fatal(err)
		}
		if resp.GetRun().GetStatus() != reverseetlv1.SyncRunStatus_SYNC_RUN_STATUS_RUNNING {
			return resp.GetRun()
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("run %s still in progress", runID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncNow triggers a run and waits for its end and for its records.
func (v *env) syncNow(syncID string) (*reverseetlv1.SyncRun, []*reverseetlv1.Record) {
	v.t.Helper()
	v.mu.Lock()
	before := len(v.got)
	v.mu.Unlock()
	// The previous run's record says it ended a moment before the runner
	// frees the sync (FailedPrecondition "already has a run in progress"
	// meanwhile): retry briefly, as a client would.
	var resp *reverseetlv1.TriggerSyncRunResponse
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		resp, err = v.srv.TriggerSyncRun(v.ctx, &reverseetlv1.TriggerSyncRunRequest{SyncId: syncID})
		if grpcstatus.Code(err) != codes.FailedPrecondition || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		v.t.Fatal(err)
	}
	run := v.waitRun(syncID, resp.GetRun().GetId())
	deadline := time.Now().Add(10 * time.Second)
	for {
		v.mu.Lock()
		n := len(v.got) - before
		out := slices.Clone(v.got[before:])
		v.mu.Unlock()
		if int64(n) >= run.GetPublished() {
			return run, out
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("received %d records, run published %d", n, run.GetPublished())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ops(recs []*reverseetlv1.Record) []string {
	out := []string{}
	for _, r := range recs {
		out = append(out, events.OpName(r.GetOperation())+":"+r.GetRecordId())
	}
	sort.Strings(out)
	return out
}

func forEachEngine(t *testing.T, fn func(t *testing.T, e sqlengine.Engine)) {
	for _, name := range []string{"duckdb", "postgres"} {
		t.Run(name, func(t *testing.T) {
			var e sqlengine.Engine
			var err error
			if name == "duckdb" {
				e, err = sqlengine.OpenDuckDB(filepath.Join(t.TempDir(), "wh.duckdb"))
			} else {
				e, err = sqlengine.OpenPostgres(testenv.Postgres(t))
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.Close() })
			fn(t, e)
		})
	}
}

func TestModelValidationAndPreview(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e sqlengine.Engine) {
		v := newEnv(t, e)
		v.exec("CREATE SCHEMA app")
		v.exec("CREATE TABLE app.users (id BIGINT, email TEXT)")
		for i := range 12 {
			v.exec(fmt.Sprintf("INSERT INTO app.users VALUES (%d, 'u%d@x')", i, i))
		}
		for _, tc := range []struct {
			name, sql, key, reason, field string
		}{
			{"a query that does not run", "SELECT * FROM app.nope", "id", "REVERSE_ETL_QUERY_FAILED", "model.sql"},
			{"a missing unique column", "SELECT id, email FROM app.users", "user_id", "REVERSE_ETL_UNIQUE_KEY_NOT_FOUND", "model.uniqueKey"},
			{"a write", "DELETE FROM app.users", "id", "REVERSE_ETL_SQL_NOT_READ_ONLY", "model.sql"},
			{"two statements", "SELECT 1 AS id; SELECT 2 AS id", "id", "REVERSE_ETL_SQL_NOT_READ_ONLY", "model.sql"},
			{"no unique key", "SELECT id FROM app.users", "", "REVERSE_ETL_UNIQUE_KEY_REQUIRED", "model.uniqueKey"},
		} {
			t.Run("rejects "+tc.name, func(t *testing.T) {
				_, err := v.srv.CreateModel(v.ctx, &reverseetlv1.CreateModelRequest{Model: &reverseetlv1.Model{Name: "m", WarehouseId: wh, Sql: tc.sql, UniqueKey: tc.key}})
				if status.Reason(err) != tc.reason || status.Field(err) != tc.field {
					t.Fatalf("err = %v (reason %q field %q), want %s on %s", err, status.Reason(err), status.Field(err), tc.reason, tc.field)
				}
			})
		}
		t.Run("saves a valid model with its columns", func(t *testing.T) {
			resp, err := v.srv.CreateModel(v.ctx, &reverseetlv1.CreateModelRequest{Model: &reverseetlv1.Model{Name: "users", WarehouseId: wh, Sql: "SELECT id, email FROM app.users;", UniqueKey: "id"}})
			if err != nil {
				t.Fatal(err)
			}
			m := resp.GetModel()
			if !slices.Equal(m.GetColumns(), []string{"id", "email"}) || m.GetWorkspaceId() != ws || m.GetSql() != "SELECT id, email FROM app.users" {
				t.Fatalf("model = %v", m)
			}
			prev, err := v.srv.PreviewModel(v.ctx, &reverseetlv1.PreviewModelRequest{ModelId: m.GetId()})
			if err != nil {
				t.Fatal(err)
			}
			if len(prev.GetRows()) != 10 || !slices.Equal(prev.GetColumns(), []string{"id", "email"}) {
				t.Fatalf("preview: %d rows, columns %v; want 10 rows of id, email", len(prev.GetRows()), prev.GetColumns())
			}
		})
	})
}

func TestSyncRuns(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e sqlengine.Engine) {
		v := newEnv(t, e)
		v.exec("CREATE SCHEMA app")
		v.exec("CREATE TABLE app.users (id BIGINT, email TEXT, plan TEXT)")
		v.exec("INSERT INTO app.users VALUES (1, 'a@x', 'free'), (2, 'b@x', 'pro'), (3, 'c@x', 'free')")
		m, err := v.srv.CreateModel(v.ctx, &reverseetlv1.CreateModelRequest{Model: &reverseetlv1.Model{Name: "users", WarehouseId: wh, Sql: "SELECT id, email, plan FROM app.users", UniqueKey: "id"}})
		if err != nil {
			t.Fatal(err)
		}
		modelID := m.GetModel().GetId()
		t.Run("rejects a bad sync", func(t *testing.T) {
			for _, tc := range []struct {
				name   string
				sync   *reverseetlv1.Sync
				reason string
			}{
				{"unknown column", &reverseetlv1.Sync{ModelId: modelID, DestinationId: dest, Mapping: map[string]string{"x": "nope"}}, "REVERSE_ETL_MAPPING_COLUMN_NOT_FOUND"},
				{"bad cron", &reverseetlv1.Sync{ModelId: modelID, DestinationId: dest, ScheduleDefinition: &reverseetlv1.Schedule{Strategy: reverseetlv1.ScheduleStrategy_SCHEDULE_STRATEGY_CRON, Cron: "61 * * * *"}}, "REVERSE_ETL_SCHEDULE_INVALID"},
				{"bad zone", &reverseetlv1.Sync{ModelId: modelID, DestinationId: dest, ScheduleDefinition: &reverseetlv1.Schedule{Strategy: reverseetlv1.ScheduleStrategy_SCHEDULE_STRATEGY_CRON, Cron: "0 6 * * *", TimeZone: "Nowhere/City"}}, "REVERSE_ETL_SCHEDULE_INVALID"},
				{"unknown destination", &reverseetlv1.Sync{ModelId: modelID, DestinationId: "dest_x"}, "REVERSE_ETL_DESTINATION_NOT_FOUND"},
			} {
				if _, err := v.srv.CreateSync(v.ctx, &reverseetlv1.CreateSyncRequest{Sync: tc.sync}); status.Reason(err) != tc.reason {
					t.Errorf("%s: err = %v, want %s", tc.name, err, tc.reason)
				}
			}
		})
		created, err := v.srv.CreateSync(v.ctx, &reverseetlv1.CreateSyncRequest{Sync: &reverseetlv1.Sync{
			ModelId: modelID, DestinationId: dest, Enabled: true,
			Mapping:            map[string]string{"email_address": "email", "tier": "plan"},
			RecordSelection:    reverseetlv1.RecordSelection_RECORD_SELECTION_UNSPECIFIED,
			ScheduleDefinition: &reverseetlv1.Schedule{Strategy: reverseetlv1.ScheduleStrategy_SCHEDULE_STRATEGY_CRON, Cron: "0 6 * * *", TimeZone: "Europe/Paris"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		sy := created.GetSync()
		if sy.GetSchedule() != "CRON_TZ=Europe/Paris 0 6 * * *" || sy.GetNextRunAt() == nil || sy.GetRecordSelection() != reverseetlv1.RecordSelection_RECORD_SELECTION_ADDED_OR_UPDATED {
			t.Fatalf("created sync = %v", sy)
		}

		t.Run("first run sends every row as added, mapped, with idempotent message ids", func(t *testing.T) {
			run, recs := v.syncNow(sy.GetId())
			if run.GetStatus() != reverseetlv1.SyncRunStatus_SYNC_RUN_STATUS_SUCCEEDED || run.GetAdded() != 3 || run.GetExtractCount() != 3 || run.GetPublished() != 3 {
				t.Fatalf("run = %v", run)
			}
			if got := ops(recs); !slices.Equal(got, []string{"added:1", "added:2", "added:3"}) {
				t.Fatalf("records = %v", got)
			}
			r := recs[0]
			f := r.GetFields().AsMap()
			if len(f) != 2 || f["email_address"] == nil || f["tier"] == nil || r.GetDestinationId() != dest || r.GetWorkspaceId() != ws || r.GetRunId() != run.GetId() || r.GetAttempt() != 1 || r.GetAction() != "send" {
				t.Fatalf("record = %v", r)
			}
			v.mu.Lock()
			h := v.hdrs[0]
			v.mu.Unlock()
			if want := sy.GetId() + ":" + run.GetId() + ":" + r.GetRecordId() + ":added"; h.Get("Nats-Msg-Id") != want || h.Get(events.HeaderSync) != sy.GetId() || h.Get(events.HeaderRecordOp) != "added" {
				t.Fatalf("headers = %v, want Nats-Msg-Id %s", h, want)
			}
		})

		t.Run("delivery failures are counted and retried on the next run", func(t *testing.T) {
			v.exec("UPDATE app.users SET plan = 'pro' WHERE id = 1")
			run, recs := v.syncNow(sy.GetId())
			if got := ops(recs); !slices.Equal(got, []string{"updated:1"}) || run.GetUpdated() != 1 {
				t.Fatalf("records = %v run = %v", got, run)
			}
			// Delivery reports: record 1 failed.
			msg, err := events.EncodeResult(v.ctx, &reverseetlv1.RecordResult{WorkspaceId: ws, SyncId: sy.GetId(), RunId: run.GetId(), RecordId: "1", Operation: recs[0].GetOperation(), Attempt: 1, Error: "HTTP 500", DestinationId: dest})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.js.PublishMsg(v.ctx, msg); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				got, err := v.srv.GetSyncRun(v.ctx, &reverseetlv1.GetSyncRunRequest{SyncId: sy.GetId(), RunId: run.GetId()})
				if err != nil {
					t.Fatal(err)
				}
				if r := got.GetRun(); r.GetFailed() == 1 {
					if r.GetStatus() != reverseetlv1.SyncRunStatus_SYNC_RUN_STATUS_FAILED || len(r.GetErrors()) != 1 || r.GetErrors()[0].GetCode() != runner.ErrDeliveryFailed || r.GetErrors()[0].GetRecordIds()[0] != "1" {
						t.Fatalf("run after the failure = %v", r)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the failure never reached the run")
				}
				time.Sleep(20 * time.Millisecond)
			}
			run, recs = v.syncNow(sy.GetId())
			if got := ops(recs); !slices.Equal(got, []string{"updated:1"}) || run.GetRetried() != 1 || recs[0].GetAttempt() != 2 {
				t.Fatalf("retry run: records %v retried %d attempt %d", got, run.GetRetried(), recs[0].GetAttempt())
			}
		})

		t.Run("a cancelled run ends cancelled and its changes come again", func(t *testing.T) {
			v.exec("UPDATE app.users SET email = 'b2@x' WHERE id = 2")
			v.gate.mu.Lock()
			v.gate.blocked, v.gate.waiting = true, make(chan struct{})
			v.gate.mu.Unlock()
			resp, err := v.srv.TriggerSyncRun(v.ctx, &reverseetlv1.TriggerSyncRunRequest{SyncId: sy.GetId()})
			if err != nil {
				t.Fatal(err)
			}
			<-v.gate.waiting
			if _, err := v.srv.TriggerSyncRun(v.ctx, &reverseetlv1.TriggerSyncRunRequest{SyncId: sy.GetId()}); status.Reason(err) != "REVERSE_ETL_SYNC_RUNNING" {
				t.Errorf("second trigger while running: %v, want REVERSE_ETL_SYNC_RUNNING", err)
			}
			c, err := v.srv.CancelSyncRun(v.ctx, &reverseetlv1.CancelSyncRunRequest{SyncId: sy.GetId(), RunId: resp.GetRun().GetId()})
			if err != nil {
				t.Fatal(err)
			}
			if c.GetRun().GetStatus() != reverseetlv1.SyncRunStatus_SYNC_RUN_STATUS_CANCELLED {
				t.Fatalf("cancelled run = %v", c.GetRun())
			}
			v.gate.mu.Lock()
			v.gate.blocked = false
			v.gate.mu.Unlock()
			_, recs := v.syncNow(sy.GetId())
			if got := ops(recs); !slices.Equal(got, []string{"updated:2"}) {
				t.Fatalf("after cancel: records %v, want [updated:2]", got)
			}
		})

		t.Run("deleted-records selection sends the id with null fields once", func(t *testing.T) {
			u, err := v.srv.UpdateSync(v.ctx, &reverseetlv1.UpdateSyncRequest{Sync: &reverseetlv1.Sync{Id: sy.GetId(), Enabled: true,
				Mapping: map[string]string{"email_address": "email", "user_id": "id"}, RecordSelection: reverseetlv1.RecordSelection_RECORD_SELECTION_DELETED}})
			if err != nil {
				t.Fatal(err)
			}
			if u.GetSync().GetScheduleDefinition().GetStrategy() != reverseetlv1.ScheduleStrategy_SCHEDULE_STRATEGY_MANUAL || u.GetSync().GetNextRunAt() != nil {
				t.Fatalf("updated sync = %v", u.GetSync())
			}
			v.exec("DELETE FROM app.users WHERE id = 3")
			_, recs := v.syncNow(sy.GetId())
			if got := ops(recs); !slices.Equal(got, []string{"deleted:3"}) {
				t.Fatalf("records %v, want [deleted:3]", got)
			}
			if f := recs[0].GetFields().AsMap(); len(f) != 2 || f["email_address"] != nil || f["user_id"] != "3" {
				t.Fatalf("deleted fields = %v, want user_id 3 and email_address null", f)
			}
			if _, recs := v.syncNow(sy.GetId()); len(recs) != 0 {
				t.Fatalf("second run re-sent %v", ops(recs))
			}
		})

		t.Run("reset sends everything as added", func(t *testing.T) {
			if _, err := v.srv.UpdateSync(v.ctx, &reverseetlv1.UpdateSyncRequest{Sync: &reverseetlv1.Sync{Id: sy.GetId(), RecordSelection: reverseetlv1.RecordSelection_RECORD_SELECTION_ADDED}}); err != nil {
				t.Fatal(err)
			}
			if _, err := v.srv.ResetSync(v.ctx, &reverseetlv1.ResetSyncRequest{SyncId: sy.GetId()}); err != nil {
				t.Fatal(err)
			}
			_, recs := v.syncNow(sy.GetId())
			if got := ops(recs); !slices.Equal(got, []string{"added:1", "added:2"}) {
				t.Fatalf("after reset: %v", got)
			}
		})

		t.Run("runs are listed newest first with their trigger", func(t *testing.T) {
			resp, err := v.srv.ListSyncRuns(v.ctx, &reverseetlv1.ListSyncRunsRequest{SyncId: sy.GetId()})
			if err != nil {
				t.Fatal(err)
			}
			var statuses []string
			for _, r := range resp.GetRuns() {
				statuses = append(statuses, r.GetStatus().String()[len("SYNC_RUN_STATUS_"):])
			}
			want := []string{"SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "CANCELLED", "SUCCEEDED", "FAILED", "SUCCEEDED"}
			if !slices.Equal(statuses, want) {
				t.Fatalf("run statuses newest first = %v, want %v", statuses, want)
			}
			list, err := v.srv.ListSyncs(v.ctx, &reverseetlv1.ListSyncsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if len(list.GetSyncs()) != 1 || list.GetLatestRuns()[sy.GetId()].GetId() != resp.GetRuns()[0].GetId() {
				t.Fatalf("ListSyncs = %v", list)
			}
		})

		t.Run("an interval schedule starts a run when due", func(t *testing.T) {
			u, err := v.srv.UpdateSync(v.ctx, &reverseetlv1.UpdateSyncRequest{Sync: &reverseetlv1.Sync{Id: sy.GetId(), Enabled: true,
				ScheduleDefinition: &reverseetlv1.Schedule{Strategy: reverseetlv1.ScheduleStrategy_SCHEDULE_STRATEGY_INTERVAL, Interval: "15m"}}})
			if err != nil {
				t.Fatal(err)
			}
			due := u.GetSync().GetNextRunAt().AsTime()
			v.run.Due(v.ctx, due.Add(-time.Second))
			if _, busy := v.run.Running(sy.GetId()); busy {
				t.Fatal("a run started before its time")
			}
			v.run.Due(v.ctx, due)
			g, err := v.srv.GetSync(v.ctx, &reverseetlv1.GetSyncRequest{SyncId: sy.GetId()})
			if err != nil {
				t.Fatal(err)
			}
			run := v.waitRun(sy.GetId(), g.GetSync().GetLastRunId())
			if run.GetTrigger() != "schedule" || !g.GetSync().GetNextRunAt().AsTime().Equal(due.Add(15*time.Minute)) {
				t.Fatalf("scheduled run trigger %q, next %v; want schedule and %v", run.GetTrigger(), g.GetSync().GetNextRunAt().AsTime(), due.Add(15*time.Minute))
			}
		})
	})
}
