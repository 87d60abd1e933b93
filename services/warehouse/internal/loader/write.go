package loader

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// partWriter writes the prepared sub-batches of one load, each in its own transaction on its own
// connection (a "part"). Up to parallel parts are in flight at once: the server works on each on
// its own core. A part whose tables were all encoded by prepare, without discards, only COPYs
// into existing columns (row locks on distinct ids, no table locks that conflict); it runs on a
// goroutine of its own. Any other part (new tables or columns, the merge, users/accounts upserts,
// discards) runs alone in the dispatching goroutine: it waits for the parts in flight, and holds
// up the next part until it committed, so that part's preparation starts from the layout and copy
// plans it committed, and schema changes never wait for, or deadlock with, another part.
//
// Exactly once: a part that fails leaves the parts that committed; the load fails, nothing of the
// batch is acknowledged, and the reload meets the stored ids (sqlengine.ErrKeyExists) and goes
// through the merge, which skips them.
type partWriter struct {
	l        *Loader
	schema   string
	merge    bool
	plans    *copyPlans // nil: no direct COPY
	parallel int
	// seen holds the messageIds of the load's earlier events: the first row of an id wins, later
	// ones are left out of the event tables.
	seen map[string]struct{}

	slots chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error // the first part's failure
	parts []*part
}

// part is one sub-batch's transaction.
type part struct {
	p        *prepared
	res      Result // notices and skips of its events; rows and discards once committed
	order    []string
	rows     map[string][]schema.Row // rows of the tables not encoded
	repeated []bool                  // per event: its messageId came earlier in the load (nil: none did)
	later    map[string][]schema.Row // rows of the load's later sub-batches, per table (prepared.later)
	origin   map[string][]string     // users/accounts: the messageId of each row of rows[table]
	general  bool                    // some table takes the general path, or there are discards
	done     bool                    // committed
}

func newPartWriter(l *Loader, schemaName string, merge bool, plans *copyPlans) *partWriter {
	parallel := 1
	if plans != nil {
		parallel = parallelWrites
	}
	return &partWriter{l: l, schema: schemaName, merge: merge, plans: plans, parallel: parallel,
		seen: map[string]struct{}{}, slots: make(chan struct{}, parallel)}
}

// parallelWrites is how many parts of a PostgreSQL load may be in flight.
const parallelWrites = 2

// dispatch decides how p is written and starts writing it; it returns false once a part failed
// (the load then stops).
func (w *partWriter) dispatch(ctx context.Context, p *prepared) bool {
	pt := w.part(ctx, p)
	w.parts = append(w.parts, pt)
	if len(pt.order) == 0 {
		pt.done = true
		p.release()
		return !w.failed()
	}
	if w.failed() {
		p.release()
		return false
	}
	if pt.general || w.parallel == 1 {
		w.wg.Wait()
		if w.failed() {
			p.release()
			return false
		}
		w.slots <- struct{}{}
		w.finish(pt, w.write(ctx, pt))
		return !w.failed()
	}
	w.slots <- struct{}{}
	w.wg.Go(func() { w.finish(pt, w.write(ctx, pt)) })
	return true
}

func (w *partWriter) finish(pt *part, err error) {
	<-w.slots
	pt.p.release()
	pt.rows = nil
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil && w.err == nil {
		w.err = err
	}
	pt.done = err == nil
}

func (w *partWriter) failed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err != nil
}

// wait waits for the parts in flight and returns the load's result: everything when every part
// committed; otherwise the first failure, with the rows the committed parts stored.
func (w *partWriter) wait() (Result, error) {
	w.wg.Wait()
	res := Result{Rows: map[string]int64{}}
	for _, pt := range w.parts {
		switch {
		case w.err == nil:
			res.add(pt.res)
		case pt.done:
			for t, n := range pt.res.Rows {
				res.Rows[t] += n
			}
		}
	}
	return res, w.err
}

