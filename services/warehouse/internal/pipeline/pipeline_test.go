package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
	"github.com/switchyardhq/switchyard/services/warehouse/internal/history"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	testWorkspace = "ws1"
	testSource    = "src1"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached after %v; last state: %s", what, timeout, last)
		}
		tm := time.NewTimer(50 * time.Millisecond)
		<-tm.C
	}
}

type env struct {
	t   *testing.T
	ctx context.Context
	js  natsjs.JetStream
	mgr *Manager
}

func newEnv(t *testing.T) *env {
	t.Helper()
	_, conn := testenv.NATS(t)
	if err := streams.Ensure(t.Context(), conn.JS, streams.DefaultOptions); err != nil {
		t.Fatal(err)
	}
	mgr := New(conn.JS, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); mgr.Wait() })
	e := &env{t: t, js: conn.JS, mgr: mgr}
	e.ctx = ctx
	return e
}

func (e *env) start(wh *catalogv1.Warehouse) {
	e.mgr.Reconcile(e.ctx, []*catalogv1.ConfigSnapshot{{
		Workspace:  &catalogv1.Workspace{Id: testWorkspace},
		Sources:    []*catalogv1.Source{{Id: testSource, Slug: "web-app"}},
		Warehouses: []*catalogv1.Warehouse{wh},
	}})
}

func (e *env) publish(ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		body := fmt.Sprintf(`{"type":"track","messageId":%q,"userId":"u1","event":"Order Completed","receivedAt":"2024-05-01T10:00:00Z","properties":{"total":1}}`, id)
		if _, err := jetstream.Publish(e.t.Context(), e.js, streams.EventsSubject(testWorkspace, testSource), []byte(body),
			jetstream.Headers{MsgID: id, Workspace: testWorkspace, Source: testSource, EventType: "track"}); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) count(whID, table string) (int64, error) {
	eng, err := e.mgr.Engine(whID)
	if err != nil {
		return 0, err
	}
	var n int64
	err = eng.DB().QueryRowContext(e.t.Context(), "SELECT count(*) FROM web_app."+table).Scan(&n)
	return n, err
}

func warehouse(id string, typ catalogv1.WarehouseType, settings map[string]any) *catalogv1.Warehouse {
	st, err := structpb.NewStruct(settings)
	if err != nil {
		panic(err)
	}
	return &catalogv1.Warehouse{Id: id, WorkspaceId: testWorkspace, Type: typ, Settings: st, SourceIds: []string{testSource}, Enabled: true}
}

// proxy forwards TCP connections to target until it is stopped; while stopped it refuses them
// (the port is closed) and cuts the open ones, like a warehouse that went down.
type proxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), target: target}
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
			go func() { _, _ = io.Copy(c, u); _ = c.Close() }()
		}
	}()
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *proxy) up(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.serve(ln)
}

func TestContinuousLoadsOnBothEnginesWithHistory(t *testing.T) {
	t.Parallel()
	engines := map[string]*catalogv1.Warehouse{
		"duckdb":   warehouse("wh-duck", catalogv1.WarehouseType_WAREHOUSE_TYPE_DUCKDB, map[string]any{"path": filepath.Join(t.TempDir(), "w.duckdb"), "batch_wait_ms": 50}),
		"postgres": warehouse("wh-pg", catalogv1.WarehouseType_WAREHOUSE_TYPE_POSTGRES, map[string]any{"dsn": testenv.Postgres(t), "batch_size": 3}),
	}
	for name, wh := range engines {
		t.Run(name+" loads every event once and records the sync", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.start(wh)
			e.publish("m1", "m2", "m3", "m4", "m5", "m1")
			eventually(t, 20*time.Second, "5 rows", func() (bool, string) {
				n, err := e.count(wh.GetId(), "order_completed")
				return err == nil && n == 5, fmt.Sprint(n, err)
			})
			eventually(t, 10*time.Second, "history entry", func() (bool, string) {
				syncs, _ := e.mgr.Syncs(t.Context(), wh.GetId())
				var rows, events int64
				for _, s := range syncs {
					rows += s.RowsPerTable["web_app.order_completed"]
					events += s.Events
					if s.Trigger != history.TriggerContinuous || s.Status == history.StatusFailure {
						return false, fmt.Sprintf("%+v", s)
					}
				}
				return rows == 5 && events == 5, fmt.Sprintf("%+v", syncs)
			})
		})
	}
}

