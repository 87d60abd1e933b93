// Package loader writes batches of Segment events into a warehouse, creating and widening tables
// as events arrive. A batch is loaded in one transaction; Load returns nil only after it committed,
// so the caller acks the batch's JetStream messages only then (at-least-once). Redeliveries are
// harmless: every table's id (the messageId) is its primary key and the merge skips existing ids.
package loader

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
	"github.com/switchyardhq/switchyard/services/warehouse/internal/schema"
)

// MaxColumns is the most columns a warehouse table gets, on every engine: PostgreSQL's limit
// (1600). DuckDB has none, but applying the same limit keeps both engines' tables identical. A row
// that would push its table past it is discarded (recorded in discards) and the rest loads.
const MaxColumns = 1600

// maxParams bounds the bind parameters of one multi-row INSERT.
const maxParams = 8000

// DiscardWholeRow is the column_name of a discards record for a row that was not loaded at all.
const DiscardWholeRow = "*"

// tableColumns maps a column name to its kind.
type tableColumns map[string]sqlengine.ColumnKind

// schemaLayout maps a table name to its columns.
type schemaLayout map[string]tableColumns

// Selection is selective sync: tables and columns that are not loaded. Table and column names are
// warehouse names (after snake_case), e.g. "pages" or "order_completed", and "context_ip".
type Selection struct {
	// DisabledTables are never created or written.
	DisabledTables map[string]bool
	// DisabledColumns maps a table to columns that are never created or written in it. The key "*"
	// applies to every table. System columns (id, received_at) cannot be disabled.
	DisabledColumns map[string]map[string]bool
}

// Options tune a Loader.
type Options struct {
	// Selection is the selective-sync configuration.
	Selection Selection
	// MultiRowInsert writes with multi-row INSERT … ON CONFLICT statements instead of the engine's
	// bulk path (COPY / appender). Only the benchmark uses it, to compare.
	MultiRowInsert bool
	// Now is the clock (uuid_ts, discards); time.Now when nil.
	Now func() time.Time
}

// Result describes one committed load.
type Result struct {
	// Rows counts the rows newly written per table (redelivered ids are not counted; users and
	// accounts count every applied upsert).
	Rows map[string]int64
	// Discards counts values and rows recorded in the discards table.
	Discards int
	// Skipped counts events that can never be loaded (not JSON, no messageId, unknown type).
	Skipped int
	// Notices are human-readable lines about names and values not loaded as sent (capped).
	Notices []string
}

// maxNotices caps Result.Notices.
const maxNotices = 20

func (r *Result) notice(format string, args ...any) {
	if len(r.Notices) < maxNotices {
		r.Notices = append(r.Notices, fmt.Sprintf(format, args...))
	}
}

func (r *Result) add(o Result) {
	for t, n := range o.Rows {
		r.Rows[t] += n
	}
	r.Discards += o.Discards
	r.Skipped += o.Skipped
	for _, n := range o.Notices {
		if len(r.Notices) < maxNotices {
			r.Notices = append(r.Notices, n)
		}
	}
}

// Loader loads event batches into one warehouse. It is safe for concurrent use; loads are
// serialized because DuckDB has a single writer and the schema cache is updated per commit.
type Loader struct {
	e      sqlengine.Engine
	d      sqlengine.Dialect
	logger *slog.Logger
	opts   Options
	now    func() time.Time

	mu sync.Mutex
	// known is the committed layout per warehouse schema, read from information_schema on the
	// schema's first load (so restarts work) and updated only after a commit.
	known map[string]schemaLayout
}

// New returns a Loader writing through e with default options.
func New(e sqlengine.Engine, logger *slog.Logger) *Loader {
	return NewWithOptions(e, logger, Options{})
}

// NewWithOptions returns a Loader writing through e.
func NewWithOptions(e sqlengine.Engine, logger *slog.Logger, opts Options) *Loader {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Loader{e: e, d: e.Dialect(), logger: logger, opts: opts, now: now, known: map[string]schemaLayout{}}
}

// discard is one value (or, with column DiscardWholeRow, one row) that could not be stored; it is
// recorded in the schema's discards table.
type discard struct {
	table, column, value, rowID, reason string
	receivedAt                          any
}