// part records the sub-batch's skipped events and notices, in order, leaves out the event-table
// rows of repeated messageIds, and sorts the rows by table.
func (w *partWriter) part(ctx context.Context, p *prepared) *part {
	l := w.l
	pt := &part{p: p, res: Result{Rows: map[string]int64{}}, rows: map[string][]schema.Row{}}
	res := &pt.res
	for i, ev := range p.events {
		if ev.err != nil {
			l.logger.WarnContext(ctx, "skipping event that cannot be loaded", "schema", w.schema, "index", p.offset+i, "error", ev.err)
			res.Skipped++
			res.notice("event skipped: %v", ev.err)
			continue
		}
		for _, n := range ev.notices {
			l.logger.WarnContext(ctx, "event key not loaded as sent", "schema", w.schema, "table", n.Table,
				"column", n.Column, "key", n.Key, "reason", n.Reason)
			res.notice("%s: key %q: %s", n.Table, n.Key, n.Reason)
		}
		_, dup := w.seen[ev.id]
		if dup {
			if pt.repeated == nil {
				pt.repeated = make([]bool, len(p.events))
			}
			pt.repeated[i] = true
		} else {
			w.seen[ev.id] = struct{}{}
		}
		if dup {
			continue // the event was written already: its users/accounts row too
		}
		for _, r := range ev.rows {
			rows, ok := pt.rows[r.Table]
			if !ok {
				pt.order = append(pt.order, r.Table)
			}
			if p.encoded[r.Table] == nil {
				pt.rows[r.Table] = append(rows, r)
			} else if !ok {
				pt.rows[r.Table] = nil // encoded: the rows are not needed
			}
			if owned(r.Table) {
				if pt.origin == nil {
					pt.origin = map[string][]string{}
				}
				pt.origin[r.Table] = append(pt.origin[r.Table], ev.id)
			}
		}
	}
	for _, table := range pt.order {
		enc := p.encoded[table]
		if enc == nil || pt.repeated != nil || len(enc.discards) > 0 {
			pt.general = true
		}
	}
	if p.later != nil {
		pt.later = w.laterRows(p.later)
		p.later = nil
	}
	return pt
}

// laterRows collects the rows of the sub-batches built ahead, per table, as their parts will
// write them: without the rows of messageIds that came earlier in the load.
func (w *partWriter) laterRows(later []*prepared) map[string][]schema.Row {
	rows := map[string][]schema.Row{}
	seen := map[string]struct{}{} // ids of the later sub-batches
	for _, p := range later {
		for _, ev := range p.events {
			if ev.err != nil {
				continue
			}
			_, dup := w.seen[ev.id]
			if !dup {
				_, dup = seen[ev.id]
				seen[ev.id] = struct{}{}
			}
			if dup {
				continue
			}
			for _, r := range ev.rows {
				rows[r.Table] = append(rows[r.Table], r)
			}
		}
	}
	return rows
}