func TestPostgresDownBacklogWaitsAndLoadsAfterRecovery(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u.Host)
	u.Host = p.addr
	wh := warehouse("wh-down", catalogv1.WarehouseType_WAREHOUSE_TYPE_POSTGRES, map[string]any{"dsn": u.String(), "batch_wait_ms": 50})
	e := newEnv(t)
	e.start(wh)
	e.publish("a1", "a2")
	eventually(t, 20*time.Second, "first rows", func() (bool, string) {
		n, err := e.count(wh.GetId(), "order_completed")
		return err == nil && n == 2, fmt.Sprint(n, err)
	})

	p.down()
	e.publish("b1", "b2", "b3")
	eventually(t, 20*time.Second, "the failure in the history", func() (bool, string) {
		syncs, _ := e.mgr.Syncs(t.Context(), wh.GetId())
		if len(syncs) == 0 || syncs[0].FailedAttempts == 0 {
			return false, fmt.Sprintf("%+v", syncs)
		}
		return strings.Contains(syncs[0].Errors[0], "load failed, events wait in the stream and are retried"), syncs[0].Errors[0]
	})

	p.up(t)
	eventually(t, 40*time.Second, "backlog loaded after recovery", func() (bool, string) {
		n, err := e.count(wh.GetId(), "order_completed")
		return err == nil && n == 5, fmt.Sprint(n, err)
	})
	eventually(t, 10*time.Second, "recovery notice", func() (bool, string) {
		syncs, _ := e.mgr.Syncs(t.Context(), wh.GetId())
		for _, s := range syncs {
			for _, n := range s.Notices {
				if strings.HasPrefix(n, "loaded the events that waited in the stream while the warehouse failed") && s.Status == history.StatusPartial && s.Events > 0 {
					return true, ""
				}
			}
		}
		return false, fmt.Sprintf("%+v", syncs)
	})
	if n, _ := e.count(wh.GetId(), "tracks"); n != 5 {
		t.Fatalf("tracks has %d rows, want 5", n)
	}
}

func TestIntervalScheduleWaitsForSyncNow(t *testing.T) {
	t.Parallel()
	wh := warehouse("wh-int", catalogv1.WarehouseType_WAREHOUSE_TYPE_DUCKDB, map[string]any{
		"path": filepath.Join(t.TempDir(), "w.duckdb"), "schedule": "interval", "interval_seconds": 3600, "batch_wait_ms": 50,
	})
	e := newEnv(t)
	e.start(wh)
	eventually(t, 10*time.Second, "the start-up sync finished", func() (bool, string) {
		syncs, _ := e.mgr.Syncs(t.Context(), wh.GetId())
		return len(syncs) == 1 && syncs[0].Status == history.StatusSuccess && syncs[0].Trigger == history.TriggerInterval, fmt.Sprintf("%+v", syncs)
	})
	e.publish("i1", "i2")
	if _, err := e.count(wh.GetId(), "order_completed"); err == nil {
		t.Fatal("events loaded before the next interval or sync now")
	}
	schedule, started, err := e.mgr.SyncNow(wh.GetId())
	if err != nil || schedule != ScheduleInterval || !started {
		t.Fatalf("SyncNow = %q, %v, %v", schedule, started, err)
	}
	eventually(t, 10*time.Second, "manual sync loaded the rows", func() (bool, string) {
		syncs, _ := e.mgr.Syncs(t.Context(), wh.GetId())
		if len(syncs) != 2 || syncs[0].Status != history.StatusSuccess {
			return false, fmt.Sprintf("%+v", syncs)
		}
		return syncs[0].Trigger == history.TriggerManual && syncs[0].RowsPerTable["web_app.order_completed"] == 2 && !syncs[0].FinishedAt.IsZero(), fmt.Sprintf("%+v", syncs[0])
	})
}

// publishPack stores the events of ids as one pack (as Ingest stores a batch request).
func (e *env) publishPack(ids ...string) {
	e.t.Helper()
	evs := make([]jetstream.PackedEvent, len(ids))
	for i, id := range ids {
		evs[i] = jetstream.PackedEvent{MessageID: id, Type: "track", JSON: []byte(fmt.Sprintf(
			`{"type":"track","messageId":%q,"userId":"u1","event":"Order Completed","receivedAt":"2024-05-01T10:00:00Z","properties":{"total":%d}}`, id, i))}
	}
	msg := jetstream.PackMsg(streams.EventsSubject(testWorkspace, testSource), jetstream.Headers{Workspace: testWorkspace, Source: testSource}, nil, evs)
	if _, err := e.js.PublishMsg(e.t.Context(), msg); err != nil {
		e.t.Fatal(err)
	}
}