// Load writes events (raw Segment event JSON, as stored in the EVENTS stream) into schemaName, which
// must be a valid identifier (the caller passes the source's slug). Events that can never be loaded
// (not JSON, no messageId, unknown type) are logged and skipped, so one bad event cannot block a
// stream. Everything else is written in one transaction; Load returns nil only after COMMIT.
//
// When the database refuses the data itself (sqlengine.IsDataError: a value or a row it cannot
// hold) while it is reachable, the batch is split in halves and each half loaded on its own, down to
// the single event, which is then recorded in discards with the database's reason and skipped: one
// bad row never blocks the rest. Any other error (the warehouse is down) is returned, nothing is
// committed, and the caller retries the whole batch later.
func (l *Loader) Load(ctx context.Context, schemaName string, events [][]byte) (Result, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	res := Result{Rows: map[string]int64{}}
	err := l.loadIsolating(ctx, schemaName, events, &res)
	return res, err
}

func (l *Loader) loadIsolating(ctx context.Context, schemaName string, events [][]byte, res *Result) error {
	one, err := l.loadOnce(ctx, schemaName, events, false)
	if errors.Is(err, sqlengine.ErrConcurrentKey) {
		// Another writer inserted one of the ids after the probe: load again through the merge.
		one, err = l.loadOnce(ctx, schemaName, events, true)
	}
	if err == nil {
		res.add(one)
		return nil
	}
	if !sqlengine.IsDataError(err) || ctx.Err() != nil {
		return err
	}
	if perr := l.e.DB().PingContext(ctx); perr != nil {
		return errors.Join(err, perr)
	}
	if len(events) == 1 {
		return l.discardEvent(ctx, schemaName, events[0], err, res)
	}
	l.logger.WarnContext(ctx, "warehouse refused a batch: isolating the bad rows", "schema", schemaName, "events", len(events), "error", err)
	half := len(events) / 2
	if err := l.loadIsolating(ctx, schemaName, events[:half], res); err != nil {
		return err
	}
	return l.loadIsolating(ctx, schemaName, events[half:], res)
}

// discardEvent records a single event the database refused in discards (its own transaction).
func (l *Loader) discardEvent(ctx context.Context, schemaName string, raw []byte, cause error, res *Result) error {
	rows := l.buildRows(ctx, schemaName, [][]byte{raw}, l.now().UTC(), &Result{})
	if len(rows) == 0 {
		return nil
	}
	reason := "refused by the warehouse: " + cause.Error()
	var ds []discard
	for _, r := range rows {
		ds = append(ds, discard{table: r.Table, column: DiscardWholeRow, value: string(raw), rowID: r.ID(),
			receivedAt: r.Columns["received_at"].V, reason: reason})
	}
	err := l.inTx(ctx, func(conn *sql.Conn, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+sqlengine.QualifiedSchema(l.d, schemaName)); err != nil {
			return fmt.Errorf("create schema %q: %w", schemaName, err)
		}
		return l.writeDiscards(ctx, conn, tx, schemaName, ds)
	})
	if err != nil {
		return err
	}
	res.Discards += len(ds)
	res.notice("event %s discarded: %s", rows[0].ID(), reason)
	return nil
}

