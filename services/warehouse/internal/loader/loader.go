// Package loader writes batches of Segment events into a warehouse, creating and widening tables
// as events arrive. A batch is loaded in one transaction; Load returns nil only after it committed,
// so the caller acks the batch's JetStream messages only then (at-least-once). Redeliveries are
// harmless: every table's id (the messageId) is its primary key and inserts skip existing ids.
package loader

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
	"github.com/switchyardhq/switchyard/services/warehouse/internal/schema"
)

// maxParams bounds the bind parameters of one multi-row INSERT.
const maxParams = 8000

// tableColumns maps a column name to its kind.
type tableColumns map[string]sqlengine.ColumnKind

// schemaLayout maps a table name to its columns.
type schemaLayout map[string]tableColumns

// Loader loads event batches into one warehouse. It is safe for concurrent use; loads are
// serialized because DuckDB has a single writer and the schema cache is updated per commit.
type Loader struct {
	e      sqlengine.Engine
	d      sqlengine.Dialect
	logger *slog.Logger
	now    func() time.Time

	mu sync.Mutex
	// known is the committed layout per warehouse schema, read from information_schema on the
	// schema's first load (so restarts work) and updated only after a commit.
	known map[string]schemaLayout
}

// New returns a Loader writing through e.
func New(e sqlengine.Engine, logger *slog.Logger) *Loader {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Loader{e: e, d: e.Dialect(), logger: logger, now: time.Now, known: map[string]schemaLayout{}}
}

// discard is one value that could not be cast to its column's type; it is stored in the schema's
// discards table and the row gets NULL instead.
type discard struct {
	table, column, value, rowID, reason string
	receivedAt                          any
}

// Load writes events (raw Segment event JSON, as stored in the EVENTS stream) into schemaName, which
// must be a valid identifier (the caller passes the source's slug). Events that can never be loaded
// (not JSON, no messageId, unknown type) are logged and skipped, so one bad event cannot block a
// stream. Everything else is written in one transaction; Load returns nil only after COMMIT.
func (l *Loader) Load(ctx context.Context, schemaName string, events [][]byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()

	rows := l.buildRows(schemaName, events, l.now().UTC())
	if len(rows) == 0 {
		return nil
	}
	known, err := l.layout(ctx, schemaName)
	if err != nil {
		return err
	}
	staged := maps.Clone(known) // tables are replaced, never mutated, so a shallow clone is enough

	tx, err := l.e.DB().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin load into %q: %w", schemaName, err)
	}
	defer func() { _ = tx.Rollback() }()

	if err := l.write(ctx, tx, schemaName, staged, rows); err != nil {
		// The database may now differ from what we believed; read it again next time.
		delete(l.known, schemaName)
		return err
	}
	if err := tx.Commit(); err != nil {
		delete(l.known, schemaName)
		return fmt.Errorf("commit load into %q: %w", schemaName, err)
	}
	l.known[schemaName] = staged
	return nil
}

func (l *Loader) buildRows(schemaName string, events [][]byte, loadedAt time.Time) []schema.Row {
	var rows []schema.Row
	for i, raw := range events {
		ev, err := schema.ParseObject(raw)
		var built []schema.Row
		var notices []schema.Notice
		if err == nil {
			built, notices, err = schema.Build(ev, loadedAt)
		}
		if err != nil {
			l.logger.Warn("skipping event that cannot be loaded", "schema", schemaName, "index", i, "error", err)
			continue
		}
		for _, n := range notices {
			l.logger.Warn("event key not loaded as sent", "schema", schemaName, "table", n.Table,
				"column", n.Column, "key", n.Key, "reason", n.Reason)
		}
		rows = append(rows, built...)
	}
	return rows
}

// layout returns the committed layout of schemaName, reading it from the database on first use.
func (l *Loader) layout(ctx context.Context, schemaName string) (schemaLayout, error) {
	if s, ok := l.known[schemaName]; ok {
		return s, nil
	}
	q := "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = " + l.d.Placeholder(1)
	rs, err := l.e.DB().QueryContext(ctx, q, schemaName)
	if err != nil {
		return nil, fmt.Errorf("read layout of %q: %w", schemaName, err)
	}
	defer func() { _ = rs.Close() }()
	s := schemaLayout{}
	for rs.Next() {
		var table, column, dataType string
		if err := rs.Scan(&table, &column, &dataType); err != nil {
			return nil, fmt.Errorf("read layout of %q: %w", schemaName, err)
		}
		k, ok := l.d.KindOf(dataType)
		if !ok {
			k = sqlengine.KindString // a type we never create: values are cast to text
		}
		if s[table] == nil {
			s[table] = tableColumns{}
		}
		s[table][column] = k
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read layout of %q: %w", schemaName, err)
	}
	l.known[schemaName] = s
	return s, nil
}

