package app_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// settingsCase is one entry of internal/catalog/testdata/warehouse_settings_cases.json (see
// warehouseSettingsCase there): Warehouse's settings without the connection setting, the field
// and rule of the error when refused, and what is stored when that differs from the settings.
type settingsCase struct {
	Name     string          `json:"name"`
	Settings json.RawMessage `json:"settings"`
	Stored   json.RawMessage `json:"stored"`
	Field    string          `json:"field"`
	Rule     string          `json:"rule"`
}

func loadSettingsCases(t *testing.T) []settingsCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "internal", "catalog", "testdata", "warehouse_settings_cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []settingsCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 40 {
		t.Fatalf("fixture has %d cases, want the full list", len(cases))
	}
	return cases
}

// warehouseEngine is a warehouse type with its connection setting as sent and as returned.
type warehouseEngine struct {
	slug, typ, conn, value, shown string
}

var warehouseEngines = []warehouseEngine{
	{"duckdb", "WAREHOUSE_TYPE_DUCKDB", "path", "/tmp/never-opened.duckdb", "/tmp/never-opened.duckdb"},
	{"postgres", "WAREHOUSE_TYPE_POSTGRES", "dsn", "postgres://u:pw@db:5432/x", "••••••"},
}

// withConnection returns the JSON object settings with the engine's connection setting added,
// keeping the case's own JSON text (1000.0 stays 1000.0 on the wire).
func (w warehouseEngine) withConnection(t *testing.T, settings json.RawMessage) json.RawMessage {
	t.Helper()
	conn, err := json.Marshal(map[string]string{w.conn: w.value})
	if err != nil {
		t.Fatal(err)
	}
	inner := bytes.TrimSpace(settings)
	inner = bytes.TrimSpace(inner[1 : len(inner)-1]) // the case's members, without the braces
	if len(inner) == 0 {
		return conn
	}
	return json.RawMessage(string(conn[:len(conn)-1]) + "," + string(inner) + "}")
}

// wantStored is what a warehouse of engine w returns as settings once c was accepted.
func (w warehouseEngine) wantStored(t *testing.T, c settingsCase) map[string]any {
	t.Helper()
	raw := c.Settings
	if c.Stored != nil {
		raw = c.Stored
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	out[w.conn] = w.shown
	return out
}

// warehouseBody is the part of a warehouse response these tests read.
type warehouseBody struct {
	Warehouse struct {
		ID       string         `json:"id"`
		Revision string         `json:"revision"`
		Settings map[string]any `json:"settings"`
	} `json:"warehouse"`
}

// TestWarehouseSettingsREST sends every case of the fixture to POST /warehouses and, on a
// warehouse holding only its connection setting, to PATCH /warehouses/{id}, on both engines:
// accepted settings are stored (and returned), refused ones get 400 INVALID_ARGUMENT with the
// case's field and reason and change nothing.
func TestWarehouseSettingsREST(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := loadSettingsCases(t)
	for _, w := range warehouseEngines {
		for _, c := range cases {
			check := func(t *testing.T, r resp) {
				t.Helper()
				if c.Field != "" {
					wantError(t, r, 400, "INVALID_ARGUMENT", "CATALOG_"+c.Rule, c.Field)
					return
				}
				var out warehouseBody
				mustOK(t, r, &out)
				if want := w.wantStored(t, c); !reflect.DeepEqual(out.Warehouse.Settings, want) {
					t.Errorf("settings = %v, want %v", out.Warehouse.Settings, want)
				}
			}
			t.Run(w.slug+"/create/"+c.Name, func(t *testing.T) {
				t.Parallel()
				check(t, e.do(t, e.owner, http.MethodPost, "/api/v1/warehouses", map[string]any{
					"name": c.Name, "type": w.typ, "settings": w.withConnection(t, c.Settings),
				}))
			})
			t.Run(w.slug+"/update/"+c.Name, func(t *testing.T) {
				t.Parallel()
				var created warehouseBody
				mustOK(t, e.do(t, e.owner, http.MethodPost, "/api/v1/warehouses", map[string]any{
					"name": c.Name, "type": w.typ, "settings": w.withConnection(t, json.RawMessage(`{}`)),
				}), &created)
				path := "/api/v1/warehouses/" + created.Warehouse.ID
				check(t, e.do(t, e.owner, http.MethodPatch, path, map[string]any{"settings": c.Settings}))
				if c.Field == "" {
					return
				}
				var after warehouseBody
				mustOK(t, e.do(t, e.owner, http.MethodGet, path, nil), &after)
				if after.Warehouse.Revision != created.Warehouse.Revision || !reflect.DeepEqual(after.Warehouse.Settings, created.Warehouse.Settings) {
					t.Errorf("a refused update changed the warehouse: %+v, was %+v", after.Warehouse, created.Warehouse)
				}
			})
		}
	}
}

// TestWarehouseSettingsUpdateChecksMergedSettings: a PATCH is checked against the settings it
// leaves, so the interval schedule's interval_seconds may come from the stored settings, and
// removing it (null) from an interval warehouse is refused.
func TestWarehouseSettingsUpdateChecksMergedSettings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var wh warehouseBody
	mustOK(t, e.do(t, e.owner, http.MethodPost, "/api/v1/warehouses", map[string]any{
		"name": "PG", "type": "WAREHOUSE_TYPE_POSTGRES",
		"settings": map[string]any{"dsn": "postgres://u:pw@db:5432/x", "schedule": "interval", "interval_seconds": 60, "disabled_tables": []string{"pages"}},
	}), &wh)
	path := "/api/v1/warehouses/" + wh.Warehouse.ID
	patch := func(settings map[string]any) resp {
		return e.do(t, e.owner, http.MethodPatch, path, map[string]any{"settings": settings})
	}
	stored := func(t *testing.T, want map[string]any) {
		t.Helper()
		var got warehouseBody
		mustOK(t, e.do(t, e.owner, http.MethodGet, path, nil), &got)
		if !reflect.DeepEqual(got.Warehouse.Settings, want) {
			t.Fatalf("settings = %v, want %v", got.Warehouse.Settings, want)
		}
	}

	t.Run("removing interval_seconds of an interval warehouse is refused", func(t *testing.T) {
		wantError(t, patch(map[string]any{"interval_seconds": nil}), 400, "INVALID_ARGUMENT", "CATALOG_REQUIRED", "settings.interval_seconds")
		stored(t, map[string]any{"dsn": "••••••", "schedule": "interval", "interval_seconds": float64(60), "disabled_tables": []any{"pages"}})
	})
	t.Run("continuous without interval_seconds is accepted", func(t *testing.T) {
		mustOK(t, patch(map[string]any{"schedule": "continuous", "interval_seconds": nil}), nil)
		stored(t, map[string]any{"dsn": "••••••", "schedule": "continuous", "disabled_tables": []any{"pages"}})
	})
	t.Run("interval needs interval_seconds, sent or stored", func(t *testing.T) {
		wantError(t, patch(map[string]any{"schedule": "interval"}), 400, "INVALID_ARGUMENT", "CATALOG_REQUIRED", "settings.interval_seconds")
		mustOK(t, patch(map[string]any{"interval_seconds": 30}), nil)
		mustOK(t, patch(map[string]any{"schedule": "interval"}), nil)
		stored(t, map[string]any{"dsn": "••••••", "schedule": "interval", "interval_seconds": float64(30), "disabled_tables": []any{"pages"}})
	})
	t.Run("a bad value next to a good one changes nothing", func(t *testing.T) {
		wantError(t, patch(map[string]any{"batch_size": 500, "disabled_columns": map[string]any{"tracks": []any{"context_ip", 7}}}),
			400, "INVALID_ARGUMENT", "CATALOG_SETTING_TYPE", "settings.disabled_columns.tracks[1]")
		stored(t, map[string]any{"dsn": "••••••", "schedule": "interval", "interval_seconds": float64(30), "disabled_tables": []any{"pages"}})
	})
	t.Run("an empty value or null resets a setting to its default", func(t *testing.T) {
		mustOK(t, patch(map[string]any{"batch_size": 500, "batch_wait_ms": 100}), nil)
		mustOK(t, patch(map[string]any{"batch_size": "", "batch_wait_ms": nil, "disabled_tables": nil}), nil)
		stored(t, map[string]any{"dsn": "••••••", "schedule": "interval", "interval_seconds": float64(30)})
	})
}

