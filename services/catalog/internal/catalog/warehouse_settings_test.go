package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// warehouseSettingsCase is one entry of testdata/warehouse_settings_cases.json: Warehouse's
// settings (without the engine's connection setting) and, when they are refused, the field and
// rule of the error. Stored, when given, is what is kept of accepted settings (else the settings).
type warehouseSettingsCase struct {
	Name     string           `json:"name"`
	Settings *structpb.Struct `json:"settings"`
	Stored   *structpb.Struct `json:"stored"`
	Field    string           `json:"field"`
	Rule     string           `json:"rule"`
}

// loadWarehouseSettingsCases reads the fixture shared with the REST tests (app/).
func loadWarehouseSettingsCases(t *testing.T) []warehouseSettingsCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "warehouse_settings_cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var list structpb.ListValue
	if err := protojson.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	var cases []warehouseSettingsCase
	for _, v := range list.GetValues() {
		f := v.GetStructValue().GetFields()
		c := warehouseSettingsCase{
			Name: f["name"].GetStringValue(), Settings: f["settings"].GetStructValue(),
			Stored: f["stored"].GetStructValue(), Field: f["field"].GetStringValue(), Rule: f["rule"].GetStringValue(),
		}
		if c.Name == "" || c.Settings == nil {
			t.Fatalf("fixture entry without name or settings: %v", v)
		}
		cases = append(cases, c)
	}
	return cases
}

// engineSettings returns c's settings with the connection setting of the engine slug.
func engineSettings(t *testing.T, slug string, c *structpb.Struct) *structpb.Struct {
	t.Helper()
	s := proto.Clone(c).(*structpb.Struct)
	if s.Fields == nil {
		s.Fields = map[string]*structpb.Value{}
	}
	switch slug {
	case "duckdb":
		s.Fields["path"] = structpb.NewStringValue("/tmp/wh.duckdb")
	case "postgres":
		s.Fields["dsn"] = structpb.NewStringValue("postgres://u:pw@db:5432/x")
	default:
		t.Fatalf("no connection setting for %q", slug)
	}
	return s
}

// TestWarehouseSettingsValidation runs every fixture case on both engines through what Create
// and Update do (withoutUnset, then validateWarehouseSettings).
func TestWarehouseSettingsValidation(t *testing.T) {
	t.Parallel()
	cases := loadWarehouseSettingsCases(t)
	for _, slug := range []string{"duckdb", "postgres"} {
		m := findMeta(warehouseCatalog, slug)
		for _, c := range cases {
			t.Run(slug+"/"+c.Name, func(t *testing.T) {
				t.Parallel()
				in := engineSettings(t, slug, c.Settings)
				got := withoutUnset(m, in)
				err := validateWarehouseSettings(m, got)
				if c.Field == "" {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					want := in
					if c.Stored != nil {
						want = engineSettings(t, slug, c.Stored)
					}
					if !proto.Equal(got, want) {
						t.Errorf("kept %v, want %v", got, want)
					}
					return
				}
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("error = %v, want a ValidationError for %s", err, c.Field)
				}
				if ve.Field != c.Field || ve.Rule != c.Rule || ve.Message == "" {
					t.Errorf("got field=%q rule=%q message=%q, want field=%q rule=%q", ve.Field, ve.Rule, ve.Message, c.Field, c.Rule)
				}
			})
		}
	}
}

// TestWarehouseSettingsMessages pins the wording users read for each kind of bad value.
func TestWarehouseSettingsMessages(t *testing.T) {
	t.Parallel()
	m := findMeta(warehouseCatalog, "postgres")
	for _, tc := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{"batch_size": 2.5}, "settings.batch_size: must be a whole number, got 2.5"},
		{map[string]any{"batch_size": 0}, "settings.batch_size: must be between 1 and 10000, got 0"},
		{map[string]any{"batch_wait_ms": 60001}, "settings.batch_wait_ms: must be between 10 and 60000, got 60001"},
		{map[string]any{"batch_wait_ms": "500"}, "settings.batch_wait_ms: must be a number"},
		{map[string]any{"schedule": "hourly"}, `settings.schedule: must be one of continuous, interval, got "hourly"`},
		{map[string]any{"schedule": "interval"}, `settings.interval_seconds: is required when schedule is "interval"`},
		{map[string]any{"disabled_tables": "pages"}, `settings.disabled_tables: must be a list of non-empty strings, got "pages"`},
		{map[string]any{"disabled_tables": []any{"pages", ""}}, `settings.disabled_tables[1]: must be a non-empty string, got ""`},
		{map[string]any{"disabled_columns": []any{"pages"}}, `settings.disabled_columns: must be an object of names to lists of non-empty strings, got ["pages"]`},
		{map[string]any{"disabled_columns": map[string]any{"pages": "url"}}, `settings.disabled_columns.pages: must be a list of non-empty strings, got "url"`},
		{map[string]any{"batch_size": 1000, "bogus": 1}, "settings.bogus: is not a postgres setting (allowed: dsn, batch_size, batch_wait_ms, schedule, interval_seconds, disabled_tables, disabled_columns)"},
	} {
		s, err := structpb.NewStruct(tc.settings)
		if err != nil {
			t.Fatal(err)
		}
		s.Fields["dsn"] = structpb.NewStringValue("postgres://db/x")
		err = validateWarehouseSettings(m, withoutUnset(m, s))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v: error = %v, want %s", tc.settings, err, tc.want)
		}
	}
}