// write writes one part in its own transaction. A table whose rows were all encoded by prepare is
// COPYed as it is; any other table takes the general path: new columns are added (ensureTable),
// then the rows are laid out and written (insert), or upserted (users, accounts). A general part
// records the layout and copy plans it committed.
func (w *partWriter) write(ctx context.Context, pt *part) error {
	l, p := w.l, pt.p
	var staged schemaLayout
	if pt.general {
		known, err := l.layout(ctx, w.schema)
		if err != nil {
			return err
		}
		staged = maps.Clone(known)
	}
	res := Result{Rows: map[string]int64{}}
	var discards []discard
	used := map[string][]string{} // columns of the tables written through the general path
	err := l.inTx(ctx, func(conn *sql.Conn, tx *sql.Tx) error {
		if pt.general && len(staged) == 0 { // a schema with tables exists; a dropped one fails the load, which reads the layout again
			if _, err := tx.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+sqlengine.QualifiedSchema(l.d, w.schema)); err != nil {
				return fmt.Errorf("create schema %q: %w", w.schema, err)
			}
		}
		fresh := map[string]map[string]bool{} // merge: identifies/groups ids the load stored
		for _, table := range pt.order {
			rows := pt.rows[table]
			if from := ownerOf(table); owned(table) && fresh[from] != nil {
				// After a stored id (the merge): only the users/accounts rows of events whose
				// identifies/groups row is new are applied; the others were applied when their
				// event was first stored.
				rows = rows[:0:0]
				for i, r := range pt.rows[table] {
					if fresh[from][pt.origin[table][i]] {
						rows = append(rows, r)
					}
				}
			}
			if enc := p.encoded[table]; enc != nil {
				if pt.repeated != nil { // the encoding holds a repeated messageId: write the rows again
					rows = rowsOf(p, table, pt.repeated)
				} else {
					n, err := sqlengine.CopyNew(ctx, conn, w.schema, table, enc.plan.cols, enc.parts...)
					if err != nil {
						return err
					}
					res.Rows[table] += n
					l.encodedRows.Add(n)
					discards = append(discards, enc.discards...)
					continue
				}
			}
			trows, tooWide, err := l.ensureTable(ctx, tx, w.schema, staged, table, rows, pt.later[table])
			if err != nil {
				return err
			}
			discards = append(discards, tooWide...)
			if len(trows) == 0 {
				continue
			}
			var d []discard
			var n int64
			if owned(table) {
				n, d, err = l.upsert(ctx, conn, tx, w.schema, staged[table].cols, table, trows)
			} else {
				var ids []string
				n, used[table], ids, d, err = l.insert(ctx, conn, tx, w.schema, staged[table], table, trows, w.merge)
				if ids != nil {
					fresh[table] = make(map[string]bool, len(ids))
					for _, id := range ids {
						fresh[table][id] = true
					}
				}
			}
			if err != nil {
				return err
			}
			res.Rows[table] += n
			discards = append(discards, d...)
		}
		return l.writeDiscards(ctx, conn, tx, w.schema, discards)
	})
	if err != nil {
		return err
	}
	if pt.general {
		l.known[w.schema] = staged
		if w.plans != nil {
			w.plans.setLayout(staged)
		}
		for table, cols := range used {
			if w.plans != nil && staged[table].exact {
				w.plans.set(table, nextPlan(w.plans.get(table), cols, staged[table].cols))
			}
		}
	}
	res.Discards += len(discards)
	for _, d := range discards {
		res.notice("%s.%s of %s discarded: %s", d.table, d.column, d.rowID, d.reason)
	}
	pt.res.add(res)
	return nil
}

// rowsOf collects the rows of table from the sub-batch's events, leaving out the event-table
// rows of events whose messageId was written before.
func rowsOf(p *prepared, table string, repeated []bool) []schema.Row {
	var rows []schema.Row
	for i, ev := range p.events {
		if ev.err != nil || (repeated[i] && !owned(table)) {
			continue
		}
		for _, r := range ev.rows {
			if r.Table == table {
				rows = append(rows, r)
			}
		}
	}
	return rows
}

// ownerOf is the event table whose events make the rows of an owned table.
func ownerOf(table string) string {
	switch table {
	case schema.TableUsers:
		return schema.TableIdentifies
	case schema.TableAccounts:
		return schema.TableGroups
	}
	return ""
}

// owned reports whether table holds one upserted row per user or account rather than one row
// per event.
func owned(table string) bool {
	return table == schema.TableUsers || table == schema.TableAccounts
}

