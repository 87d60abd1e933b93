package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"testing"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"github.com/switchyardhq/switchyard/services/catalog/app"
	"github.com/switchyardhq/switchyard/services/internal/platform/auth"
)

func TestViews(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, viewer := e.tokenFor(t, "viewer@acme.test", catalogv1.Role_ROLE_VIEWER)
	type view struct {
		View struct {
			Page     string
			Columns  []string
			Sort     string
			Filters  []string
			Revision string
		}
		AvailableColumns []string `json:"availableColumns"`
	}
	t.Run("default view", func(t *testing.T) {
		var v view
		mustOK(t, e.do(t, viewer, http.MethodGet, "/api/v1/me/views/destinations", nil), &v)
		if fmt.Sprint(v.View.Columns) != "[status createdAt type sources category]" || v.View.Sort != "createdAt:desc" || v.View.Revision != "0" ||
			fmt.Sprint(v.AvailableColumns) != "[status createdAt type sources category]" {
			t.Fatalf("default = %+v", v)
		}
	})
	body := map[string]any{"columns": []string{"status", "type", "createdAt"}, "sort": "type:asc", "filters": []string{"environment:eq:prod"}}
	var saved view
	t.Run("a viewer saves their own view", func(t *testing.T) {
		mustOK(t, e.do(t, viewer, http.MethodPut, "/api/v1/me/views/sources", body), &saved)
		var got view
		mustOK(t, e.do(t, viewer, http.MethodGet, "/api/v1/me/views/sources", nil), &got)
		if fmt.Sprint(got.View.Columns) != "[status type createdAt]" || got.View.Sort != "type:asc" || fmt.Sprint(got.View.Filters) != "[environment:eq:prod]" || got.View.Revision != saved.View.Revision {
			t.Fatalf("saved %+v, read %+v", saved, got)
		}
	})
	t.Run("views are per user", func(t *testing.T) {
		var owner view
		mustOK(t, e.do(t, e.owner, http.MethodGet, "/api/v1/me/views/sources", nil), &owner)
		if owner.View.Revision != "0" || len(owner.View.Columns) != 5 {
			t.Fatalf("owner sees %+v", owner)
		}
	})
	for _, tc := range []struct {
		name   string
		body   map[string]any
		reason string
		field  string
	}{
		{"a sixth column", map[string]any{"columns": []string{"status", "environment", "destinations", "type", "category", "createdAt"}}, "CATALOG_VIEW_TOO_MANY_COLUMNS", "columns"},
		{"an unknown column", map[string]any{"columns": []string{"status", "colour"}}, "CATALOG_VIEW_COLUMN_UNKNOWN", "columns[1]"},
		{"a destinations-only column", map[string]any{"columns": []string{"sources"}}, "CATALOG_VIEW_COLUMN_UNKNOWN", "columns[0]"},
		{"a duplicate column", map[string]any{"columns": []string{"type", "type"}}, "CATALOG_VIEW_COLUMN_DUPLICATE", "columns[1]"},
		{"a bad sort", map[string]any{"columns": []string{"type"}, "sort": "colour"}, "CATALOG_LIST_COLUMN_UNKNOWN", "sort"},
		{"a bad filter", map[string]any{"columns": []string{"type"}, "filters": []string{"status:gt:1"}}, "CATALOG_FILTER_OPERATOR_INVALID", "filter[0]"},
	} {
		t.Run(tc.name+" is 400 naming the rule", func(t *testing.T) {
			b := wantError(t, e.do(t, viewer, http.MethodPut, "/api/v1/me/views/sources", tc.body), 400, "INVALID_ARGUMENT", tc.reason, tc.field)
			if tc.reason == "CATALOG_VIEW_TOO_MANY_COLUMNS" && b.Message != "columns: a view shows at most 5 columns, got 6" {
				t.Fatalf("message = %q", b.Message)
			}
		})
	}
	t.Run("unknown page is 400", func(t *testing.T) {
		wantError(t, e.do(t, viewer, http.MethodGet, "/api/v1/me/views/warehouses", nil), 400, "INVALID_ARGUMENT", "CATALOG_VIEW_PAGE_UNKNOWN", "page")
	})
	t.Run("a save at a stale revision is 409", func(t *testing.T) {
		stale := map[string]any{"columns": []string{"type"}, "revision": saved.View.Revision}
		mustOK(t, e.do(t, viewer, http.MethodPut, "/api/v1/me/views/sources", stale), nil)
		wantError(t, e.do(t, viewer, http.MethodPut, "/api/v1/me/views/sources", stale), 409, "ABORTED", "CATALOG_REVISION_MISMATCH", "revision")
	})
}

