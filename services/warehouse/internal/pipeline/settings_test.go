package pipeline

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestParseSettings(t *testing.T) {
	t.Parallel()
	t.Run("defaults are continuous, 1000 events, 500 ms", func(t *testing.T) {
		s, err := ParseSettings(warehouse("w", catalogv1.WarehouseType_WAREHOUSE_TYPE_DUCKDB, map[string]any{"path": "x"}))
		if err != nil || s.BatchSize != 1000 || s.BatchWait != 500*time.Millisecond || s.Schedule != ScheduleContinuous {
			t.Fatalf("got %+v, %v", s, err)
		}
	})
	t.Run("every key is read", func(t *testing.T) {
		s, err := ParseSettings(warehouse("w", catalogv1.WarehouseType_WAREHOUSE_TYPE_DUCKDB, map[string]any{
			"batch_size": 50, "batch_wait_ms": 20, "schedule": "interval", "interval_seconds": 900,
			"disabled_tables": []any{"pages"}, "disabled_columns": map[string]any{"*": []any{"context_ip"}},
		}))
		if err != nil || s.BatchSize != 50 || s.BatchWait != 20*time.Millisecond || s.Schedule != ScheduleInterval ||
			s.Interval != 15*time.Minute || !s.Selection.DisabledTables["pages"] || !s.Selection.DisabledColumns["*"]["context_ip"] {
			t.Fatalf("got %+v, %v", s, err)
		}
	})
	bad := map[string]map[string]any{
		"batch_size: 0 is not between 1 and 10000":             {"batch_size": 0},
		"batch_size: not an integer":                           {"batch_size": 1.5},
		"batch_wait_ms: 1 is not between 10 and 60000":         {"batch_wait_ms": 1},
		`schedule: "hourly" is not`:                            {"schedule": "hourly"},
		"interval_seconds: required for the interval schedule": {"schedule": "interval"},
		"disabled_tables: not a list of names":                 {"disabled_tables": "pages"},
		"disabled_columns.pages: not a list of names":          {"disabled_columns": map[string]any{"pages": 3}},
	}
	for want, settings := range bad {
		t.Run("refuses "+want, func(t *testing.T) {
			_, err := ParseSettings(warehouse("w", catalogv1.WarehouseType_WAREHOUSE_TYPE_DUCKDB, settings))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want one containing %q", err, want)
			}
		})
	}
}

func TestNextBatchSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		batchSize int
		got       int
		pending   uint64
		want      int
	}{
		{"caught up: the configured size", 1000, 1000, 0, 1000},
		{"empty fetch: the configured size", 1000, 0, 0, 1000},
		{"small backlog: never below the configured size", 1000, 1000, 10, 1000},
		{"backlog: what waits", 1000, 1000, 4321, 4321},
		{"large backlog: at most 10 × batch_size", 1000, 1000, 1_000_000, 10000},
		{"batch_size 50: at most 500", 50, 50, 1_000_000, 500},
		{"batch_size 5000: at most 10000", 5000, 5000, 1_000_000, 10000},
		{"batch_size 10000: stays 10000", 10000, 10000, 1_000_000, 10000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Settings{BatchSize: tt.batchSize}
			if got := s.NextBatchSize(tt.got, tt.pending); got != tt.want {
				t.Fatalf("NextBatchSize(%d, %d) with batch_size %d = %d, want %d", tt.got, tt.pending, tt.batchSize, got, tt.want)
			}
		})
	}
}

// TestSettingsAgreeWithCatalog runs ParseSettings over Catalog's warehouse settings cases
// (services/catalog/internal/catalog/testdata): every setting Catalog accepts (as it stores it)
// parses, and every one it refuses for its value fails to parse, naming the key. Catalog also
// refuses unknown keys, which the Warehouse ignores, and names the warehouse never writes.
func TestSettingsAgreeWithCatalog(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../../catalog/internal/catalog/testdata/warehouse_settings_cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name     string         `json:"name"`
		Settings map[string]any `json:"settings"`
		Stored   map[string]any `json:"stored"`
		Field    string         `json:"field"`
		Rule     string         `json:"rule"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 40 {
		t.Fatalf("%d cases, want the whole file", len(cases))
	}
	for _, c := range cases {
		settings := c.Settings
		if c.Stored != nil {
			settings = c.Stored
		}
		st, err := structpb.NewStruct(settings)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		_, err = ParseSettings(&catalogv1.Warehouse{Settings: st})
		switch {
		case c.Field == "":
			if err != nil {
				t.Errorf("%s: Catalog accepts %v, ParseSettings refuses it: %v", c.Name, settings, err)
			}
		case c.Rule == "SETTING_UNKNOWN" || c.Rule == "SETTING_NAME":
			// Catalog's own rules: unknown keys are ignored, and a name that can never match
			// (refused so that selective sync does not silently do nothing) matches nothing.
			if err != nil {
				t.Errorf("%s: Catalog-only rule %s, ParseSettings says %v", c.Name, c.Rule, err)
			}
		default:
			key := strings.TrimPrefix(c.Field, "settings.")
			key = key[:strings.IndexFunc(key+".", func(r rune) bool { return r == '.' || r == '[' })]
			if err == nil || !strings.Contains(err.Error(), key) {
				t.Errorf("%s: Catalog refuses %v (%s), ParseSettings says %v", c.Name, settings, c.Field, err)
			}
		}
	}
}
