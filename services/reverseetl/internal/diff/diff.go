// Package diff finds what changed in a Reverse ETL model since a sync's
// last run, inside the warehouse, with SQL. Per sync it keeps, in the
// Switchyard-owned schema _switchyard_retl of that warehouse:
//
//   - state_<sync> (record_id, checksum): every record the sync extracted
//     and recorded as synced;
//   - fail_<sync> (record_id, op, attempts, first_failed_ms, last_error):
//     records Delivery reported as failed, retried by the next runs;
//   - snap_<sync> and chg_<sync>: the model snapshot and the changes of the
//     run in progress, dropped when it commits or aborts.
//
// A run is Extract (model query → snapshot with record id and row
// checksum → change table), Pages (the selected changes, streamed out in
// pages of PageSize rows so a model of millions of rows never sits in Go
// memory), then Commit (state advanced in one transaction) or Abort. Only
// the change rows of one page are ever held in memory.
package diff

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
)

// Schema is the warehouse schema Reverse ETL owns. Customers must not
// modify its tables.
const Schema = "_switchyard_retl"

// Retry limits for records that failed to load (Segment: 5 syncs or 14 days).
const (
	MaxAttempts = 5
	MaxRetryAge = 14 * 24 * time.Hour
)

// DefaultPageSize is how many changed rows one page holds.
const DefaultPageSize = 1000

// Op is the kind of change of a record.
type Op string

// The operations.
const (
	Added   Op = "added"
	Updated Op = "updated"
	Deleted Op = "deleted"
)

// Column prefix of Switchyard's own columns in snapshot and change tables;
// model columns may not start with it.
const ReservedPrefix = "__sy_"

// Error codes of record errors (Segment's discard codes).
const (
	ErrRecordDuplicate    = "ErrRecordDuplicate"
	ErrRecordNullUniqueID = "ErrRecordNullUniqueID"
	ErrRetriesExhausted   = "ErrRetriesExhausted"
)

// maxSamples bounds the record ids kept as samples per error.
const maxSamples = 10

// Job is one run of one sync.
type Job struct {
	// SyncID names the per-sync tables.
	SyncID string
	// Query is the model query (one read-only statement).
	Query string
	// UniqueKey is the model's unique identifier column.
	UniqueKey string
	// Selection are the operations Pages returns; the state still advances
	// over every change.
	Selection []Op
	// Now is the run's clock (retry age).
	Now time.Time
	// PageSize is the page size of Pages (DefaultPageSize when 0).
	PageSize int
}

// RecordError is one kind of invalid rows, excluded from the run and never
// marked as synced.
type RecordError struct {
	// Code is ErrRecordDuplicate, ErrRecordNullUniqueID or ErrRetriesExhausted.
	Code string
	// Count is how many records (rows for null ids, distinct ids otherwise).
	Count int64
	// Samples are up to 10 record ids, sorted.
	Samples []string
}

// Extract is what Extract found.
type Extract struct {
	// Rows is how many rows the model query returned.
	Rows int64
	// Added, Updated and Deleted count the changes found by diffing.
	Added, Updated, Deleted int64
	// Retried counts records re-sent because an earlier run failed to
	// deliver them.
	Retried int64
	// Selected counts the changes Pages will return.
	Selected int64
	// Errors are the record errors (duplicate or null ids, exhausted retries).
	Errors []RecordError
	// Columns are the model's columns, in query order.
	Columns []string
	// maxSeq is the highest change sequence number.
	maxSeq int64
}

// Change is one record to send.
type Change struct {
	// RecordID is the unique identifier as text.
	RecordID string
	// Op is the change.
	Op Op
	// Attempt is 1 for a first send, n+1 after n failed deliveries.
	Attempt int
	// Retry is true when the record is only re-sent after a failed delivery.
	Retry bool
	// Values are the model's columns (JSON-ready values, see
	// sqlengine.JSONValue), in Extract.Columns order. For a deleted record
	// every column is nil except the unique key, which holds RecordID.
	Values []any
}

// Result is Delivery's verdict on one sent record.
type Result struct {
	// RecordID is the record.
	RecordID string
	// Op is the record's operation.
	Op Op
	// Attempt is the attempt that was delivered or failed.
	Attempt int
	// Delivered is true when the destination accepted it.
	Delivered bool
	// Error says why it failed.
	Error string
}

// Differ runs the diff SQL on one warehouse.
type Differ struct {
	db *sql.DB
	d  dialect
}

