package app_test

import (
	"context"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"github.com/switchyardhq/switchyard/services/catalog/internal/kvstore"
	"github.com/switchyardhq/switchyard/services/internal/platform/status"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestAccessControlREST(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, editor := e.tokenFor(t, "editor@acme.test", catalogv1.Role_ROLE_EDITOR)
	_, viewer := e.tokenFor(t, "viewer@acme.test", catalogv1.Role_ROLE_VIEWER)
	src := e.createSource(t, e.owner, map[string]any{"name": "Mobile"})
	dst := e.createWebhook(t, e.owner, "hook", src.ID, true)
	_, otherToken, err := e.svc.Catalog().CreateWorkspace(context.Background(), "Rival", "boss@rival.test")
	if err != nil {
		t.Fatal(err)
	}
	whID := e.boot.GetWarehouse().GetId()

	t.Run("every call needs a token", func(t *testing.T) {
		for _, path := range []string{"/api/v1/sources", "/api/v1/destinations", "/api/v1/warehouses", "/api/v1/users", "/api/v1/audit-events", "/api/v1/catalog/sources", "/api/v1/me/views/sources", "/api/v1/integration-requests"} {
			wantError(t, e.do(t, "", http.MethodGet, path, nil), 401, "UNAUTHENTICATED", "AUTH_UNAUTHENTICATED", "")
			wantError(t, e.do(t, "wrong-token-xxxxxxxx", http.MethodGet, path, nil), 401, "UNAUTHENTICATED", "AUTH_UNAUTHENTICATED", "")
		}
	})
	t.Run("another workspace's resources are 404, not 403", func(t *testing.T) {
		for _, tc := range []struct{ method, path, reason string }{
			{http.MethodGet, "/api/v1/sources/" + src.ID, "CATALOG_SOURCE_NOT_FOUND"},
			{http.MethodPatch, "/api/v1/sources/" + src.ID, "CATALOG_SOURCE_NOT_FOUND"},
			{http.MethodDelete, "/api/v1/sources/" + src.ID, "CATALOG_SOURCE_NOT_FOUND"},
			{http.MethodPost, "/api/v1/sources/" + src.ID + "/write-keys", "CATALOG_SOURCE_NOT_FOUND"},
			{http.MethodGet, "/api/v1/destinations/" + dst, "CATALOG_DESTINATION_NOT_FOUND"},
			{http.MethodPatch, "/api/v1/destinations/" + dst, "CATALOG_DESTINATION_NOT_FOUND"},
			{http.MethodDelete, "/api/v1/destinations/" + dst, "CATALOG_DESTINATION_NOT_FOUND"},
			{http.MethodGet, "/api/v1/warehouses/" + whID, "CATALOG_WAREHOUSE_NOT_FOUND"},
			{http.MethodDelete, "/api/v1/users/" + e.boot.GetOwner().GetId(), "CATALOG_USER_NOT_FOUND"},
		} {
			t.Run(tc.method+" "+tc.path, func(t *testing.T) {
				wantError(t, e.do(t, otherToken, tc.method, tc.path, map[string]any{"name": "stolen"}), 404, "NOT_FOUND", tc.reason, "")
			})
		}
		var list struct{ Sources []source }
		mustOK(t, e.do(t, otherToken, http.MethodGet, "/api/v1/sources", nil), &list)
		if len(list.Sources) != 0 {
			t.Fatalf("other workspace lists %d sources", len(list.Sources))
		}
	})
	t.Run("viewers read but cannot change anything", func(t *testing.T) {
		mustOK(t, e.do(t, viewer, http.MethodGet, "/api/v1/sources/"+src.ID, nil), nil)
		for _, tc := range []struct {
			method, path string
			body         any
		}{
			{http.MethodPost, "/api/v1/sources", map[string]any{"name": "v"}},
			{http.MethodPatch, "/api/v1/sources/" + src.ID, map[string]any{"enabled": false}},
			{http.MethodDelete, "/api/v1/sources/" + src.ID, nil},
			{http.MethodPost, "/api/v1/sources/" + src.ID + "/labels", map[string]any{"labels": map[string]string{"a": "b"}}},
			{http.MethodPost, "/api/v1/sources/" + src.ID + "/write-keys", map[string]any{}},
			{http.MethodDelete, "/api/v1/sources/" + src.ID + "/write-keys/" + src.WriteKeys[0], nil},
			{http.MethodPost, "/api/v1/destinations", map[string]any{"name": "d", "type": "webhook", "sourceId": src.ID, "settings": map[string]any{"url": "https://x.test"}}},
			{http.MethodPatch, "/api/v1/destinations/" + dst, map[string]any{"enabled": false}},
			{http.MethodDelete, "/api/v1/destinations/" + dst, nil},
			{http.MethodPost, "/api/v1/warehouses", map[string]any{"name": "w", "type": "WAREHOUSE_TYPE_DUCKDB", "settings": map[string]any{"path": "/x"}}},
			{http.MethodPatch, "/api/v1/warehouses/" + whID, map[string]any{"enabled": false}},
			{http.MethodPost, "/api/v1/users", map[string]any{"email": "x@acme.test", "role": "ROLE_VIEWER"}},
			{http.MethodPost, "/api/v1/tokens", map[string]any{"name": "t"}},
		} {
			t.Run(tc.method+" "+tc.path, func(t *testing.T) {
				wantError(t, e.do(t, viewer, tc.method, tc.path, tc.body), 403, "PERMISSION_DENIED", "AUTH_PERMISSION_DENIED", "")
			})
		}
	})
	t.Run("write keys are visible to owners and editors only", func(t *testing.T) {
		for _, tc := range []struct {
			token string
			want  int
		}{{e.owner, 1}, {editor, 1}, {viewer, 0}} {
			var one struct{ Source source }
			mustOK(t, e.do(t, tc.token, http.MethodGet, "/api/v1/sources/"+src.ID, nil), &one)
			var list struct{ Sources []source }
			mustOK(t, e.do(t, tc.token, http.MethodGet, "/api/v1/sources?filter=name:eq:Mobile", nil), &list)
			if len(one.Source.WriteKeys) != tc.want || len(list.Sources) != 1 || len(list.Sources[0].WriteKeys) != tc.want {
				t.Fatalf("write keys seen: get %v, list %v; want %d", one.Source.WriteKeys, list.Sources, tc.want)
			}
		}
	})
	t.Run("editors change sources but not users or tokens", func(t *testing.T) {
		mustOK(t, e.do(t, editor, http.MethodPatch, "/api/v1/sources/"+src.ID, map[string]any{"name": "Mobile App"}), nil)
		wantError(t, e.do(t, editor, http.MethodPost, "/api/v1/tokens", map[string]any{"name": "t"}), 403, "PERMISSION_DENIED", "AUTH_PERMISSION_DENIED", "")
		wantError(t, e.do(t, editor, http.MethodGet, "/api/v1/tokens", nil), 403, "PERMISSION_DENIED", "AUTH_PERMISSION_DENIED", "")
	})
	t.Run("tokens are stored hashed and revocable", func(t *testing.T) {
		var created struct {
			Token  struct{ ID, Role string }
			Secret string
		}
		mustOK(t, e.do(t, e.owner, http.MethodPost, "/api/v1/tokens", map[string]any{"name": "ci", "role": "ROLE_VIEWER"}), &created)
		if created.Token.Role != "ROLE_VIEWER" || !strings.HasPrefix(created.Secret, "sy_") {
			t.Fatalf("created = %+v", created)
		}
		kv, err := e.js.KeyValue(context.Background(), kvstore.BucketPrefix+"tokens")
		if err != nil {
			t.Fatal(err)
		}
		keys, err := kv.Keys(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if _, err := hex.DecodeString(k); err != nil || len(k) != 64 {
				t.Fatalf("token key %q is not a SHA-256", k)
			}
			v, _ := kv.Get(context.Background(), k)
			for _, secret := range []string{created.Secret, e.owner, editor, viewer} {
				if strings.Contains(string(v.Value()), secret) || k == secret {
					t.Fatalf("secret stored in clear in %s", k)
				}
			}
		}
		var me struct{ Token struct{ ID, Role string } }
		mustOK(t, e.do(t, created.Secret, http.MethodGet, "/api/v1/me", nil), &me)
		if me.Token.ID != created.Token.ID || me.Token.Role != "ROLE_VIEWER" {
			t.Fatalf("me = %+v", me)
		}
		wantError(t, e.do(t, e.owner, http.MethodPost, "/api/v1/tokens", map[string]any{"name": "x", "userId": "usr_nope"}), 400, "INVALID_ARGUMENT", "CATALOG_USER_NOT_FOUND", "userId")
		mustOK(t, e.do(t, e.owner, http.MethodDelete, "/api/v1/tokens/"+created.Token.ID, nil), nil)
		wantError(t, e.do(t, created.Secret, http.MethodGet, "/api/v1/me", nil), 401, "UNAUTHENTICATED", "AUTH_UNAUTHENTICATED", "")
	})
	t.Run("a token never exceeds its user's role", func(t *testing.T) {
		uid, tok := e.tokenFor(t, "demoted@acme.test", catalogv1.Role_ROLE_EDITOR)
		mustOK(t, e.do(t, e.owner, http.MethodPatch, "/api/v1/users/"+uid, map[string]any{"role": "ROLE_VIEWER"}), nil)
		wantError(t, e.do(t, tok, http.MethodPatch, "/api/v1/sources/"+src.ID, map[string]any{"name": "x"}), 403, "PERMISSION_DENIED", "AUTH_PERMISSION_DENIED", "")
		wantError(t, e.do(t, e.owner, http.MethodPost, "/api/v1/tokens", map[string]any{"name": "x", "userId": uid, "role": "ROLE_OWNER"}), 400, "INVALID_ARGUMENT", "CATALOG_ROLE_ABOVE_USER", "role")
	})
	t.Run("users", func(t *testing.T) {
		wantError(t, e.do(t, e.owner, http.MethodPost, "/api/v1/users", map[string]any{"email": "not-an-email", "role": "ROLE_EDITOR"}), 400, "INVALID_ARGUMENT", "CATALOG_EMAIL_FORMAT", "email")
		wantError(t, e.do(t, e.owner, http.MethodPost, "/api/v1/users", map[string]any{"email": "editor@acme.test", "role": "ROLE_EDITOR"}), 400, "INVALID_ARGUMENT", "CATALOG_EMAIL_TAKEN", "email")
		wantError(t, e.do(t, e.owner, http.MethodPost, "/api/v1/users", map[string]any{"email": "n@acme.test"}), 400, "INVALID_ARGUMENT", "CATALOG_ROLE_INVALID", "role")
		wantError(t, e.do(t, e.owner, http.MethodPatch, "/api/v1/users/"+e.boot.GetOwner().GetId(), map[string]any{"role": "ROLE_VIEWER"}), 400, "INVALID_ARGUMENT", "CATALOG_LAST_OWNER", "role")
		uid, tok := e.tokenFor(t, "leaver@acme.test", catalogv1.Role_ROLE_EDITOR)
		mustOK(t, e.do(t, e.owner, http.MethodDelete, "/api/v1/users/"+uid, nil), nil)
		wantError(t, e.do(t, tok, http.MethodGet, "/api/v1/sources", nil), 401, "UNAUTHENTICATED", "AUTH_UNAUTHENTICATED", "")
		var list struct{ Users []struct{ Email string } }
		mustOK(t, e.do(t, viewer, http.MethodGet, "/api/v1/users", nil), &list)
		if len(list.Users) != 4 {
			t.Fatalf("users = %+v", list.Users)
		}
	})
}

// TestGRPC checks the same rules through the gRPC API: codes, reasons and
// fields of every error path, and a successful call per resource.
func TestGRPC(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, viewer := e.tokenFor(t, "viewer@acme.test", catalogv1.Role_ROLE_VIEWER)
	_, otherToken, err := e.svc.Catalog().CreateWorkspace(context.Background(), "Rival", "boss@rival.test")
	if err != nil {
		t.Fatal(err)
	}
	owner := ctxAs(t, e.owner)
	created, err := e.client.CreateSource(owner, &catalogv1.CreateSourceRequest{Name: "gRPC source", Type: "go"})
	if err != nil {
		t.Fatal(err)
	}
	src := created.GetSource()
	settings, _ := structpb.NewStruct(map[string]any{"url": "https://x.test/h"})
	dst, err := e.client.CreateDestination(owner, &catalogv1.CreateDestinationRequest{Name: "d", Type: "webhook", SourceId: src.GetId(), Settings: settings})
	if err != nil {
		t.Fatal(err)
	}
	wh, err := e.client.CreateWarehouse(owner, &catalogv1.CreateWarehouseRequest{Name: "w", Type: catalogv1.WarehouseType_WAREHOUSE_TYPE_DUCKDB, Settings: mustStruct(map[string]any{"path": "/tmp/x.duckdb"}), SourceIds: []string{src.GetId()}})
	if err != nil {
		t.Fatal(err)
	}
	name := "renamed"
	for _, tc := range []struct {
		name   string
		call   func() error
		code   codes.Code
		reason string
		field  string
	}{
		{"missing token", func() error {
			_, err := e.client.ListSources(context.Background(), &catalogv1.ListSourcesRequest{})
			return err
		}, codes.Unauthenticated, "AUTH_UNAUTHENTICATED", ""},
		{"bad field", func() error {
			_, err := e.client.CreateSource(owner, &catalogv1.CreateSourceRequest{})
			return err
		}, codes.InvalidArgument, "CATALOG_REQUIRED", "name"},
		{"unknown column", func() error {
			_, err := e.client.ListSources(owner, &catalogv1.ListSourcesRequest{Sort: "colour:asc"})
			return err
		}, codes.InvalidArgument, "CATALOG_LIST_COLUMN_UNKNOWN", "sort"},
		{"sixth column", func() error {
			_, err := e.client.PutView(owner, &catalogv1.PutViewRequest{Page: "sources", Columns: []string{"status", "environment", "destinations", "type", "category", "createdAt"}})
			return err
		}, codes.InvalidArgument, "CATALOG_VIEW_TOO_MANY_COLUMNS", "columns"},
		{"stale revision", func() error {
			_, err := e.client.UpdateSource(owner, &catalogv1.UpdateSourceRequest{SourceId: src.GetId(), Revision: src.GetRevision() + 100, Name: &name})
			return err
		}, codes.Aborted, "CATALOG_REVISION_MISMATCH", "revision"},
		{"wrong workspace", func() error {
			_, err := e.client.GetSource(ctxAs(t, otherToken), &catalogv1.GetSourceRequest{SourceId: src.GetId()})
			return err
		}, codes.NotFound, "CATALOG_SOURCE_NOT_FOUND", ""},
		{"viewer writes", func() error {
			_, err := e.client.UpdateDestination(ctxAs(t, viewer), &catalogv1.UpdateDestinationRequest{DestinationId: dst.GetDestination().GetId(), Name: &name})
			return err
		}, codes.PermissionDenied, "AUTH_PERMISSION_DENIED", ""},
		{"wrong workspace warehouse", func() error {
			_, err := e.client.GetWarehouse(ctxAs(t, otherToken), &catalogv1.GetWarehouseRequest{WarehouseId: wh.GetWarehouse().GetId()})
			return err
		}, codes.NotFound, "CATALOG_WAREHOUSE_NOT_FOUND", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if grpcstatus.Code(err) != tc.code || status.Reason(err) != tc.reason || status.Field(err) != tc.field {
				t.Fatalf("got %v (reason %q field %q), want %v %s %q", err, status.Reason(err), status.Field(err), tc.code, tc.reason, tc.field)
			}
		})
	}
	t.Run("successful calls", func(t *testing.T) {
		cur, err := e.client.GetSource(owner, &catalogv1.GetSourceRequest{SourceId: src.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.UpdateSource(owner, &catalogv1.UpdateSourceRequest{SourceId: src.GetId(), Revision: cur.GetSource().GetRevision(), Name: &name}); err != nil {
			t.Fatalf("conditional update at the current revision: %v", err)
		}
		list, err := e.client.ListSources(owner, &catalogv1.ListSourcesRequest{Filter: []string{"type:eq:go"}})
		if err != nil || len(list.GetSources()) != 1 || list.GetSources()[0].GetName() != "renamed" || len(list.GetSources()[0].GetDestinations()) != 1 {
			t.Fatalf("list = %v, %v", list, err)
		}
		if _, err := e.client.ListDestinations(owner, &catalogv1.ListDestinationsRequest{Sort: "sources:desc"}); err != nil {
			t.Fatal(err)
		}
		if r, err := e.client.ListCatalogDestinations(owner, &catalogv1.ListCatalogDestinationsRequest{}); err != nil || len(r.GetDestinations()) < 7 {
			t.Fatalf("catalog destinations = %v, %v", r, err)
		}
		if r, err := e.client.ListAuditEvents(owner, &catalogv1.ListAuditEventsRequest{ResourceId: src.GetId()}); err != nil || len(r.GetAuditEvents()) != 2 {
			t.Fatalf("audit events of the source = %v, %v", r, err)
		}
		if r, err := e.client.GetMe(ctxAs(t, viewer), &catalogv1.GetMeRequest{}); err != nil || r.GetUser().GetEmail() != "viewer@acme.test" {
			t.Fatalf("me = %v, %v", r, err)
		}
	})
}

func mustStruct(m map[string]any) *structpb.Struct {
	s, err := structpb.NewStruct(m)
	if err != nil {
		panic(err)
	}
	return s
}