// write runs the whole load inside tx, recording new tables and columns in staged.
func (l *Loader) write(ctx context.Context, tx *sql.Tx, schemaName string, staged schemaLayout, rows []schema.Row) error {
	if _, err := tx.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+l.d.QuoteIdent(schemaName)); err != nil {
		return fmt.Errorf("create schema %q: %w", schemaName, err)
	}
	var order []string
	byTable := map[string][]schema.Row{}
	for _, r := range rows {
		if _, ok := byTable[r.Table]; !ok {
			order = append(order, r.Table)
		}
		byTable[r.Table] = append(byTable[r.Table], r)
	}
	var discards []discard
	for _, table := range order {
		trows := byTable[table]
		if err := l.ensureTable(ctx, tx, schemaName, staged, table, trows); err != nil {
			return err
		}
		var d []discard
		var err error
		if table == schema.TableUsers {
			d, err = l.upsertUsers(ctx, tx, schemaName, staged[table], trows)
		} else {
			d, err = l.insert(ctx, tx, schemaName, staged[table], table, trows)
		}
		if err != nil {
			return err
		}
		discards = append(discards, d...)
	}
	return l.writeDiscards(ctx, tx, schemaName, discards)
}

// ensureTable creates table if needed and adds the columns rows need. A new column's type is the
// kind of its values in this batch; when they disagree, int and float give float and any other
// mix gives string, which can hold every value.
func (l *Loader) ensureTable(ctx context.Context, tx *sql.Tx, schemaName string, staged schemaLayout, table string, rows []schema.Row) error {
	name := sqlengine.QualifiedName(l.d, schemaName, table)
	cols, exists := staged[table]
	if !exists {
		q := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s %s PRIMARY KEY)", name, l.d.QuoteIdent("id"), l.d.ColumnType(sqlengine.KindString))
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("create table %s: %w", name, err)
		}
		cols = tableColumns{"id": sqlengine.KindString}
	}
	added := map[string]sqlengine.ColumnKind{}
	for _, r := range rows {
		for c, v := range r.Columns {
			if _, ok := cols[c]; ok {
				continue
			}
			if k, seen := added[c]; seen {
				added[c] = mergeKinds(k, v.Kind)
			} else {
				added[c] = v.Kind
			}
		}
	}
	if len(added) == 0 && exists {
		return nil
	}
	cols = maps.Clone(cols)
	for _, c := range slices.Sorted(maps.Keys(added)) {
		q := fmt.Sprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s", name, l.d.QuoteIdent(c), l.d.ColumnType(added[c]))
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("add column %s to %s: %w", c, name, err)
		}
		cols[c] = added[c]
	}
	staged[table] = cols
	return nil
}

func mergeKinds(a, b sqlengine.ColumnKind) sqlengine.ColumnKind {
	switch {
	case a == b:
		return a
	case (a == sqlengine.KindInt || a == sqlengine.KindFloat) && (b == sqlengine.KindInt || b == sqlengine.KindFloat):
		return sqlengine.KindFloat
	default:
		return sqlengine.KindString
	}
}

// rowValues casts a row's values to the column kinds of cols (in order), collecting discards.
func rowValues(table string, cols []string, kinds tableColumns, r schema.Row, discards *[]discard) []any {
	vals := make([]any, len(cols))
	for i, c := range cols {
		v, ok := r.Columns[c]
		if !ok {
			continue
		}
		cv, err := cast(v, kinds[c])
		if err != nil {
			*discards = append(*discards, discard{
				table: table, column: c, value: text(v), rowID: r.ID(),
				receivedAt: r.Columns["received_at"].V, reason: err.Error(),
			})
			continue
		}
		vals[i] = cv
	}
	return vals
}

// insert writes rows with multi-row INSERTs that skip ids already present. Within the batch the
// first row for an id wins.
func (l *Loader) insert(ctx context.Context, tx *sql.Tx, schemaName string, kinds tableColumns, table string, rows []schema.Row) ([]discard, error) {
	seen := map[string]bool{}
	unique := rows[:0:0]
	used := map[string]bool{}
	for _, r := range rows {
		if seen[r.ID()] {
			continue
		}
		seen[r.ID()] = true
		unique = append(unique, r)
		for c := range r.Columns {
			used[c] = true
		}
	}
	cols := slices.Sorted(maps.Keys(used))
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = l.d.QuoteIdent(c)
	}
	head := fmt.Sprintf("INSERT INTO %s (%s) VALUES ", sqlengine.QualifiedName(l.d, schemaName, table), strings.Join(quoted, ", "))
	tail := fmt.Sprintf(" ON CONFLICT (%s) DO NOTHING", l.d.QuoteIdent("id"))
	perStmt := max(1, maxParams/len(cols))

	var discards []discard
	for chunk := range slices.Chunk(unique, perStmt) {
		var b strings.Builder
		b.WriteString(head)
		args := make([]any, 0, len(chunk)*len(cols))
		for i, r := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('(')
			for j := range cols {
				if j > 0 {
					b.WriteString(", ")
				}
				b.WriteString(l.d.Placeholder(len(args) + j + 1))
			}
			b.WriteByte(')')
			args = append(args, rowValues(table, cols, kinds, r, &discards)...)
		}
		b.WriteString(tail)
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return nil, fmt.Errorf("insert into %s.%s: %w", schemaName, table, err)
		}
	}
	return discards, nil
}