// New returns a Differ for an open engine.
func New(e sqlengine.Engine) (*Differ, error) {
	d, err := dialectOf(e.Dialect())
	if err != nil {
		return nil, err
	}
	return &Differ{db: e.DB(), d: d}, nil
}

// tables are the quoted names of a sync's tables.
type tables struct{ state, fail, snap, chg string }

func (x *Differ) tables(syncID string) tables {
	n := sanitize(syncID)
	q := func(t string) string { return sqlengine.QualifiedName(x.d.base, Schema, t+"_"+n) }
	return tables{state: q("state"), fail: q("fail"), snap: q("snap"), chg: q("chg")}
}

// sanitize keeps [a-z0-9_] of an id so it can be part of a table name.
func sanitize(id string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(id) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// ensure creates the schema and the sync's persistent tables.
func (x *Differ) ensure(ctx context.Context, t tables) error {
	text := x.d.text
	for _, stmt := range []string{
		"CREATE SCHEMA IF NOT EXISTS " + x.d.base.QuoteIdent(Schema),
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (record_id %s PRIMARY KEY, checksum %s NOT NULL)", t.state, text, text),
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (record_id %s PRIMARY KEY, op %s NOT NULL, attempts INTEGER NOT NULL, first_failed_ms BIGINT NOT NULL, last_error %s)", t.fail, text, text, text),
	} {
		if _, err := x.db.ExecContext(ctx, stmt); err != nil {
			// Two syncs creating the schema at once on Postgres can race
			// on the catalog; the second attempt sees it.
			if _, err2 := x.db.ExecContext(ctx, stmt); err2 != nil {
				return fmt.Errorf("prepare reverse etl tables: %w", err)
			}
		}
	}
	return nil
}

// Extract runs the model query once into the snapshot table and computes
// the change table. The state is not touched: Commit advances it.
func (x *Differ) Extract(ctx context.Context, job Job) (*Extract, error) {
	if err := sqlengine.IsReadOnlySQL(job.Query); err != nil {
		return nil, err
	}
	t := x.tables(job.SyncID)
	if err := x.ensure(ctx, t); err != nil {
		return nil, err
	}
	q := strings.TrimRight(strings.TrimSpace(job.Query), ";")
	key := x.d.base.QuoteIdent(job.UniqueKey)
	if err := x.drop(ctx, t.snap, t.chg); err != nil {
		return nil, err
	}
	snap := fmt.Sprintf("CREATE %s %s AS SELECT CAST(m.%s AS %s) AS __sy_record_id, %s AS __sy_checksum, m.* FROM (%s) AS m",
		x.d.scratch, t.snap, key, x.d.text, x.d.checksum("m"), q)
	if _, err := x.db.ExecContext(ctx, snap); err != nil {
		return nil, fmt.Errorf("run model query into snapshot: %w", err)
	}
	if x.d.analyze {
		if _, err := x.db.ExecContext(ctx, "ANALYZE "+t.snap); err != nil {
			return nil, fmt.Errorf("analyze snapshot: %w", err)
		}
	}
	ext := &Extract{}
	cols, err := x.columns(ctx, t.snap)
	if err != nil {
		return nil, err
	}
	ext.Columns = cols
	if err := x.db.QueryRowContext(ctx, "SELECT count(*) FROM "+t.snap).Scan(&ext.Rows); err != nil {
		return nil, fmt.Errorf("count snapshot: %w", err)
	}
	if err := x.recordErrors(ctx, t, ext); err != nil {
		return nil, err
	}
	cutoff := job.Now.Add(-MaxRetryAge).UnixMilli()
	if err := x.exhausted(ctx, t, cutoff, ext); err != nil {
		return nil, err
	}

	chg := fmt.Sprintf(`CREATE %[1]s %[2]s AS
WITH bad AS (
  SELECT __sy_record_id AS rid FROM %[3]s WHERE __sy_record_id IS NOT NULL GROUP BY __sy_record_id HAVING count(*) > 1
),
d AS (
  SELECT n.__sy_record_id AS rid, CASE WHEN s.record_id IS NULL THEN 'added' ELSE 'updated' END AS op, 'diff' AS origin
  FROM %[3]s n
  LEFT JOIN %[4]s s ON s.record_id = n.__sy_record_id
  LEFT JOIN bad b ON b.rid = n.__sy_record_id
  WHERE n.__sy_record_id IS NOT NULL AND b.rid IS NULL AND (s.record_id IS NULL OR s.checksum <> n.__sy_checksum)
  UNION ALL
  SELECT s.record_id, 'deleted', 'diff' FROM %[4]s s
  WHERE NOT EXISTS (SELECT 1 FROM %[3]s n WHERE n.__sy_record_id = s.record_id)
),
r AS (
  SELECT f.record_id AS rid,
    CASE WHEN NOT EXISTS (SELECT 1 FROM %[3]s n WHERE n.__sy_record_id = f.record_id) THEN 'deleted'
         WHEN f.op = 'deleted' THEN 'added' ELSE f.op END AS op,
    'retry' AS origin
  FROM %[5]s f
  WHERE f.attempts < %[6]d AND f.first_failed_ms >= %[7]d
    AND NOT EXISTS (SELECT 1 FROM d WHERE d.rid = f.record_id)
    AND NOT EXISTS (SELECT 1 FROM bad b WHERE b.rid = f.record_id)
),
u AS (SELECT rid, op, origin FROM d UNION ALL SELECT rid, op, origin FROM r)
SELECT row_number() OVER (ORDER BY u.rid) AS __sy_seq, u.rid AS __sy_rid, u.op AS __sy_op, u.origin AS __sy_origin,
  COALESCE(f.attempts, 0) + 1 AS __sy_attempt, n.*
FROM u
LEFT JOIN %[3]s n ON n.__sy_record_id = u.rid AND u.op <> 'deleted'
LEFT JOIN %[5]s f ON f.record_id = u.rid
ORDER BY __sy_seq`, x.d.scratch, t.chg, t.snap, t.state, t.fail, MaxAttempts, cutoff)
	if _, err := x.db.ExecContext(ctx, chg); err != nil {
		return nil, fmt.Errorf("compute changes: %w", err)
	}
	if x.d.analyze {
		if _, err := x.db.ExecContext(ctx, fmt.Sprintf("CREATE INDEX ON %s (__sy_seq)", t.chg)); err != nil {
			return nil, fmt.Errorf("index changes: %w", err)
		}
	}
	rows, err := x.db.QueryContext(ctx, fmt.Sprintf(
		"SELECT __sy_op, __sy_origin, count(*), max(__sy_seq) FROM %s GROUP BY __sy_op, __sy_origin", t.chg))
	if err != nil {
		return nil, fmt.Errorf("count changes: %w", err)
	}
	defer func() { _ = rows.Close() }()
	selected := opSet(job.Selection)
	for rows.Next() {
		var op, origin string
		var n, maxSeq int64
		if err := rows.Scan(&op, &origin, &n, &maxSeq); err != nil {
			return nil, fmt.Errorf("count changes: %w", err)
		}
		ext.maxSeq = max(ext.maxSeq, maxSeq)
		if selected[Op(op)] {
			ext.Selected += n
		}
		if origin == "retry" {
			if selected[Op(op)] {
				ext.Retried += n
			}
			continue
		}
		switch Op(op) {
		case Added:
			ext.Added += n
		case Updated:
			ext.Updated += n
		case Deleted:
			ext.Deleted += n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count changes: %w", err)
	}
	return ext, nil
}

// columns returns the model columns of the snapshot (without __sy_ ones).
func (x *Differ) columns(ctx context.Context, table string) ([]string, error) {
	rows, err := x.db.QueryContext(ctx, "SELECT * FROM "+table+" LIMIT 0")
	if err != nil {
		return nil, fmt.Errorf("read snapshot columns: %w", err)
	}
	defer func() { _ = rows.Close() }()
	all, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("read snapshot columns: %w", err)
	}
	var cols []string
	for _, c := range all {
		if !strings.HasPrefix(c, ReservedPrefix) {
			cols = append(cols, c)
		}
	}
	return cols, nil
}

// recordErrors reports duplicate and null ids by name.
func (x *Differ) recordErrors(ctx context.Context, t tables, ext *Extract) error {
	var nulls int64
	if err := x.db.QueryRowContext(ctx, "SELECT count(*) FROM "+t.snap+" WHERE __sy_record_id IS NULL").Scan(&nulls); err != nil {
		return fmt.Errorf("count null ids: %w", err)
	}
	if nulls > 0 {
		ext.Errors = append(ext.Errors, RecordError{Code: ErrRecordNullUniqueID, Count: nulls})
	}
	dup := RecordError{Code: ErrRecordDuplicate}
	rows, err := x.db.QueryContext(ctx, fmt.Sprintf(`SELECT __sy_record_id, count(*) OVER () FROM %s
WHERE __sy_record_id IS NOT NULL GROUP BY __sy_record_id HAVING count(*) > 1 ORDER BY __sy_record_id LIMIT %d`, t.snap, maxSamples))
	if err != nil {
		return fmt.Errorf("find duplicate ids: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id, &dup.Count); err != nil {
			return fmt.Errorf("find duplicate ids: %w", err)
		}
		dup.Samples = append(dup.Samples, id)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("find duplicate ids: %w", err)
	}
	if dup.Count > 0 {
		ext.Errors = append(ext.Errors, dup)
	}
	return nil
}

// exhausted reports failed records that will not be retried any more.
func (x *Differ) exhausted(ctx context.Context, t tables, cutoff int64, ext *Extract) error {
	e := RecordError{Code: ErrRetriesExhausted}
	rows, err := x.db.QueryContext(ctx, fmt.Sprintf(`SELECT record_id, count(*) OVER () FROM %s
WHERE attempts >= %d OR first_failed_ms < %d ORDER BY record_id LIMIT %d`, t.fail, MaxAttempts, cutoff, maxSamples))
	if err != nil {
		return fmt.Errorf("find exhausted retries: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id, &e.Count); err != nil {
			return fmt.Errorf("find exhausted retries: %w", err)
		}
		e.Samples = append(e.Samples, id)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("find exhausted retries: %w", err)
	}
	if e.Count > 0 {
		ext.Errors = append(ext.Errors, e)
	}
	return nil
}

// Pages calls fn with the selected changes, in record id order, one page
// at a time. fn's slice is reused after it returns. A non-nil error from
// fn stops the walk and is returned.
func (x *Differ) Pages(ctx context.Context, job Job, ext *Extract, fn func([]Change) error) error {
	sel := job.Selection
	if len(sel) == 0 || ext.Selected == 0 {
		return nil
	}
	size := int64(job.PageSize)
	if size <= 0 {
		size = DefaultPageSize
	}
	t := x.tables(job.SyncID)
	ops := make([]string, len(sel))
	for i, op := range sel {
		ops[i] = "'" + string(op) + "'"
	}
	keyIdx := -1
	for i, c := range ext.Columns {
		if c == job.UniqueKey {
			keyIdx = i
		}
	}
	// Select the model columns by name so their order is Columns' order.
	list := make([]string, len(ext.Columns))
	for i, c := range ext.Columns {
		list[i] = x.d.base.QuoteIdent(c)
	}
	query := fmt.Sprintf("SELECT __sy_rid, __sy_op, __sy_origin, __sy_attempt, %s FROM %s WHERE __sy_seq > %s AND __sy_seq <= %s AND __sy_op IN (%s) ORDER BY __sy_seq",
		strings.Join(list, ", "), t.chg, x.d.base.Placeholder(1), x.d.base.Placeholder(2), strings.Join(ops, ", "))
	page := make([]Change, 0, size)
	for lo := int64(0); lo < ext.maxSeq; lo += size {
		if err := ctx.Err(); err != nil {
			return err
		}
		page = page[:0]
		if err := x.page(ctx, query, lo, lo+size, len(ext.Columns), keyIdx, &page); err != nil {
			return err
		}
		if len(page) == 0 {
			continue
		}
		if err := fn(page); err != nil {
			return err
		}
	}
	return nil
}

func (x *Differ) page(ctx context.Context, query string, lo, hi int64, ncols, keyIdx int, page *[]Change) error {
	rows, err := x.db.QueryContext(ctx, query, lo, hi)
	if err != nil {
		return fmt.Errorf("read changes: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var c Change
		var op, origin string
		vals := make([]any, ncols)
		ptrs := make([]any, ncols+4)
		ptrs[0], ptrs[1], ptrs[2], ptrs[3] = &c.RecordID, &op, &origin, &c.Attempt
		for i := range vals {
			ptrs[i+4] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("read change: %w", err)
		}
		c.Op, c.Retry = Op(op), origin == "retry"
		for i, v := range vals {
			vals[i] = sqlengine.JSONValue(v)
		}
		if c.Op == Deleted && keyIdx >= 0 {
			vals[keyIdx] = c.RecordID
		}
		c.Values = vals
		*page = append(*page, c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read changes: %w", err)
	}
	return nil
}

// Commit advances the state over every change of the run (whatever the
// selection), forgets the failures this run re-sent or gave up on, and
// drops the run's scratch tables — in one transaction.
func (x *Differ) Commit(ctx context.Context, job Job) error {
	t := x.tables(job.SyncID)
	cutoff := job.Now.Add(-MaxRetryAge).UnixMilli()
	ops := make([]string, 0, len(job.Selection))
	for _, op := range job.Selection {
		ops = append(ops, "'"+string(op)+"'")
	}
	stmts := []string{
		fmt.Sprintf("DELETE FROM %s WHERE record_id IN (SELECT __sy_rid FROM %s WHERE __sy_op = 'deleted' AND __sy_origin = 'diff')", t.state, t.chg),
		fmt.Sprintf("UPDATE %s SET checksum = c.__sy_checksum FROM %s c WHERE c.__sy_rid = %s.record_id AND c.__sy_op = 'updated' AND c.__sy_origin = 'diff'", t.state, t.chg, t.state),
		fmt.Sprintf("INSERT INTO %s (record_id, checksum) SELECT __sy_rid, __sy_checksum FROM %s WHERE __sy_op = 'added' AND __sy_origin = 'diff'", t.state, t.chg),
		fmt.Sprintf("DELETE FROM %s WHERE attempts >= %d OR first_failed_ms < %d", t.fail, MaxAttempts, cutoff),
	}
	if len(ops) > 0 {
		stmts = append(stmts, fmt.Sprintf("DELETE FROM %s WHERE record_id IN (SELECT __sy_rid FROM %s WHERE __sy_op IN (%s))", t.fail, t.chg, strings.Join(ops, ", ")))
	}
	tx, err := x.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("commit run: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("commit run: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit run: %w", err)
	}
	return x.drop(ctx, t.snap, t.chg)
}

// Abort drops the run's scratch tables; the state stays as it was, so the
// next run finds the same changes again.
func (x *Differ) Abort(ctx context.Context, syncID string) error {
	t := x.tables(syncID)
	return x.drop(ctx, t.snap, t.chg)
}

// Reset forgets the sync's state and pending retries: the next run sends
// every row as added.
func (x *Differ) Reset(ctx context.Context, syncID string) error {
	t := x.tables(syncID)
	return x.drop(ctx, t.state, t.fail, t.snap, t.chg)
}

// RecordResults stores Delivery's verdicts: a failure is kept for the next
// runs to retry (attempts = the failed attempt), a success clears it.
func (x *Differ) RecordResults(ctx context.Context, syncID string, now time.Time, results []Result) error {
	if len(results) == 0 {
		return nil
	}
	t := x.tables(syncID)
	if err := x.ensure(ctx, t); err != nil {
		return err
	}
	p := x.d.base.Placeholder
	upsert := fmt.Sprintf(`INSERT INTO %s AS f (record_id, op, attempts, first_failed_ms, last_error) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (record_id) DO UPDATE SET attempts = GREATEST(f.attempts, excluded.attempts), op = excluded.op, last_error = excluded.last_error`,
		t.fail, p(1), p(2), p(3), p(4), p(5))
	clear := fmt.Sprintf("DELETE FROM %s WHERE record_id = %s AND attempts <= %s", t.fail, p(1), p(2))
	tx, err := x.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record delivery results: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, r := range results {
		var err error
		if r.Delivered {
			_, err = tx.ExecContext(ctx, clear, r.RecordID, r.Attempt)
		} else {
			_, err = tx.ExecContext(ctx, upsert, r.RecordID, string(r.Op), r.Attempt, now.UnixMilli(), r.Error)
		}
		if err != nil {
			return fmt.Errorf("record delivery result of %q: %w", r.RecordID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record delivery results: %w", err)
	}
	return nil
}

// PendingRetries counts the records waiting to be re-sent.
func (x *Differ) PendingRetries(ctx context.Context, syncID string) (int64, error) {
	t := x.tables(syncID)
	if err := x.ensure(ctx, t); err != nil {
		return 0, err
	}
	var n int64
	if err := x.db.QueryRowContext(ctx, "SELECT count(*) FROM "+t.fail).Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending retries: %w", err)
	}
	return n, nil
}

func (x *Differ) drop(ctx context.Context, names ...string) error {
	var errs []error
	for _, n := range names {
		if _, err := x.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+n); err != nil {
			errs = append(errs, fmt.Errorf("drop %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

func opSet(ops []Op) map[Op]bool {
	m := make(map[Op]bool, len(ops))
	for _, o := range ops {
		m[o] = true
	}
	return m
}