// TestWarehouseCatalogREST: GET /catalog/warehouses lists Warehouse's settings with their
// types and defaults for both engines.
func TestWarehouseCatalogREST(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var out struct {
		Warehouses []struct {
			Slug    string `json:"slug"`
			Options []struct {
				Name         string   `json:"name"`
				Type         string   `json:"type"`
				Required     bool     `json:"required"`
				DefaultValue any      `json:"defaultValue"`
				Choices      []string `json:"choices"`
			} `json:"options"`
		} `json:"warehouses"`
	}
	mustOK(t, e.do(t, e.owner, http.MethodGet, "/api/v1/catalog/warehouses", nil), &out)
	want := map[string]struct {
		typ string
		def any
	}{
		"batch_size":       {"number", float64(1000)},
		"batch_wait_ms":    {"number", float64(500)},
		"schedule":         {"select", "continuous"},
		"interval_seconds": {"number", nil},
		"disabled_tables":  {"list", []any{}},
		"disabled_columns": {"list_map", map[string]any{}},
	}
	if len(out.Warehouses) != len(warehouseEngines) {
		t.Fatalf("warehouses = %+v", out.Warehouses)
	}
	for _, m := range out.Warehouses {
		got := 0
		for _, o := range m.Options {
			w, ok := want[o.Name]
			if !ok {
				continue
			}
			got++
			if o.Type != w.typ || o.Required || !reflect.DeepEqual(o.DefaultValue, w.def) {
				t.Errorf("%s.%s = %+v, want type %s, optional, default %v", m.Slug, o.Name, o, w.typ, w.def)
			}
			if o.Name == "schedule" && !reflect.DeepEqual(o.Choices, []string{"continuous", "interval"}) {
				t.Errorf("%s.schedule choices = %v", m.Slug, o.Choices)
			}
		}
		if got != len(want) {
			t.Errorf("%s lists %d of Warehouse's %d settings: %+v", m.Slug, got, len(want), m.Options)
		}
	}
}