// upsertUsers applies identify rows to the users table one at a time, in batch order: each row
// overwrites the traits it carries and leaves the others, so a user holds the latest non-null
// value of every trait. A row older (by received_at) than the stored one changes nothing, so a
// redelivered old identify cannot roll a user back.
func (l *Loader) upsertUsers(ctx context.Context, tx *sql.Tx, schemaName string, kinds tableColumns, rows []schema.Row) ([]discard, error) {
	slices.SortStableFunc(rows, func(a, b schema.Row) int {
		ta, _ := a.Columns["received_at"].V.(time.Time)
		tb, _ := b.Columns["received_at"].V.(time.Time)
		return ta.Compare(tb)
	})
	table := sqlengine.QualifiedName(l.d, schemaName, schema.TableUsers)
	users := l.d.QuoteIdent(schema.TableUsers)
	recv := l.d.QuoteIdent("received_at")
	var discards []discard
	for _, r := range rows {
		cols := slices.Sorted(maps.Keys(r.Columns))
		quoted := make([]string, len(cols))
		ph := make([]string, len(cols))
		var set []string
		for i, c := range cols {
			quoted[i] = l.d.QuoteIdent(c)
			ph[i] = l.d.Placeholder(i + 1)
			if c != "id" {
				set = append(set, fmt.Sprintf("%s = EXCLUDED.%s", quoted[i], quoted[i]))
			}
		}
		q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) DO UPDATE SET %s WHERE %s.%s IS NULL OR %s.%s <= EXCLUDED.%s",
			table, strings.Join(quoted, ", "), strings.Join(ph, ", "), l.d.QuoteIdent("id"),
			strings.Join(set, ", "), users, recv, users, recv, recv)
		args := rowValues(schema.TableUsers, cols, kinds, r, &discards)
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return nil, fmt.Errorf("upsert into %s: %w", table, err)
		}
	}
	return discards, nil
}

// writeDiscards records uncastable values in the schema's discards table. Its key is
// (table_name, column_name, row_id), so a redelivered batch records nothing twice.
func (l *Loader) writeDiscards(ctx context.Context, tx *sql.Tx, schemaName string, discards []discard) error {
	if len(discards) == 0 {
		return nil
	}
	name := sqlengine.QualifiedName(l.d, schemaName, schema.TableDiscards)
	str, ts := l.d.ColumnType(sqlengine.KindString), l.d.ColumnType(sqlengine.KindTimestamp)
	q := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	table_name %s NOT NULL, column_name %s NOT NULL, value %s, row_id %s NOT NULL,
	received_at %s, reason %s, uuid_ts %s,
	PRIMARY KEY (table_name, column_name, row_id))`, name, str, str, str, str, ts, str, ts)
	if _, err := tx.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	ph := make([]string, 7)
	for i := range ph {
		ph[i] = l.d.Placeholder(i + 1)
	}
	ins := fmt.Sprintf("INSERT INTO %s (table_name, column_name, value, row_id, received_at, reason, uuid_ts) VALUES (%s) ON CONFLICT (table_name, column_name, row_id) DO NOTHING",
		name, strings.Join(ph, ", "))
	now := l.now().UTC()
	for _, d := range discards {
		l.logger.Warn("value does not fit its column: stored in discards", "schema", schemaName,
			"table", d.table, "column", d.column, "row_id", d.rowID, "reason", d.reason)
		if _, err := tx.ExecContext(ctx, ins, d.table, d.column, d.value, d.rowID, d.receivedAt, d.reason, now); err != nil {
			return fmt.Errorf("insert into %s: %w", name, err)
		}
	}
	return nil
}

// errNoCast is wrapped by cast when a value cannot become the column's type.
var errNoCast = errors.New("cannot cast")

// cast converts v to a value of kind k. It is a best-effort conversion ("attempt a best effort
// conversion to cast the fields to the target data type"): anything becomes text; numbers move
// between int and float when no precision is lost; numeric and boolean text is parsed. Anything
// else fails, and the caller stores NULL plus a discards record instead of widening the column.
func cast(v schema.Value, k sqlengine.ColumnKind) (any, error) {
	if v.Kind == k {
		return v.V, nil
	}
	fail := fmt.Errorf("%w %s value to %s column", errNoCast, v.Kind, k)
	switch k {
	case sqlengine.KindString:
		return text(v), nil
	case sqlengine.KindFloat:
		switch x := v.V.(type) {
		case int64:
			return float64(x), nil
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return f, nil
			}
		}
	case sqlengine.KindInt:
		switch x := v.V.(type) {
		case float64:
			if x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
				return int64(x), nil
			}
		case string:
			if i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
				return i, nil
			}
		}
	case sqlengine.KindBool:
		if x, ok := v.V.(string); ok {
			if b, err := strconv.ParseBool(x); err == nil {
				return b, nil
			}
		}
	}
	return nil, fail
}

// text renders a value for a string column or the discards table.
func text(v schema.Value) string {
	switch x := v.V.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	default:
		return fmt.Sprint(x)
	}
}