// TestWarehouseCatalogListsWarehouseSettings checks the schema GET /catalog/warehouses shows:
// each engine's connection setting first, then Warehouse's settings with their types, defaults
// and choices.
func TestWarehouseCatalogListsWarehouseSettings(t *testing.T) {
	t.Parallel()
	type want struct {
		name, typ string
		def       string // the default as JSON; "" = none
		choices   []string
	}
	common := []want{
		{"batch_size", settingNumber, "1000", nil},
		{"batch_wait_ms", settingNumber, "500", nil},
		{"schedule", settingSelect, `"continuous"`, []string{"continuous", "interval"}},
		{"interval_seconds", settingNumber, "", nil},
		{"disabled_tables", settingList, "[]", nil},
		{"disabled_columns", settingListMap, "{}", nil},
	}
	for _, engine := range []struct{ slug, conn string }{{"duckdb", "path"}, {"postgres", "dsn"}} {
		t.Run(engine.slug, func(t *testing.T) {
			var m *catalogv1.IntegrationMetadata
			for _, x := range CatalogWarehouses() {
				if x.GetSlug() == engine.slug {
					m = x
				}
			}
			if m == nil {
				t.Fatalf("no %s in the warehouse catalog", engine.slug)
			}
			opts := m.GetOptions()
			if len(opts) != 1+len(common) || opts[0].GetName() != engine.conn || !opts[0].GetRequired() {
				t.Fatalf("options = %v, want %s (required) then Warehouse's %d settings", opts, engine.conn, len(common))
			}
			for i, w := range common {
				o := opts[i+1]
				def := ""
				if o.GetDefaultValue() != nil {
					b, err := protojson.Marshal(o.GetDefaultValue())
					if err != nil {
						t.Fatal(err)
					}
					def = string(b)
				}
				if o.GetName() != w.name || o.GetType() != w.typ || def != w.def || !slices.Equal(o.GetChoices(), w.choices) ||
					o.GetRequired() || o.GetSecret() || o.GetDescription() == "" {
					t.Errorf("option %d = %v, want name=%s type=%s default=%s choices=%v, optional, described", i+1, o, w.name, w.typ, w.def, w.choices)
				}
			}
		})
	}
}

// TestWithoutUnsetKeepsRequiredAndUnknown checks that only optional settings of the schema are
// dropped when null or empty: a missing connection setting is still reported, and an unknown
// key is still refused.
func TestWithoutUnsetKeepsRequiredAndUnknown(t *testing.T) {
	t.Parallel()
	m := findMeta(warehouseCatalog, "postgres")
	s, _ := structpb.NewStruct(map[string]any{"dsn": "", "other": nil, "schedule": ""})
	got := withoutUnset(m, s)
	if _, ok := got.GetFields()["schedule"]; ok {
		t.Errorf("empty schedule kept: %v", got)
	}
	if len(s.GetFields()) != 3 {
		t.Errorf("the input was changed: %v", s)
	}
	err := validateWarehouseSettings(m, got)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != "settings.other" || ve.Rule != "SETTING_UNKNOWN" {
		t.Fatalf("error = %v, want settings.other SETTING_UNKNOWN", err)
	}
	delete(got.Fields, "other")
	if err := validateWarehouseSettings(m, got); !errors.As(err, &ve) || ve.Field != "settings.dsn" || ve.Rule != "REQUIRED" {
		t.Fatalf("error = %v, want settings.dsn REQUIRED", err)
	}
}