func TestPacksAndSingleEventsLoadOnceOnBothEngines(t *testing.T) {
	t.Parallel()
	engines := map[string]*catalogv1.Warehouse{
		"duckdb":   warehouse("wh-duck", catalogv1.WarehouseType_WAREHOUSE_TYPE_DUCKDB, map[string]any{"path": filepath.Join(t.TempDir(), "w.duckdb"), "batch_wait_ms": 50}),
		"postgres": warehouse("wh-pg", catalogv1.WarehouseType_WAREHOUSE_TYPE_POSTGRES, map[string]any{"dsn": testenv.Postgres(t), "batch_size": 4}),
	}
	for name, wh := range engines {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			// A malformed pack (index and body disagree) is dropped with a notice; it must not block
			// the events around it.
			bad := jetstream.PackMsg(streams.EventsSubject(testWorkspace, testSource), jetstream.Headers{Workspace: testWorkspace, Source: testSource}, nil,
				[]jetstream.PackedEvent{{MessageID: "x1", Type: "track", JSON: []byte(`{"a":1}`)}, {MessageID: "x2", Type: "track", JSON: []byte(`{"b":2}`)}})
			bad.Data = []byte(`[{"a":1}]`)
			e.publish("s1")
			e.publishPack("p1", "p2", "p3")
			if _, err := e.js.PublishMsg(t.Context(), bad); err != nil {
				t.Fatal(err)
			}
			e.publishPack("p4", "p5", "p1", "s1", "p6", "p7") // p1 and s1 again: the id key keeps one row each
			e.publishPack("p1", "p2", "p3")                   // a whole pack again (another request) stores nothing new
			e.start(wh)
			eventually(t, 20*time.Second, "8 distinct rows", func() (bool, string) {
				n, err := e.count(wh.GetId(), "order_completed")
				return err == nil && n == 8, fmt.Sprint(n, err)
			})
			eng, err := e.mgr.Engine(wh.GetId())
			if err != nil {
				t.Fatal(err)
			}
			var total int64
			if err := eng.DB().QueryRowContext(t.Context(), "SELECT total FROM web_app.order_completed WHERE id = 'p6'").Scan(&total); err != nil || total != 4 {
				t.Fatalf("p6 total = %d, %v; want 4 (its pack position)", total, err)
			}
			eventually(t, 10*time.Second, "notice of the malformed pack", func() (bool, string) {
				syncs, _ := e.mgr.Syncs(t.Context(), wh.GetId())
				for _, s := range syncs {
					for _, n := range s.Notices {
						if strings.Contains(n, "malformed event pack") {
							return true, ""
						}
					}
				}
				return false, fmt.Sprintf("%+v", syncs)
			})
		})
	}
}

// TestDisabledWarehouseIsNotUnavailable checks that a warehouse Catalog holds as disabled answers
// "sync now" and queries with ErrDisabled (the server's 400 WAREHOUSE_DISABLED: retrying does not
// help), an unknown one with ErrUnknownWarehouse (503: it may not run here yet), and that enabling
// it again makes it run.
func TestDisabledWarehouseIsNotUnavailable(t *testing.T) {
	t.Parallel()
	wh := warehouse("wh-off", catalogv1.WarehouseType_WAREHOUSE_TYPE_DUCKDB, map[string]any{
		"path": filepath.Join(t.TempDir(), "w.duckdb"), "schedule": "interval", "interval_seconds": 3600,
	})
	wh.Enabled = false
	e := newEnv(t)
	e.start(wh)
	if _, _, err := e.mgr.SyncNow(wh.GetId()); !errors.Is(err, ErrDisabled) {
		t.Fatalf("SyncNow of a disabled warehouse: %v, want ErrDisabled", err)
	}
	if _, err := e.mgr.Engine(wh.GetId()); !errors.Is(err, ErrDisabled) {
		t.Fatalf("Engine of a disabled warehouse: %v, want ErrDisabled", err)
	}
	if _, err := e.mgr.Engine("wh-unknown"); !errors.Is(err, ErrUnknownWarehouse) || errors.Is(err, ErrDisabled) {
		t.Fatalf("Engine of an unknown warehouse: %v, want ErrUnknownWarehouse", err)
	}
	wh.Enabled = true
	e.start(wh)
	if _, started, err := e.mgr.SyncNow(wh.GetId()); err != nil || !started {
		t.Fatalf("SyncNow after enabling: %v, %v", started, err)
	}
}