// inTx runs f in a transaction on one connection and commits.
func (l *Loader) inTx(ctx context.Context, f func(conn *sql.Conn, tx *sql.Tx) error) error {
	conn, err := l.e.DB().Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = conn.Close() }()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := f(conn, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// loadOnce loads events in one transaction. merge disables the direct-write fast path
// (sqlengine.InsertNew), so every table is written through the staging table and merge.
func (l *Loader) loadOnce(ctx context.Context, schemaName string, events [][]byte, merge bool) (Result, error) {
	res := Result{Rows: map[string]int64{}}
	rows := l.buildRows(ctx, schemaName, events, l.now().UTC(), &res)
	if len(rows) == 0 {
		return res, nil
	}
	known, err := l.layout(ctx, schemaName)
	if err != nil {
		return res, err
	}
	staged := maps.Clone(known) // tables are replaced, never mutated, so a shallow clone is enough
	err = l.inTx(ctx, func(conn *sql.Conn, tx *sql.Tx) error {
		return l.write(ctx, conn, tx, schemaName, staged, rows, merge, &res)
	})
	if err != nil {
		// The database may now differ from what we believed; read it again next time.
		delete(l.known, schemaName)
		return res, fmt.Errorf("load into %q: %w", schemaName, err)
	}
	l.known[schemaName] = staged
	return res, nil
}

func (l *Loader) buildRows(ctx context.Context, schemaName string, events [][]byte, loadedAt time.Time, res *Result) []schema.Row {
	var rows []schema.Row
	sel := l.opts.Selection
	all := buildEvents(events, loadedAt)
	for i, ev := range all {
		built, notices, err := ev.rows, ev.notices, ev.err
		if err != nil {
			l.logger.WarnContext(ctx, "skipping event that cannot be loaded", "schema", schemaName, "index", i, "error", err)
			res.Skipped++
			res.notice("event skipped: %v", err)
			continue
		}
		for _, n := range notices {
			l.logger.WarnContext(ctx, "event key not loaded as sent", "schema", schemaName, "table", n.Table,
				"column", n.Column, "key", n.Key, "reason", n.Reason)
			res.notice("%s: key %q: %s", n.Table, n.Key, n.Reason)
		}
		for _, r := range built {
			if sel.DisabledTables[r.Table] {
				continue
			}
			if len(sel.DisabledColumns) > 0 {
				r = dropColumns(r, sel.DisabledColumns[r.Table], sel.DisabledColumns["*"])
			}
			rows = append(rows, r)
		}
	}
	return rows
}

// builtEvent is one event turned into rows (or the reason it cannot be).
type builtEvent struct {
	rows    []schema.Row
	notices []schema.Notice
	err     error
}

// minEventsPerWorker is the smallest share of a batch worth a goroutine of its own.
const minEventsPerWorker = 128

// buildEvents parses and builds every event. This is most of a load's CPU time, and the database
// sits idle meanwhile, so large batches are split over GOMAXPROCS goroutines; the results keep the
// events' order, so logs, notices and rows come out exactly as from one goroutine.
func buildEvents(events [][]byte, loadedAt time.Time) []builtEvent {
	out := make([]builtEvent, len(events))
	one := func(i int) {
		ev, err := schema.ParseObject(events[i])
		if err == nil {
			out[i].rows, out[i].notices, err = schema.Build(ev, loadedAt)
		}
		out[i].err = err
	}
	workers := min(runtime.GOMAXPROCS(0), len(events)/minEventsPerWorker)
	if workers <= 1 {
		for i := range events {
			one(i)
		}
		return out
	}
	var wg sync.WaitGroup
	per := (len(events) + workers - 1) / workers
	for start := 0; start < len(events); start += per {
		wg.Go(func() {
			for i := start; i < min(start+per, len(events)); i++ {
				one(i)
			}
		})
	}
	wg.Wait()
	return out
}

// dropColumns returns r without the disabled columns; id and received_at always stay.
func dropColumns(r schema.Row, sets ...map[string]bool) schema.Row {
	out := r
	cloned := false
	for _, set := range sets {
		for c := range set {
			if c == "id" || c == "received_at" {
				continue
			}
			if _, ok := out.Columns[c]; !ok {
				continue
			}
			if !cloned {
				out.Columns = maps.Clone(r.Columns)
				cloned = true
			}
			delete(out.Columns, c)
		}
	}
	return out
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
func (l *Loader) write(ctx context.Context, conn *sql.Conn, tx *sql.Tx, schemaName string, staged schemaLayout, rows []schema.Row, merge bool, res *Result) error {
	if _, err := tx.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+sqlengine.QualifiedSchema(l.d, schemaName)); err != nil {
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
		trows, tooWide, err := l.ensureTable(ctx, tx, schemaName, staged, table, byTable[table])
		if err != nil {
			return err
		}
		discards = append(discards, tooWide...)
		if len(trows) == 0 {
			continue
		}
		var d []discard
		var n int64
		switch table {
		case schema.TableUsers, schema.TableAccounts:
			n, d, err = l.upsert(ctx, tx, schemaName, staged[table], table, trows)
		default:
			n, d, err = l.insert(ctx, conn, tx, schemaName, staged[table], table, trows, merge)
		}
		if err != nil {
			return err
		}
		res.Rows[table] += n
		discards = append(discards, d...)
	}
	if err := l.writeDiscards(ctx, conn, tx, schemaName, discards); err != nil {
		return err
	}
	res.Discards += len(discards)
	for _, d := range discards {
		res.notice("%s.%s of %s discarded: %s", d.table, d.column, d.rowID, d.reason)
	}
	return nil
}

// ensureTable creates table if needed and adds the columns rows need. A new column's type is the
// kind of its values in this batch; when they disagree, int and float give float and any other
// mix gives string, which can hold every value. A row whose new columns would take the table past
// MaxColumns is left out (returned as a whole-row discard); later rows may still fit.
func (l *Loader) ensureTable(ctx context.Context, tx *sql.Tx, schemaName string, staged schemaLayout, table string, rows []schema.Row) ([]schema.Row, []discard, error) {
	name := sqlengine.QualifiedName(l.d, schemaName, table)
	cols, exists := staged[table]
	if !exists {
		cols = tableColumns{"id": sqlengine.KindString}
	}
	added := map[string]sqlengine.ColumnKind{}
	kept := rows[:0:0]
	var tooWide []discard
	for _, r := range rows {
		var fresh []string
		for c := range r.Columns {
			if _, ok := cols[c]; ok {
				continue
			}
			if _, ok := added[c]; ok {
				continue
			}
			fresh = append(fresh, c)
		}
		if n := len(cols) + len(added) + len(fresh); n > MaxColumns {
			tooWide = append(tooWide, discard{
				table: table, column: DiscardWholeRow, value: strconv.Itoa(len(r.Columns)) + " columns", rowID: r.ID(),
				receivedAt: r.Columns["received_at"].V,
				reason:     fmt.Sprintf("the row needs %d new columns and the table would have %d, over the %d-column limit", len(fresh), n, MaxColumns),
			})
			continue
		}
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
		kept = append(kept, r)
	}
	if len(kept) == 0 {
		return nil, tooWide, nil
	}
	if !exists {
		q := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s %s PRIMARY KEY)", name, l.d.QuoteIdent("id"), l.d.ColumnType(sqlengine.KindString))
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return nil, nil, fmt.Errorf("create table %s: %w", name, err)
		}
	}
	if len(added) == 0 && exists {
		return kept, tooWide, nil
	}
	cols = maps.Clone(cols)
	for _, c := range slices.Sorted(maps.Keys(added)) {
		q := fmt.Sprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s", name, l.d.QuoteIdent(c), l.d.ColumnType(added[c]))
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return nil, nil, fmt.Errorf("add column %s to %s: %w", c, name, err)
		}
		cols[c] = added[c]
	}
	staged[table] = cols
	return kept, tooWide, nil
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

