package pipeline

import (
	"errors"
	"fmt"
	"math"
	"time"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"github.com/switchyardhq/switchyard/services/warehouse/internal/loader"
	"google.golang.org/protobuf/types/known/structpb"
)

// Schedules.
const (
	// ScheduleContinuous loads micro-batches as events arrive.
	ScheduleContinuous = "continuous"
	// ScheduleInterval loads everything waiting once per interval, or on "sync now".
	ScheduleInterval = "interval"
)

// Limits of the settings.
const (
	MaxBatchSize = 10000
	MinBatchWait = 10 * time.Millisecond
	MaxBatchWait = time.Minute
	MinInterval  = time.Second
	// MaxIntervalSeconds is the longest interval a time.Duration holds (about 292 years).
	MaxIntervalSeconds = int(math.MaxInt64 / int64(time.Second))
	DefaultWindow      = time.Minute
	defaultBatchMs     = 500
)

// Settings are the per-warehouse settings only Warehouse reads. They live in the Catalog
// warehouse's settings Struct next to the engine keys (path, dsn), so one CAS-guarded write
// changes them and every loader sees the change through the config watch.
type Settings struct {
	// BatchSize is settings.batch_size: the most events per load (default 1000, 1–10000).
	BatchSize int
	// BatchWait is settings.batch_wait_ms: the longest wait for a batch to fill (default 500 ms,
	// 10 ms–60 s).
	BatchWait time.Duration
	// Schedule is settings.schedule: "continuous" (default) or "interval".
	Schedule string
	// Interval is settings.interval_seconds (required for the interval schedule, ≥ 1).
	Interval time.Duration
	// Selection is settings.disabled_tables (list of table names) and settings.disabled_columns
	// (object: table name, or "*" for every table → list of column names).
	Selection loader.Selection
}

// BacklogBatch is the most events one load takes while the consumer has a backlog: 10 ×
// BatchSize, at most MaxBatchSize (and never less than BatchSize). Larger loads amortize each
// transaction's fixed costs (commit, per-table statements) when events wait anyway.
func (s Settings) BacklogBatch() int {
	return max(s.BatchSize, min(MaxBatchSize, 10*s.BatchSize))
}

// NextBatchSize is the size of the next fetch after one that returned got events and left pending
// events waiting for the consumer: BatchSize when the consumer is caught up, otherwise what waits,
// between BatchSize and BacklogBatch.
func (s Settings) NextBatchSize(got int, pending uint64) int {
	if got == 0 || pending == 0 {
		return s.BatchSize
	}
	return int(min(uint64(s.BacklogBatch()), max(uint64(s.BatchSize), pending)))
}

// ParseSettings reads and validates the Warehouse-owned keys of wh.settings.
func ParseSettings(wh *catalogv1.Warehouse) (Settings, error) {
	f := wh.GetSettings().GetFields()
	s := Settings{BatchSize: BatchSize, BatchWait: BatchWait, Schedule: ScheduleContinuous}
	var errs []error
	if v, ok := f["batch_size"]; ok {
		n, err := intValue(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("batch_size: %w", err))
		case n < 1 || n > MaxBatchSize:
			errs = append(errs, fmt.Errorf("batch_size: %d is not between 1 and %d", n, MaxBatchSize))
		default:
			s.BatchSize = n
		}
	}
	if v, ok := f["batch_wait_ms"]; ok {
		n, err := intValue(v)
		d := time.Duration(n) * time.Millisecond
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("batch_wait_ms: %w", err))
		case d < MinBatchWait || d > MaxBatchWait:
			errs = append(errs, fmt.Errorf("batch_wait_ms: %d is not between %d and %d", n, MinBatchWait.Milliseconds(), MaxBatchWait.Milliseconds()))
		default:
			s.BatchWait = d
		}
	}
	if v, ok := f["schedule"]; ok {
		switch v.GetStringValue() {
		case ScheduleContinuous, ScheduleInterval:
			s.Schedule = v.GetStringValue()
		default:
			errs = append(errs, fmt.Errorf("schedule: %q is not %q or %q", v.GetStringValue(), ScheduleContinuous, ScheduleInterval))
		}
	}
	if v, ok := f["interval_seconds"]; ok {
		n, err := intValue(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("interval_seconds: %w", err))
		case time.Duration(n)*time.Second < MinInterval:
			errs = append(errs, fmt.Errorf("interval_seconds: %d is below 1", n))
		case n > MaxIntervalSeconds:
			errs = append(errs, fmt.Errorf("interval_seconds: %d is above %d", n, MaxIntervalSeconds))
		default:
			s.Interval = time.Duration(n) * time.Second
		}
	}
	if s.Schedule == ScheduleInterval && s.Interval == 0 {
		errs = append(errs, errors.New("interval_seconds: required for the interval schedule"))
	}
	if v, ok := f["disabled_tables"]; ok {
		names, err := stringList(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("disabled_tables: %w", err))
		}
		for _, n := range names {
			if s.Selection.DisabledTables == nil {
				s.Selection.DisabledTables = map[string]bool{}
			}
			s.Selection.DisabledTables[n] = true
		}
	}
	if v, ok := f["disabled_columns"]; ok {
		obj := v.GetStructValue()
		if obj == nil {
			errs = append(errs, errors.New("disabled_columns: not an object of table → column list"))
		}
		for table, cols := range obj.GetFields() {
			names, err := stringList(cols)
			if err != nil {
				errs = append(errs, fmt.Errorf("disabled_columns.%s: %w", table, err))
				continue
			}
			for _, c := range names {
				if s.Selection.DisabledColumns == nil {
					s.Selection.DisabledColumns = map[string]map[string]bool{}
				}
				if s.Selection.DisabledColumns[table] == nil {
					s.Selection.DisabledColumns[table] = map[string]bool{}
				}
				s.Selection.DisabledColumns[table][c] = true
			}
		}
	}
	return s, errors.Join(errs...)
}

func intValue(v *structpb.Value) (int, error) {
	n, ok := v.GetKind().(*structpb.Value_NumberValue)
	if !ok || n.NumberValue != math.Trunc(n.NumberValue) || math.Abs(n.NumberValue) > 1e12 {
		return 0, errors.New("not an integer")
	}
	return int(n.NumberValue), nil
}

func stringList(v *structpb.Value) ([]string, error) {
	l := v.GetListValue()
	if l == nil {
		return nil, errors.New("not a list of names")
	}
	out := make([]string, 0, len(l.GetValues()))
	for _, e := range l.GetValues() {
		s, ok := e.GetKind().(*structpb.Value_StringValue)
		if !ok || s.StringValue == "" {
			return nil, errors.New("not a list of names")
		}
		out = append(out, s.StringValue)
	}
	return out, nil
}