// ensureTable creates table if needed and adds the columns rows need. A new column's type is the
// kind of its values in the load; when they disagree, int and float give float and any other mix
// gives string, which can hold every value. later are the table's rows in the load's later
// sub-batches (nil when there are none, or they do not change the schema): the columns they need
// are added now too, with the types of all of their values, so a load written in sub-batches gets
// the columns and types of one written at once. A row whose new columns would take the table
// past MaxColumns is left out (returned as a whole-row discard); later rows may still fit.
func (l *Loader) ensureTable(ctx context.Context, tx *sql.Tx, schemaName string, staged schemaLayout, table string, rows, later []schema.Row) ([]schema.Row, []discard, error) {
	name := sqlengine.QualifiedName(l.d, schemaName, table)
	t, exists := staged[table]
	if !exists {
		t = tableLayout{cols: tableColumns{"id": sqlengine.KindString}, exact: true}
	}
	added := map[string]sqlengine.ColumnKind{}
	var known []schema.Column // the columns of the last row that needed no new column
	// fit adds r's new columns to added, or returns a whole-row discard when they would take the
	// table past MaxColumns.
	fit := func(r schema.Row) (discard, bool) {
		if sameNames(known, r.Columns) {
			return discard{}, true // rows of one event type mostly share their columns
		}
		fresh := 0
		for _, c := range r.Columns {
			if _, ok := t.cols[c.Name]; ok {
				continue
			}
			if _, ok := added[c.Name]; !ok {
				fresh++
			}
		}
		if n := len(t.cols) + len(added) + fresh; n > MaxColumns {
			return discard{
				table: table, column: DiscardWholeRow, value: strconv.Itoa(len(r.Columns)) + " columns", rowID: r.ID(),
				receivedAt: receivedAt(r),
				reason:     fmt.Sprintf("the row needs %d new columns and the table would have %d, over the %d-column limit", fresh, n, MaxColumns),
			}, false
		}
		isNew := false
		for _, c := range r.Columns {
			if _, ok := t.cols[c.Name]; ok {
				continue
			}
			isNew = true
			if k, seen := added[c.Name]; seen {
				added[c.Name] = mergeKinds(k, c.Value.Kind())
			} else {
				added[c.Name] = c.Value.Kind()
			}
		}
		if !isNew {
			known = r.Columns
		}
		return discard{}, true
	}
	kept := rows[:0:0]
	var tooWide []discard
	for _, r := range rows {
		if d, ok := fit(r); ok {
			kept = append(kept, r)
		} else {
			tooWide = append(tooWide, d)
		}
	}
	if len(kept) == 0 {
		return nil, tooWide, nil
	}
	for _, r := range later {
		_, _ = fit(r) // its part discards it again if it does not fit
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
	t.cols = maps.Clone(t.cols)
	// PostgreSQL adds all the columns in one statement; DuckDB takes one column per ALTER.
	var clauses []string
	for _, c := range slices.Sorted(maps.Keys(added)) {
		clauses = append(clauses, fmt.Sprintf("ADD COLUMN IF NOT EXISTS %s %s", l.d.QuoteIdent(c), l.d.ColumnType(added[c])))
		t.cols[c] = added[c]
	}
	if l.d.Name() == "postgres" {
		clauses = []string{strings.Join(clauses, ", ")}
	}
	for _, clause := range clauses {
		if _, err := tx.ExecContext(ctx, "ALTER TABLE "+name+" "+clause); err != nil {
			return nil, nil, fmt.Errorf("add columns to %s: %w", name, err)
		}
	}
	staged[table] = t
	return kept, tooWide, nil
}

// sameNames reports whether a and b name the same columns in the same order. Rows built from
// events of one shape share their name strings, so this is mostly pointer comparisons.
func sameNames(a, b []schema.Column) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name {
			return false
		}
	}
	return true
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

// tableRows are the rows of one table in one load, laid out for writing: each row's columns are
// placed in cols, the union of the columns the rows fill (sorted).
type tableRows struct {
	table string
	cols  []string
	kinds []sqlengine.ColumnKind // the column types, in cols order
	rows  []schema.Row
	// slots[i][j] is the index in rows[i].Columns of cols[j], or -1 (NULL). Rows with the same
	// column names share one slice.
	slots [][]int32
}

// layoutRows keeps the first row of each id and places the rows' columns.
func layoutRows(table string, kinds tableColumns, rows []schema.Row) *tableRows {
	t := &tableRows{table: table}
	seen := make(map[string]struct{}, len(rows))
	used := map[string]struct{}{}
	var last []schema.Column
	t.rows = rows[:0:0]
	for _, r := range rows {
		id := r.ID()
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		t.rows = append(t.rows, r)
		if sameNames(last, r.Columns) {
			continue
		}
		last = r.Columns
		for _, c := range r.Columns {
			used[c.Name] = struct{}{}
		}
	}
	t.cols = slices.Sorted(maps.Keys(used))
	pos := make(map[string]int32, len(t.cols))
	t.kinds = make([]sqlengine.ColumnKind, len(t.cols))
	for j, c := range t.cols {
		pos[c] = int32(j)
		t.kinds[j] = kinds[c]
	}
	t.slots = make([][]int32, len(t.rows))
	var lastSlots []int32
	last = nil
	for i, r := range t.rows {
		if !sameNames(last, r.Columns) {
			last = r.Columns
			lastSlots = make([]int32, len(t.cols))
			for j := range lastSlots {
				lastSlots[j] = -1
			}
			for k, c := range r.Columns {
				lastSlots[pos[c.Name]] = int32(k)
			}
		}
		t.slots[i] = lastSlots
	}
	return t
}