// insert writes rows through the engine's bulk path and merges them on id, skipping ids already
// present. Within the batch the first row for an id wins.
func (l *Loader) insert(ctx context.Context, conn *sql.Conn, tx *sql.Tx, schemaName string, kinds tableColumns, table string, rows []schema.Row, merge bool) (int64, []discard, error) {
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
	var discards []discard
	values := make([][]any, len(unique))
	for i, r := range unique {
		values[i] = rowValues(table, cols, kinds, r, &discards)
	}
	if l.opts.MultiRowInsert {
		n, err := l.multiRowInsert(ctx, tx, schemaName, table, cols, values)
		return n, discards, err
	}
	typed := make([]sqlengine.Column, len(cols))
	for i, c := range cols {
		typed[i] = sqlengine.Column{Name: c, Kind: kinds[c]}
	}
	if merge {
		n, err := sqlengine.MergeInsert(ctx, conn, tx, l.d, schemaName, table, []string{"id"}, typed, values)
		return n, discards, err
	}
	n, err := sqlengine.InsertNew(ctx, conn, tx, l.d, schemaName, table, slices.Index(cols, "id"), typed, values)
	return n, discards, err
}

// multiRowInsert writes values with multi-row INSERTs that skip ids already present.
func (l *Loader) multiRowInsert(ctx context.Context, tx *sql.Tx, schemaName, table string, cols []string, values [][]any) (int64, error) {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = l.d.QuoteIdent(c)
	}
	head := fmt.Sprintf("INSERT INTO %s (%s) VALUES ", sqlengine.QualifiedName(l.d, schemaName, table), strings.Join(quoted, ", "))
	tail := fmt.Sprintf(" ON CONFLICT (%s) DO NOTHING", l.d.QuoteIdent("id"))
	perStmt := max(1, maxParams/len(cols))
	var total int64
	for chunk := range slices.Chunk(values, perStmt) {
		var b strings.Builder
		b.WriteString(head)
		args := make([]any, 0, len(chunk)*len(cols))
		for i, vals := range chunk {
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
			args = append(args, vals...)
		}
		b.WriteString(tail)
		r, err := tx.ExecContext(ctx, b.String(), args...)
		if err != nil {
			return 0, fmt.Errorf("insert into %s.%s: %w", schemaName, table, err)
		}
		n, _ := r.RowsAffected()
		total += n
	}
	return total, nil
}

