package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
)

func TestSourcesREST(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src := e.createSource(t, e.owner, map[string]any{
		"name": "Web Shop", "type": "javascript", "environment": "ENVIRONMENT_DEV", "labels": map[string]string{"team": "growth"},
	})

	t.Run("create fills type, category, environment, labels, write key and creator", func(t *testing.T) {
		if src.Slug != "web_shop" || src.Type != "javascript" || src.Category != "Website" || src.Environment != "ENVIRONMENT_DEV" ||
			!src.Enabled || src.Labels["team"] != "growth" || len(src.WriteKeys) != 1 || src.CreatedBy != e.boot.GetOwner().GetId() ||
			src.CreatedByEmail != "owner@acme.test" || src.CreatedAt != "2026-03-01T09:00:00Z" || src.Revision == "" {
			t.Fatalf("created source = %+v", src)
		}
	})
	t.Run("get returns the same source", func(t *testing.T) {
		var out struct{ Source source }
		mustOK(t, e.do(t, e.owner, http.MethodGet, "/api/v1/sources/"+src.ID, nil), &out)
		if out.Source.ID != src.ID || out.Source.Name != "Web Shop" || out.Source.WriteKeys[0] != src.WriteKeys[0] {
			t.Fatalf("get = %+v", out.Source)
		}
	})
	t.Run("patch changes only the fields sent", func(t *testing.T) {
		var out struct{ Source source }
		mustOK(t, e.do(t, e.owner, http.MethodPatch, "/api/v1/sources/"+src.ID, map[string]any{"name": "Web Store", "environment": "ENVIRONMENT_PROD"}), &out)
		if out.Source.Name != "Web Store" || out.Source.Environment != "ENVIRONMENT_PROD" || out.Source.Labels["team"] != "growth" || !out.Source.Enabled {
			t.Fatalf("patched = %+v", out.Source)
		}
	})
	t.Run("labels are added and replaced", func(t *testing.T) {
		var out struct{ Source source }
		mustOK(t, e.do(t, e.owner, http.MethodPost, "/api/v1/sources/"+src.ID+"/labels", map[string]any{"labels": map[string]string{"tier": "1"}}), &out)
		if len(out.Source.Labels) != 2 || out.Source.Labels["tier"] != "1" || out.Source.Labels["team"] != "growth" {
			t.Fatalf("after add: labels = %v", out.Source.Labels)
		}
		var replaced struct{ Source source }
		mustOK(t, e.do(t, e.owner, http.MethodPatch, "/api/v1/sources/"+src.ID, map[string]any{"labels": map[string]string{"only": "this"}}), &replaced)
		if len(replaced.Source.Labels) != 1 || replaced.Source.Labels["only"] != "this" {
			t.Fatalf("after replace: labels = %v", replaced.Source.Labels)
		}
	})
	t.Run("write keys are added and revoked", func(t *testing.T) {
		var added struct {
			WriteKey string `json:"writeKey"`
			Source   source
		}
		mustOK(t, e.do(t, e.owner, http.MethodPost, "/api/v1/sources/"+src.ID+"/write-keys", map[string]any{}), &added)
		if len(added.Source.WriteKeys) != 2 || added.Source.WriteKeys[1] != added.WriteKey || len(added.WriteKey) != 32 {
			t.Fatalf("after add: %+v", added)
		}
		var out struct{ Source source }
		mustOK(t, e.do(t, e.owner, http.MethodDelete, "/api/v1/sources/"+src.ID+"/write-keys/"+src.WriteKeys[0], nil), &out)
		if len(out.Source.WriteKeys) != 1 || out.Source.WriteKeys[0] != added.WriteKey {
			t.Fatalf("after revoke: %v", out.Source.WriteKeys)
		}
		// The data plane sees the change: the revoked key is gone from the config.
		for _, snap := range e.svc.Catalog().Snapshots() {
			for _, s := range snap.GetSources() {
				for _, k := range s.GetWriteKeys() {
					if k == src.WriteKeys[0] {
						t.Fatalf("revoked key still in the config snapshot")
					}
				}
			}
		}
		wantError(t, e.do(t, e.owner, http.MethodDelete, "/api/v1/sources/"+src.ID+"/write-keys/"+src.WriteKeys[0], nil),
			404, "NOT_FOUND", "CATALOG_WRITE_KEY_NOT_FOUND", "")
	})
	t.Run("bad fields are 400 naming the field", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			body   map[string]any
			reason string
			field  string
		}{
			{"missing name", map[string]any{"type": "http-api"}, "CATALOG_REQUIRED", "name"},
			{"unknown type", map[string]any{"name": "x", "type": "cobol"}, "CATALOG_SOURCE_TYPE_UNKNOWN", "type"},
			{"bad slug", map[string]any{"name": "x", "slug": "Not A Slug"}, "CATALOG_SLUG_FORMAT", "slug"},
			{"taken slug", map[string]any{"name": "Web Shop"}, "CATALOG_SLUG_TAKEN", "slug"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantError(t, e.do(t, e.owner, http.MethodPost, "/api/v1/sources", tc.body), 400, "INVALID_ARGUMENT", tc.reason, tc.field)
			})
		}
		wantError(t, e.do(t, e.owner, http.MethodPatch, "/api/v1/sources/"+src.ID, map[string]any{"name": " "}), 400, "INVALID_ARGUMENT", "CATALOG_REQUIRED", "name")
	})
	t.Run("unknown source is 404", func(t *testing.T) {
		wantError(t, e.do(t, e.owner, http.MethodGet, "/api/v1/sources/src_nope", nil), 404, "NOT_FOUND", "CATALOG_SOURCE_NOT_FOUND", "")
	})
	t.Run("delete removes the source and its destinations", func(t *testing.T) {
		other := e.createSource(t, e.owner, map[string]any{"name": "Doomed"})
		dst := e.createWebhook(t, e.owner, "doomed hook", other.ID, true)
		mustOK(t, e.do(t, e.owner, http.MethodDelete, "/api/v1/sources/"+other.ID, nil), nil)
		wantError(t, e.do(t, e.owner, http.MethodGet, "/api/v1/sources/"+other.ID, nil), 404, "NOT_FOUND", "CATALOG_SOURCE_NOT_FOUND", "")
		wantError(t, e.do(t, e.owner, http.MethodGet, "/api/v1/destinations/"+dst, nil), 404, "NOT_FOUND", "CATALOG_DESTINATION_NOT_FOUND", "")
	})
}