// each calls f with every value of every row, cast to its column's type (the zero Value is
// NULL). A value that cannot be cast is NULL and recorded in discards.
func (t *tableRows) each(row func(i int), f func(v schema.Value), discards *[]discard) {
	for i, r := range t.rows {
		row(i)
		for j, k := range t.slots[i] {
			if k < 0 {
				f(schema.Value{})
				continue
			}
			v, err := cast(r.Columns[k].Value, t.kinds[j])
			if err != nil {
				*discards = append(*discards, castDiscard(r, t.cols[j], r.Columns[k].Value, err))
			}
			f(v)
		}
	}
}

// insert writes rows; within the batch the first row for an id wins. Unless merge, a stored id
// fails the load with sqlengine.ErrKeyExists (the caller loads the batch again with merge): on
// PostgreSQL the rows are encoded and COPYed straight into the table (sqlengine.CopyNew), on
// DuckDB (and PostgreSQL tables made elsewhere with other types) staged by the engine's bulk path
// and inserted without a merge (sqlengine.InsertNew). With merge, they are staged and merged
// (sqlengine.MergeInsert), which skips ids already present.
//
// It returns the columns it wrote, sorted.
func (l *Loader) insert(ctx context.Context, conn *sql.Conn, tx *sql.Tx, schemaName string, layout tableLayout, table string, rows []schema.Row, merge bool) (n int64, cols []string, stored []string, discards []discard, err error) {
	t := layoutRows(table, layout.cols, rows)
	if l.d.Name() == "postgres" && layout.exact && !merge && !l.opts.MultiRowInsert {
		d := &l.copyData
		d.Reset()
		t.each(func(int) { d.StartRow(len(t.cols)) }, func(v schema.Value) { writeCopy(d, v) }, &discards)
		n, err = sqlengine.CopyNew(ctx, conn, schemaName, table, t.cols, d)
		if d.Len() > maxPooledCopyData {
			*d = sqlengine.CopyData{} // one huge batch must not pin its buffer
		}
		return n, t.cols, nil, discards, err
	}
	values := make([][]any, 0, len(t.rows))
	t.each(func(int) { values = append(values, make([]any, 0, len(t.cols))) }, func(v schema.Value) {
		values[len(values)-1] = append(values[len(values)-1], v.Any())
	}, &discards)
	if l.opts.MultiRowInsert {
		n, err = l.multiRowInsert(ctx, tx, schemaName, table, t.cols, values)
		return n, t.cols, nil, discards, err
	}
	typed := make([]sqlengine.Column, len(t.cols))
	for i, c := range t.cols {
		typed[i] = sqlengine.Column{Name: c, Kind: t.kinds[i]}
	}
	switch {
	case merge && (table == schema.TableIdentifies || table == schema.TableGroups):
		// The users/accounts rows of these events are applied only for the ids stored now.
		stored, err = sqlengine.MergeInsertKeys(ctx, conn, tx, l.d, schemaName, table, "id", typed, values)
		if stored == nil && err == nil {
			stored = []string{}
		}
		return int64(len(stored)), t.cols, stored, discards, err
	case merge:
		n, err = sqlengine.MergeInsert(ctx, conn, tx, l.d, schemaName, table, []string{"id"}, typed, values)
	default:
		n, err = sqlengine.InsertNew(ctx, conn, tx, l.d, schemaName, table, typed, values)
	}
	return n, t.cols, nil, discards, err
}

