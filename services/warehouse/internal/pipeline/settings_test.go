package pipeline

import (
	"strings"
	"testing"
	"time"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
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