func TestDestinationsREST(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srcID := e.boot.GetSource().GetId()
	var created struct {
		Destination struct {
			ID       string         `json:"id"`
			Category string         `json:"category"`
			Settings map[string]any `json:"settings"`
			Source   struct{ Name string }
			Revision string `json:"revision"`
		} `json:"destination"`
	}
	mustOK(t, e.do(t, e.owner, http.MethodPost, "/api/v1/destinations", map[string]any{
		"name": "Hook", "type": "webhook", "sourceId": srcID, "enabled": true,
		"settings": map[string]any{"url": "https://example.test/h", "headers": map[string]any{"Authorization": "Bearer s3cret"}, "sharedSecret": "hmac-key"},
	}), &created)
	d := created.Destination

	t.Run("secret settings are masked, others returned", func(t *testing.T) {
		if d.Settings["url"] != "https://example.test/h" || d.Settings["headers"] != "••••••" || d.Settings["sharedSecret"] != "••••••" ||
			d.Category != "Raw Data" || d.Source.Name != "HTTP API" {
			t.Fatalf("created = %+v", d)
		}
		r := e.do(t, e.owner, http.MethodGet, "/api/v1/destinations/"+d.ID, nil)
		if strings.Contains(string(r.body), "s3cret") || strings.Contains(string(r.body), "hmac-key") {
			t.Fatalf("secret in clear: %s", r.body)
		}
	})
	t.Run("the data plane gets the secrets in clear", func(t *testing.T) {
		got := ""
		for _, snap := range e.svc.Catalog().Snapshots() {
			for _, x := range snap.GetDestinations() {
				if x.GetId() == d.ID {
					got = x.GetSettings().GetFields()["headers"].GetStructValue().GetFields()["Authorization"].GetStringValue()
				}
			}
		}
		if got != "Bearer s3cret" {
			t.Fatalf("snapshot header = %q", got)
		}
	})
	t.Run("patch with the mask keeps the secret and changes the rest", func(t *testing.T) {
		mustOK(t, e.do(t, e.owner, http.MethodPatch, "/api/v1/destinations/"+d.ID, map[string]any{
			"enabled":  false,
			"settings": map[string]any{"url": "https://example.test/v2", "headers": "••••••"},
		}), nil)
		dst := e.svc.Catalog().Snapshots()[0].GetDestinations()
		for _, x := range dst {
			if x.GetId() == d.ID && (x.GetEnabled() || x.GetSettings().GetFields()["url"].GetStringValue() != "https://example.test/v2" ||
				x.GetSettings().GetFields()["headers"].GetStructValue().GetFields()["Authorization"].GetStringValue() != "Bearer s3cret") {
				t.Fatalf("stored after patch = %v", x)
			}
		}
	})
	t.Run("settings are validated against the type's schema", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			typ      string
			settings map[string]any
			reason   string
			field    string
		}{
			{"missing url", "webhook", map[string]any{}, "CATALOG_REQUIRED", "settings.url"},
			{"not a URL", "webhook", map[string]any{"url": "ftp://x"}, "CATALOG_URL_FORMAT", "settings.url"},
			{"unknown setting", "webhook", map[string]any{"url": "https://x.test", "colour": "red"}, "CATALOG_SETTING_UNKNOWN", "settings.colour"},
			{"wrong type", "webhook", map[string]any{"url": "https://x.test", "batchSize": "ten"}, "CATALOG_SETTING_TYPE", "settings.batchSize"},
			{"bad choice", "webhook", map[string]any{"url": "https://x.test", "method": "GET"}, "CATALOG_SETTING_CHOICE", "settings.method"},
			{"header not a string", "webhook", map[string]any{"url": "https://x.test", "headers": map[string]any{"X": 1}}, "CATALOG_SETTING_TYPE", "settings.headers.X"},
			{"amplitude without key", "amplitude", map[string]any{}, "CATALOG_REQUIRED", "settings.apiKey"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantError(t, e.do(t, e.owner, http.MethodPost, "/api/v1/destinations", map[string]any{
					"name": "x", "type": tc.typ, "sourceId": srcID, "settings": tc.settings,
				}), 400, "INVALID_ARGUMENT", tc.reason, tc.field)
			})
		}
		wantError(t, e.do(t, e.owner, http.MethodPost, "/api/v1/destinations", map[string]any{"name": "x", "type": "telegraph", "sourceId": srcID}),
			400, "INVALID_ARGUMENT", "CATALOG_DESTINATION_TYPE_UNKNOWN", "type")
		wantError(t, e.do(t, e.owner, http.MethodPost, "/api/v1/destinations", map[string]any{"name": "x", "type": "webhook", "sourceId": "src_nope", "settings": map[string]any{"url": "https://x.test"}}),
			400, "INVALID_ARGUMENT", "CATALOG_SOURCE_NOT_FOUND", "sourceId")
		wantError(t, e.do(t, e.owner, http.MethodPatch, "/api/v1/destinations/"+d.ID, map[string]any{"settings": map[string]any{"url": nil}}),
			400, "INVALID_ARGUMENT", "CATALOG_REQUIRED", "settings.url")
	})
	t.Run("delete", func(t *testing.T) {
		mustOK(t, e.do(t, e.owner, http.MethodDelete, "/api/v1/destinations/"+d.ID, nil), nil)
		wantError(t, e.do(t, e.owner, http.MethodDelete, "/api/v1/destinations/"+d.ID, nil), 404, "NOT_FOUND", "CATALOG_DESTINATION_NOT_FOUND", "")
	})
}