// upsert applies users or accounts rows one at a time, in received_at order: each row overwrites
// the traits it carries and leaves the others, so a user (account) holds the latest non-null value
// of every trait. A row older (by received_at) than the stored one changes nothing, so a
// redelivered old identify cannot roll a user back.
func (l *Loader) upsert(ctx context.Context, tx *sql.Tx, schemaName string, kinds tableColumns, tableName string, rows []schema.Row) (int64, []discard, error) {
	slices.SortStableFunc(rows, func(a, b schema.Row) int {
		ta, _ := a.Columns["received_at"].V.(time.Time)
		tb, _ := b.Columns["received_at"].V.(time.Time)
		return ta.Compare(tb)
	})
	table := sqlengine.QualifiedName(l.d, schemaName, tableName)
	self := l.d.QuoteIdent(tableName)
	recv := l.d.QuoteIdent("received_at")
	var discards []discard
	var total int64
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
			strings.Join(set, ", "), self, recv, self, recv, recv)
		args := rowValues(tableName, cols, kinds, r, &discards)
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return 0, nil, fmt.Errorf("upsert into %s: %w", table, err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, discards, nil
}

// discardColumns is the discards table's layout.
var discardColumns = []sqlengine.Column{
	{Name: "table_name", Kind: sqlengine.KindString},
	{Name: "column_name", Kind: sqlengine.KindString},
	{Name: "value", Kind: sqlengine.KindString},
	{Name: "row_id", Kind: sqlengine.KindString},
	{Name: "received_at", Kind: sqlengine.KindTimestamp},
	{Name: "reason", Kind: sqlengine.KindString},
	{Name: "uuid_ts", Kind: sqlengine.KindTimestamp},
}

// writeDiscards records values and rows that were not stored in the schema's discards table. Its
// key is (table_name, column_name, row_id), so a redelivered batch records nothing twice.
func (l *Loader) writeDiscards(ctx context.Context, conn *sql.Conn, tx *sql.Tx, schemaName string, discards []discard) error {
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
	now := l.now().UTC()
	seen := map[[3]string]bool{}
	var values [][]any
	for _, d := range discards {
		k := [3]string{d.table, d.column, d.rowID}
		if seen[k] {
			continue
		}
		seen[k] = true
		l.logger.WarnContext(ctx, "value not stored: recorded in discards", "schema", schemaName,
			"table", d.table, "column", d.column, "row_id", d.rowID, "reason", d.reason)
		values = append(values, []any{d.table, d.column, d.value, d.rowID, d.receivedAt, d.reason, now})
	}
	_, err := sqlengine.MergeInsert(ctx, conn, tx, l.d, schemaName, schema.TableDiscards,
		[]string{"table_name", "column_name", "row_id"}, discardColumns, values)
	return err
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
			if x >= -(1<<53) && x <= 1<<53 {
				return float64(x), nil
			}
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
