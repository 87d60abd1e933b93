package catalog

import (
	"fmt"
	"math"
	"sort"
	"time"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/protobuf/types/known/structpb"
)

// Warehouse's settings: every engine has them besides its connection setting
// (path, dsn). Warehouse reads them from the same settings Struct
// (services/warehouse/internal/pipeline.ParseSettings) and does not run a
// warehouse whose settings it cannot parse, so Catalog accepts exactly what
// ParseSettings accepts, with one exception: interval_seconds above
// maxIntervalSeconds, which ParseSettings would turn into a wrong interval.

// The schedules of a warehouse (settings.schedule).
const (
	scheduleContinuous = "continuous"
	scheduleInterval   = "interval"
)

// maxIntervalSeconds is the longest interval Warehouse can hold: it
// multiplies interval_seconds by time.Second, and a time.Duration of more
// seconds overflows (about 292 years).
const maxIntervalSeconds = math.MaxInt64 / int64(time.Second)

// warehouseOptions are the settings schema of Warehouse's settings, the same
// for every engine; the ranges in the descriptions are warehouseChecks'.
func warehouseOptions() []*catalogv1.IntegrationOption {
	return []*catalogv1.IntegrationOption{
		withDefault(opt("batch_size", settingNumber, false, false,
			"Most events loaded in one batch: a whole number from 1 to 10000."), 1000),
		withDefault(opt("batch_wait_ms", settingNumber, false, false,
			"Longest wait for a batch to fill, in milliseconds: a whole number from 10 to 60000."), 500),
		withDefault(withChoices(opt("schedule", settingSelect, false, false,
			"continuous: load events as they arrive; interval: load everything waiting once every interval_seconds, and at once on \"sync now\"."),
			scheduleContinuous, scheduleInterval), scheduleContinuous),
		opt("interval_seconds", settingNumber, false, false,
			"Seconds between two syncs of the interval schedule: a whole number of at least 1, required when schedule is interval."),
		withDefault(opt("disabled_tables", settingList, false, false,
			"Tables not loaded (selective sync), e.g. [\"pages\", \"users\"]."), []any{}),
		withDefault(opt("disabled_columns", settingListMap, false, false,
			"Columns not loaded (selective sync): a table name, or \"*\" for every table, to a list of column names, e.g. {\"tracks\": [\"context_ip\"]}."), map[string]any{}),
	}
}

// warehouseChecks are the rules of Warehouse's settings beyond their types.
var warehouseChecks = map[string]settingCheck{
	"batch_size":       wholeNumber(1, 10000),
	"batch_wait_ms":    wholeNumber(10, 60000),
	"interval_seconds": wholeNumber(1, maxIntervalSeconds),
	"disabled_tables":  warehouseNames("table"),
	"disabled_columns": disabledColumns,
}

// warehouseName reports whether name is a table or column name as the
// warehouse writes it (snake_case: lower-case letters, digits and _). Any
// other name could never match, so selective sync would silently do nothing.
func warehouseName(name string) bool {
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return name != ""
}

// warehouseNames is the rule of a list of table (or column) names.
func warehouseNames(what string) settingCheck {
	return func(field string, v *structpb.Value) error {
		for i, e := range v.GetListValue().GetValues() {
			if n := e.GetStringValue(); !warehouseName(n) {
				return invalid(fmt.Sprintf("%s[%d]", field, i), "SETTING_NAME",
					"must be a %s name as the warehouse writes it (lower-case letters, digits and _, e.g. order_completed), got %q", what, n)
			}
		}
		return nil
	}
}

// disabledColumns is the rule of disabled_columns: table names (or "*")
// to lists of column names.
func disabledColumns(field string, v *structpb.Value) error {
	fields := v.GetStructValue().GetFields()
	tables := make([]string, 0, len(fields))
	for t := range fields {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		if t != "*" && !warehouseName(t) {
			return invalid(field, "SETTING_NAME",
				"keys must be table names as the warehouse writes them (lower-case letters, digits and _, e.g. order_completed) or \"*\", got %q", t)
		}
		if err := warehouseNames("column")(field+"."+t, fields[t]); err != nil {
			return err
		}
	}
	return nil
}

// wholeNumber is the rule of a setting that is a whole number from lo to hi:
// a JSON number without a fraction (1000 and 1000.0 are the same number).
func wholeNumber(lo, hi int64) settingCheck {
	return func(field string, v *structpb.Value) error {
		n := v.GetNumberValue()
		if n != math.Trunc(n) {
			return invalid(field, "SETTING_TYPE", "must be a whole number, got %s", describe(v))
		}
		if n < float64(lo) || n > float64(hi) {
			return invalid(field, "SETTING_RANGE", "must be between %d and %d, got %s", lo, hi, describe(v))
		}
		return nil
	}
}

// validateWarehouseSettings checks a warehouse's settings against its
// engine's schema m, the ranges of Warehouse's settings and the rule that
// the interval schedule needs interval_seconds.
func validateWarehouseSettings(m *catalogv1.IntegrationMetadata, s *structpb.Struct) error {
	if err := validateSettings(m, s, warehouseChecks); err != nil {
		return err
	}
	f := s.GetFields()
	if f["schedule"].GetStringValue() == scheduleInterval && f["interval_seconds"] == nil {
		return invalid("settings.interval_seconds", "REQUIRED", "is required when schedule is %q", scheduleInterval)
	}
	return nil
}

// withoutUnset returns a copy of s without m's optional settings that are
// null or the empty string: such a value means "not set" (the schema's
// default applies), and Warehouse, which reads every key present, would
// refuse it. Required settings stay, so that they are reported as missing.
func withoutUnset(m *catalogv1.IntegrationMetadata, s *structpb.Struct) *structpb.Struct {
	out := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(s.GetFields()))}
	for k, v := range s.GetFields() {
		out.Fields[k] = v
	}
	for _, o := range m.GetOptions() {
		v, ok := out.Fields[o.Name]
		if ok && !o.Required && (isNullValue(v) || (isString(v) && v.GetStringValue() == "")) {
			delete(out.Fields, o.Name)
		}
	}
	return out
}