// writeCopy encodes v (of its column's kind, or NULL) for sqlengine.CopyNew.
func writeCopy(d *sqlengine.CopyData, v schema.Value) {
	switch v.Kind() {
	case sqlengine.KindString:
		d.Text(v.Str())
	case sqlengine.KindInt:
		d.Int(v.Int())
	case sqlengine.KindFloat:
		d.Float(v.Float())
	case sqlengine.KindBool:
		d.Bool(v.Bool())
	case sqlengine.KindTimestamp:
		d.Timestamp(v.Unix())
	default:
		d.Null()
	}
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

// upsert writes the users or accounts rows of a load: one row per id holding, per column, the
// value of the latest event (by received_at) that set it, where an event older than the stored
// row changes nothing. As if each row, in received_at order, were applied with
// "INSERT … ON CONFLICT (id) DO UPDATE SET <its columns> WHERE stored.received_at <= its
// received_at", in three statements whatever the number of rows: the rows are folded per id (a
// column's value and the received_at of the row that set it), staged, then the stored ids are
// updated column by column (a column takes the new value when the row that set it is not older
// than the stored row) and the new ids inserted. A statement per row cost DuckDB ~6 ms each.
// It returns how many ids it wrote (new, or stored and not newer than the load's rows).
func (l *Loader) upsert(ctx context.Context, conn *sql.Conn, tx *sql.Tx, schemaName string, kinds tableColumns, tableName string, rows []schema.Row) (int64, []discard, error) {
	received := func(r schema.Row) time.Time {
		v, _ := r.Get("received_at")
		if v.Kind() != sqlengine.KindTimestamp {
			return time.Time{}
		}
		return v.Time()
	}
	slices.SortStableFunc(rows, func(a, b schema.Row) int { return received(a).Compare(received(b)) })
	// cols are the rows' columns but id, sorted; per id, vals[j] and at[j] are column j's value
	// and the received_at of the row that set it (nil: no row did).
	used := map[string]struct{}{}
	for _, r := range rows {
		for _, c := range r.Columns[1:] {
			used[c.Name] = struct{}{}
		}
	}
	cols := slices.Sorted(maps.Keys(used))
	pos := make(map[string]int, len(cols))
	for j, c := range cols {
		pos[c] = j
	}
	type folded struct{ vals, at []any }
	byID := map[string]*folded{}
	var ids []string
	var discards []discard
	for _, r := range rows {
		id := r.ID()
		f := byID[id]
		if f == nil {
			f = &folded{vals: make([]any, len(cols)), at: make([]any, len(cols))}
			byID[id] = f
			ids = append(ids, id)
		}
		var at any
		if t := received(r); !t.IsZero() {
			at = t
		}
		for _, c := range r.Columns[1:] {
			j := pos[c.Name]
			v, err := cast(c.Value, kinds[c.Name])
			if err != nil {
				discards = append(discards, castDiscard(r, c.Name, c.Value, err))
			}
			f.vals[j], f.at[j] = v.Any(), at
		}
	}
	stageCols := []sqlengine.Column{{Name: "id", Kind: sqlengine.KindString}}
	for j, c := range cols {
		stageCols = append(stageCols, sqlengine.Column{Name: fmt.Sprintf("v%d", j), Kind: kinds[c]},
			sqlengine.Column{Name: fmt.Sprintf("a%d", j), Kind: sqlengine.KindTimestamp})
	}
	staged := make([][]any, 0, len(ids))
	for _, id := range ids {
		f := byID[id]
		row := make([]any, 0, 1+2*len(cols))
		row = append(row, id)
		for j := range cols {
			row = append(row, f.vals[j], f.at[j])
		}
		staged = append(staged, row)
	}
	stage, err := sqlengine.Stage(ctx, conn, tx, l.d, stageCols, staged)
	if err != nil {
		return 0, nil, fmt.Errorf("upsert into %s.%s: %w", schemaName, tableName, err)
	}
	table := sqlengine.QualifiedName(l.d, schemaName, tableName)
	q := l.d.QuoteIdent
	recv := "u." + q("received_at")
	sets := make([]string, len(cols))
	for j, c := range cols {
		a := "s." + q(fmt.Sprintf("a%d", j))
		sets[j] = fmt.Sprintf("%s = CASE WHEN %s IS NOT NULL AND (%s IS NULL OR %s <= %s) THEN s.%s ELSE u.%s END",
			q(c), a, recv, recv, a, q(fmt.Sprintf("v%d", j)), q(c))
	}
	// An id is written when some row of it is not older than the stored row: the row that set
	// received_at is the latest.
	newer := "TRUE"
	if j, ok := pos["received_at"]; ok {
		newer = fmt.Sprintf("(%s IS NULL OR %s <= s.%s)", recv, recv, q(fmt.Sprintf("a%d", j)))
	}
	update := fmt.Sprintf("UPDATE %s AS u SET %s FROM %s AS s WHERE u.%s = s.%s AND %s",
		table, strings.Join(sets, ", "), stage.Table, q("id"), q("id"), newer)
	res, err := tx.ExecContext(ctx, update)
	if err != nil {
		return 0, nil, fmt.Errorf("upsert into %s: %w", table, err)
	}
	updated, _ := res.RowsAffected()
	names, vals := []string{q("id")}, []string{"s." + q("id")}
	for j, c := range cols {
		names = append(names, q(c))
		vals = append(vals, "s."+q(fmt.Sprintf("v%d", j)))
	}
	insert := fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s AS s WHERE NOT EXISTS (SELECT 1 FROM %s AS u WHERE u.%s = s.%s)",
		table, strings.Join(names, ", "), strings.Join(vals, ", "), stage.Table, table, q("id"), q("id"))
	res, err = tx.ExecContext(ctx, insert)
	if err != nil {
		return 0, nil, fmt.Errorf("upsert into %s: %w", table, err)
	}
	inserted, _ := res.RowsAffected()
	return updated + inserted, discards, stage.Drop(ctx)
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
func cast(v schema.Value, k sqlengine.ColumnKind) (schema.Value, error) {
	if v.Kind() == k {
		return v, nil
	}
	switch k {
	case sqlengine.KindString:
		return schema.StringValue(text(v)), nil
	case sqlengine.KindFloat:
		switch v.Kind() {
		case sqlengine.KindInt:
			if x := v.Int(); x >= -(1<<53) && x <= 1<<53 {
				return schema.FloatValue(float64(x)), nil
			}
		case sqlengine.KindString:
			if f, err := strconv.ParseFloat(strings.TrimSpace(v.Str()), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return schema.FloatValue(f), nil
			}
		}
	case sqlengine.KindInt:
		switch v.Kind() {
		case sqlengine.KindFloat:
			if x := v.Float(); x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
				return schema.IntValue(int64(x)), nil
			}
		case sqlengine.KindString:
			if i, err := strconv.ParseInt(strings.TrimSpace(v.Str()), 10, 64); err == nil {
				return schema.IntValue(i), nil
			}
		}
	case sqlengine.KindBool:
		if v.Kind() == sqlengine.KindString {
			if b, err := strconv.ParseBool(v.Str()); err == nil {
				return schema.BoolValue(b), nil
			}
		}
	}
	return schema.Value{}, fmt.Errorf("%w %s value to %s column", errNoCast, v.Kind(), k)
}

// text renders a value for a string column or the discards table.
func text(v schema.Value) string {
	switch v.Kind() {
	case sqlengine.KindString:
		return v.Str()
	case sqlengine.KindInt:
		return strconv.FormatInt(v.Int(), 10)
	case sqlengine.KindFloat:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case sqlengine.KindBool:
		return strconv.FormatBool(v.Bool())
	case sqlengine.KindTimestamp:
		return v.Time().Format(time.RFC3339Nano)
	default:
		return ""
	}
}

// receivedAt returns a row's received_at for the discards table (nil when it has none).
func receivedAt(r schema.Row) any {
	v, _ := r.Get("received_at")
	return v.Any()
}

// castDiscard records that r's value v could not become the type of column.
func castDiscard(r schema.Row, column string, v schema.Value, err error) discard {
	return discard{table: r.Table, column: column, value: text(v), rowID: r.ID(), receivedAt: receivedAt(r), reason: err.Error()}
}