func TestWarehousesREST(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src := e.createSource(t, e.owner, map[string]any{"name": "App"})
	var out struct {
		Warehouse struct {
			ID        string         `json:"id"`
			Type      string         `json:"type"`
			Settings  map[string]any `json:"settings"`
			SourceIDs []string       `json:"sourceIds"`
		} `json:"warehouse"`
	}
	mustOK(t, e.do(t, e.owner, http.MethodPost, "/api/v1/warehouses", map[string]any{
		"name": "PG", "type": "WAREHOUSE_TYPE_POSTGRES", "settings": map[string]any{"dsn": "postgres://u:pw@db/x"}, "sourceIds": []string{src.ID},
	}), &out)
	w := out.Warehouse
	if w.Type != "WAREHOUSE_TYPE_POSTGRES" || w.Settings["dsn"] != "••••••" || len(w.SourceIDs) != 1 || w.SourceIDs[0] != src.ID {
		t.Fatalf("created = %+v", w)
	}
	t.Run("connecting counts as a destination on the Sources page", func(t *testing.T) {
		var got struct{ Source source }
		mustOK(t, e.do(t, e.owner, http.MethodGet, "/api/v1/sources/"+src.ID, nil), &got)
		if strings.Contains(string(e.do(t, e.owner, http.MethodGet, "/api/v1/sources/"+src.ID, nil).body), `"inactiveSince":"`) {
			t.Fatalf("a source with an enabled warehouse must not be inactive")
		}
	})
	t.Run("disconnect and connect", func(t *testing.T) {
		mustOK(t, e.do(t, e.owner, http.MethodDelete, "/api/v1/warehouses/"+w.ID+"/connected-sources/"+src.ID, nil), &out)
		if len(out.Warehouse.SourceIDs) != 0 {
			t.Fatalf("after disconnect: %v", out.Warehouse.SourceIDs)
		}
		mustOK(t, e.do(t, e.owner, http.MethodPost, "/api/v1/warehouses/"+w.ID+"/connected-sources/"+src.ID, nil), &out)
		if len(out.Warehouse.SourceIDs) != 1 {
			t.Fatalf("after connect: %v", out.Warehouse.SourceIDs)
		}
	})
	t.Run("errors", func(t *testing.T) {
		wantError(t, e.do(t, e.owner, http.MethodPost, "/api/v1/warehouses", map[string]any{"name": "x", "type": "WAREHOUSE_TYPE_DUCKDB", "settings": map[string]any{}}),
			400, "INVALID_ARGUMENT", "CATALOG_REQUIRED", "settings.path")
		wantError(t, e.do(t, e.owner, http.MethodPost, "/api/v1/warehouses", map[string]any{"name": "x", "settings": map[string]any{}}),
			400, "INVALID_ARGUMENT", "CATALOG_WAREHOUSE_TYPE_UNKNOWN", "type")
		wantError(t, e.do(t, e.owner, http.MethodPost, "/api/v1/warehouses", map[string]any{"name": "x", "type": "WAREHOUSE_TYPE_DUCKDB", "settings": map[string]any{"path": "/x"}, "sourceIds": []string{"src_nope"}}),
			400, "INVALID_ARGUMENT", "CATALOG_SOURCE_NOT_FOUND", "sourceIds[0]")
	})
	t.Run("patch and delete", func(t *testing.T) {
		mustOK(t, e.do(t, e.owner, http.MethodPatch, "/api/v1/warehouses/"+w.ID, map[string]any{"name": "Postgres", "enabled": false}), nil)
		mustOK(t, e.do(t, e.owner, http.MethodDelete, "/api/v1/warehouses/"+w.ID, nil), nil)
		wantError(t, e.do(t, e.owner, http.MethodGet, "/api/v1/warehouses/"+w.ID, nil), 404, "NOT_FOUND", "CATALOG_WAREHOUSE_NOT_FOUND", "")
	})
}