func TestConditionalUpdates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src := e.createSource(t, e.owner, map[string]any{"name": "CAS"})
	var first struct{ Source source }
	mustOK(t, e.do(t, e.owner, http.MethodPatch, "/api/v1/sources/"+src.ID, map[string]any{"name": "first", "revision": src.Revision}), &first)
	t.Run("the loser of a race at the same revision gets 409", func(t *testing.T) {
		wantError(t, e.do(t, e.owner, http.MethodPatch, "/api/v1/sources/"+src.ID, map[string]any{"name": "second", "revision": src.Revision}),
			409, "ABORTED", "CATALOG_REVISION_MISMATCH", "revision")
	})
	t.Run("If-Match works like revision", func(t *testing.T) {
		wantError(t, e.do(t, e.owner, http.MethodPatch, "/api/v1/sources/"+src.ID, map[string]any{"name": "third"}, "If-Match", `"`+src.Revision+`"`),
			409, "ABORTED", "CATALOG_REVISION_MISMATCH", "revision")
		mustOK(t, e.do(t, e.owner, http.MethodPatch, "/api/v1/sources/"+src.ID, map[string]any{"name": "third"}, "If-Match", first.Source.Revision), nil)
		wantError(t, e.do(t, e.owner, http.MethodPatch, "/api/v1/sources/"+src.ID, map[string]any{"name": "x"}, "If-Match", "abc"),
			400, "INVALID_ARGUMENT", "CATALOG_REVISION_FORMAT", "If-Match")
	})
	t.Run("destinations and users are conditional too", func(t *testing.T) {
		d := e.createWebhook(t, e.owner, "h", src.ID, true)
		wantError(t, e.do(t, e.owner, http.MethodPatch, "/api/v1/destinations/"+d, map[string]any{"enabled": false, "revision": "999999"}),
			409, "ABORTED", "CATALOG_REVISION_MISMATCH", "revision")
		wantError(t, e.do(t, e.owner, http.MethodPatch, "/api/v1/users/"+e.boot.GetOwner().GetId(), map[string]any{"name": "x", "revision": "999999"}),
			409, "ABORTED", "CATALOG_REVISION_MISMATCH", "revision")
	})
}