func TestIntegrationCatalog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		path, key, slug, category string
		required                  []string
	}{
		{"/api/v1/catalog/sources", "sources", "javascript", "Website", nil},
		{"/api/v1/catalog/destinations", "destinations", "webhook", "Raw Data", []string{"url"}},
		{"/api/v1/catalog/warehouses", "warehouses", "postgres", "Warehouse", []string{"dsn"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			var out map[string][]struct {
				Slug       string
				Name       string
				Categories []string
				Options    []struct {
					Name     string
					Required bool
				}
			}
			mustOK(t, e.do(t, e.owner, http.MethodGet, tc.path, nil), &out)
			found := false
			for _, m := range out[tc.key] {
				if m.Slug != tc.slug {
					continue
				}
				found = true
				var req []string
				for _, o := range m.Options {
					if o.Required {
						req = append(req, o.Name)
					}
				}
				if m.Name == "" || len(m.Categories) != 1 || m.Categories[0] != tc.category || strings.Join(req, ",") != strings.Join(tc.required, ",") {
					t.Fatalf("%s = %+v", tc.slug, m)
				}
			}
			if !found {
				t.Fatalf("%s missing from %s", tc.slug, tc.path)
			}
		})
	}
}

func TestIntegrationRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, viewer := e.tokenFor(t, "viewer@acme.test", catalogv1.Role_ROLE_VIEWER)
	mustOK(t, e.do(t, viewer, http.MethodPost, "/api/v1/integration-requests", map[string]any{
		"kind": "destination", "name": "Braze", "website": "https://www.braze.com", "why": "lifecycle messaging",
	}), nil)
	wantError(t, e.do(t, e.owner, http.MethodPost, "/api/v1/integration-requests", map[string]any{"kind": "robot", "name": "x"}), 400, "INVALID_ARGUMENT", "CATALOG_INTEGRATION_KIND_INVALID", "kind")
	wantError(t, e.do(t, e.owner, http.MethodPost, "/api/v1/integration-requests", map[string]any{"kind": "source"}), 400, "INVALID_ARGUMENT", "CATALOG_REQUIRED", "name")
	wantError(t, e.do(t, e.owner, http.MethodPost, "/api/v1/integration-requests", map[string]any{"kind": "source", "name": "x", "website": "nope"}), 400, "INVALID_ARGUMENT", "CATALOG_URL_FORMAT", "website")
	var out struct {
		IntegrationRequests []struct{ Kind, Name, Website, Why, CreatedBy string } `json:"integrationRequests"`
	}
	mustOK(t, e.do(t, e.owner, http.MethodGet, "/api/v1/integration-requests", nil), &out)
	if len(out.IntegrationRequests) != 1 || out.IntegrationRequests[0].Name != "Braze" || out.IntegrationRequests[0].Kind != "destination" ||
		out.IntegrationRequests[0].Why != "lifecycle messaging" || out.IntegrationRequests[0].Website != "https://www.braze.com" {
		t.Fatalf("requests = %+v", out)
	}
	// Another workspace does not see them.
	_, other, err := e.svc.Catalog().CreateWorkspace(context.Background(), "Other", "o@other.test")
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, e.do(t, other, http.MethodGet, "/api/v1/integration-requests", nil), &out)
	if len(out.IntegrationRequests) != 0 {
		t.Fatalf("other workspace sees %v", out)
	}
}