// TestConcurrentWriters has many writers update one source at once, with
// both strategies: server-side merges (no revision) and client
// compare-and-set loops (revision, retry on 409). No update may be lost.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src := e.createSource(t, e.owner, map[string]any{"name": "Hot"})
	const writers, each = 16, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	conflicts := make(chan int, writers)
	for w := 0; w < writers; w++ {
		wg.Add(2)
		go func() { // merged label additions
			defer wg.Done()
			for i := 0; i < each; i++ {
				r := e.do(t, e.owner, http.MethodPost, "/api/v1/sources/"+src.ID+"/labels", map[string]any{"labels": map[string]string{fmt.Sprintf("w%02d-%d", w, i): "x"}})
				if r.status != 200 {
					errs <- fmt.Errorf("add label: %d %s", r.status, r.body)
				}
			}
		}()
		go func() { // read-modify-write of a counter with compare-and-set
			defer wg.Done()
			lost := 0
			for i := 0; i < each; {
				var cur struct{ Source source }
				if r := e.do(t, e.owner, http.MethodGet, "/api/v1/sources/"+src.ID, nil); r.status == 200 {
					mustOK(t, r, &cur)
				}
				n, _ := strconv.Atoi(cur.Source.Name[len("Hot"):] + "0")
				next := fmt.Sprintf("Hot%d", n/10+1)
				r := e.do(t, e.owner, http.MethodPatch, "/api/v1/sources/"+src.ID, map[string]any{"name": next, "revision": cur.Source.Revision})
				switch r.status {
				case 200:
					i++
				case 409:
					lost++
				default:
					errs <- fmt.Errorf("patch: %d %s", r.status, r.body)
					return
				}
			}
			conflicts <- lost
		}()
	}
	wg.Wait()
	close(errs)
	close(conflicts)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for n := range conflicts {
		total += n
	}
	var got struct{ Source source }
	mustOK(t, e.do(t, e.owner, http.MethodGet, "/api/v1/sources/"+src.ID, nil), &got)
	if len(got.Source.Labels) != writers*each {
		t.Errorf("labels = %d, want %d: merged updates were lost", len(got.Source.Labels), writers*each)
	}
	if want := fmt.Sprintf("Hot%d", writers*each); got.Source.Name != want {
		t.Errorf("counter = %s, want %s: compare-and-set updates were lost", got.Source.Name, want)
	}
	t.Logf("%d compare-and-set conflicts were answered 409 and retried by the clients", total)

	t.Run("a restart loses nothing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		svc, err := app.New(ctx, app.Params{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), JS: e.js, Lifecycle: app.Lifecycle{Off: true}})
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = svc.Run(ctx) }()
		if err := svc.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		p, err := svc.Catalog().Authenticate(e.owner)
		if err != nil {
			t.Fatal(err)
		}
		s, err := svc.Catalog().GetSource(p, src.ID)
		if err != nil || s.GetName() != got.Source.Name || len(s.GetLabels()) != writers*each {
			t.Fatalf("after restart: %v %v", s, err)
		}
		_ = auth.WithPrincipal
	})
}

func TestAuditTrail(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, editor := e.tokenFor(t, "editor@acme.test", catalogv1.Role_ROLE_EDITOR)
	src := e.createSource(t, editor, map[string]any{"name": "Audited"})
	e.clock.Advance(1e9)
	mustOK(t, e.do(t, editor, http.MethodPatch, "/api/v1/sources/"+src.ID, map[string]any{"enabled": false}), nil)
	e.clock.Advance(1e9)
	e.createWebhook(t, e.owner, "audited hook", src.ID, true)
	var out struct {
		AuditEvents []struct {
			ActorType, ActorId, ActorEmail, Action, ResourceType, ResourceId, ResourceName, Time string
			Details                                                                              map[string]string
		} `json:"auditEvents"`
	}
	mustOK(t, e.do(t, e.owner, http.MethodGet, "/api/v1/audit-events?pagination.count=3", nil), &out)
	if len(out.AuditEvents) != 3 {
		t.Fatalf("events = %+v", out)
	}
	got := []string{}
	for _, ev := range out.AuditEvents {
		got = append(got, ev.ActorEmail+"|"+ev.Action+"|"+ev.ResourceType+"|"+ev.ResourceName+"|"+ev.Time)
	}
	want := []string{
		"owner@acme.test|Destination Created|destination|audited hook|2026-03-01T09:00:02Z",
		"editor@acme.test|Source Disabled|source|Audited|2026-03-01T09:00:01Z",
		"editor@acme.test|Source Created|source|Audited|2026-03-01T09:00:00Z",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("audit trail (newest first):\n got %v\nwant %v", got, want)
	}
	if out.AuditEvents[1].Details["enabled"] != "false" || out.AuditEvents[1].ActorType != "user" {
		t.Fatalf("details = %+v", out.AuditEvents[1])
	}
	var filtered struct{ AuditEvents []struct{ Action string } }
	mustOK(t, e.do(t, e.owner, http.MethodGet, "/api/v1/audit-events?action=Source+Disabled", nil), &filtered)
	if len(filtered.AuditEvents) != 1 {
		t.Fatalf("filtered = %+v", filtered)
	}
	_, other, _ := e.svc.Catalog().CreateWorkspace(context.Background(), "Other", "o@other.test")
	mustOK(t, e.do(t, other, http.MethodGet, "/api/v1/audit-events", nil), &filtered)
	if len(filtered.AuditEvents) != 0 {
		t.Fatalf("other workspace sees %+v", filtered)
	}
}
