// Package loader writes batches of Segment events into a warehouse, creating and widening tables
// as events arrive. Load returns nil only after every transaction holding the batch's rows
// committed, so the caller acks the batch's JetStream messages only then (at-least-once).
// Redeliveries are harmless: every table's id (the messageId) is its primary key, a direct COPY
// that meets a stored id fails as a whole, and the batch is then loaded again through a merge
// that skips stored ids, so each id is stored once however often its event is loaded.
package loader

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"
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

// tableLayout is what the loader knows of one table.
type tableLayout struct {
	cols tableColumns
	// exact is true when every column has the type the dialect creates for its kind (always for
	// the tables the loader created), so PostgreSQL loads can encode rows for sqlengine.CopyNew.
	exact bool
}

// schemaLayout maps a table name to its layout. Layouts are replaced, never mutated, so a
// shallow clone of a schemaLayout can be staged.
type schemaLayout map[string]tableLayout

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
	// plans are the copy plans per warehouse schema and table (see copyPlan), kept like known.
	plans map[string]map[string]*copyPlan
	// builders are the row builders of prepare's goroutines, kept between loads (their name
	// caches stay warm). Only one load runs at a time, and within it only its preparing
	// goroutine uses them.
	builders []*schema.Builder
	// copyData is the encoding buffer of the general path's sqlengine.CopyNew.
	copyData sqlengine.CopyData
	// encodedRows counts the rows written from prepare's encodings (for tests).
	encodedRows atomic.Int64
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
	return &Loader{e: e, d: e.Dialect(), logger: logger, opts: opts, now: now,
		known: map[string]schemaLayout{}, plans: map[string]map[string]*copyPlan{}}
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
// stream. Everything else is written in sub-batches, each in one transaction (on PostgreSQL up to
// two at once, see loadParts); Load returns nil only after all of them committed.
//
// When the database refuses the data itself (sqlengine.IsDataError: a value or a row it cannot
// hold) while it is reachable, the batch is split in halves and each half loaded on its own, down to
// the single event, which is then recorded in discards with the database's reason and skipped: one
// bad row never blocks the rest. Any other error (the warehouse is down) is returned and the caller
// retries the whole batch later; sub-batches that committed before the error stay, and the retry
// stores none of their rows again. The Result of a failed Load counts the rows those sub-batches
// stored.
func (l *Loader) Load(ctx context.Context, schemaName string, events [][]byte) (Result, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	res := Result{Rows: map[string]int64{}}
	err := l.loadIsolating(ctx, schemaName, events, &res)
	return res, err
}

func (l *Loader) loadIsolating(ctx context.Context, schemaName string, events [][]byte, res *Result) error {
	one, err := l.loadOnce(ctx, schemaName, events)
	if err == nil {
		res.add(one)
		return nil
	}
	for t, n := range one.Rows { // stored by parts that committed before the failure
		res.Rows[t] += n
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
	p := l.prepare([][]byte{raw}, 0, l.now().UTC(), target{}, 1)
	var rows []schema.Row
	if ev := p.events[0]; ev.err == nil {
		rows = ev.rows
	}
	if len(rows) == 0 {
		return nil
	}
	reason := "refused by the warehouse: " + cause.Error()
	var ds []discard
	for _, r := range rows {
		ds = append(ds, discard{table: r.Table, column: DiscardWholeRow, value: string(raw), rowID: r.ID(),
			receivedAt: receivedAt(r), reason: reason})
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

// loadOnce loads events. Rows go straight into their tables (sqlengine.CopyNew) when the engine
// allows it; when one of their ids is stored already (a redelivery, or a concurrent writer), the
// load is started again through the staging table and merge, which skips stored ids. On failure,
// the Result holds the rows that parts which committed stored.
func (l *Loader) loadOnce(ctx context.Context, schemaName string, events [][]byte) (Result, error) {
	res, err := l.loadParts(ctx, schemaName, events, false)
	if errors.Is(err, sqlengine.ErrKeyExists) {
		var again Result
		again, err = l.loadParts(ctx, schemaName, events, true)
		for t, n := range res.Rows {
			again.Rows[t] += n
		}
		res = again
	}
	return res, err
}

// subBatches cuts a load of n events into sub-batches and returns their sizes. On PostgreSQL with
// copy plans a load starts with a small sub-batch (firstSubBatch events), so the database starts
// early, then continues with sub-batches of about subBatch events: large enough for few
// statements per table, small enough that there is always one to build while others are
// written. When the schema has no copy plans yet (its first load), the first sub-batch is smaller
// still (coldSubBatch): it creates the tables and their plans, so the rest of the load is
// encoded. DuckDB runs in this process: its writes take the CPU the next sub-batch would be built
// with, and each statement costs more than on PostgreSQL, so a load is one sub-batch there; so is
// a load without copy plans (the merge after a redelivery), which has no encoding to overlap.
func (l *Loader) subBatches(n int, plans *copyPlans) []int {
	var sizes []int
	if plans == nil {
		return append(sizes, n)
	}
	first := firstSubBatch
	if len(plans.m) == 0 {
		first = coldSubBatch
	}
	if n > 2*first {
		sizes = append(sizes, first)
		n -= first
	}
	for parts := max(1, (n+subBatch/2)/subBatch); parts > 0; parts-- {
		size := (n + parts - 1) / parts
		sizes = append(sizes, size)
		n -= size
	}
	return sizes
}

const (
	firstSubBatch = 1000
	coldSubBatch  = 250
	subBatch      = 2500
)

// loadParts loads events in sub-batches: while one is written, a goroutine already parses,
// builds and encodes the next (prepare), so the database's work and the CPU's overlap. On
// PostgreSQL each sub-batch is a transaction of its own, and up to parallelWrites of them run at
// once (partWriter). merge disables the direct-write path (sqlengine.CopyNew): every table goes
// through the staging table and merge, in one transaction.
//
// A sub-batch with rows of a table that had no copy plan (a new table or new columns) is written
// through the general path, which creates the plan; the next sub-batch is prepared only after
// that, so it is encoded. A sub-batch that changes the schema is written only once the rest of
// the load is built (prepared.later): a new column's type depends on all of the load's values,
// as on an engine that writes the load at once. The rest is encoded after the schema changed.
func (l *Loader) loadParts(ctx context.Context, schemaName string, events [][]byte, merge bool) (Result, error) {
	plans := &copyPlans{m: maps.Clone(l.plans[schemaName])}
	if merge || l.d.Name() != "postgres" || l.opts.MultiRowInsert {
		plans = nil
	} else {
		layout, err := l.layout(ctx, schemaName)
		if err != nil {
			return Result{}, err
		}
		plans.layout = layout
	}
	loadedAt := l.now().UTC()
	pctx, cancel := context.WithCancel(ctx)
	ready := make(chan *prepared)
	written := make(chan struct{}, 1) // a sub-batch that waits for its write was written
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(ready)
		// The first sub-batch is built on every CPU. The next ones are built while sub-batches are
		// written, which takes CPU too (the database's when it shares the machine, the
		// connection's otherwise): one CPU is left to that on PostgreSQL.
		cpus := runtime.GOMAXPROCS(0)
		sizes := l.subBatches(len(events), plans)
		var ahead []*prepared // sub-batches built ahead of a schema change, not yet encoded
		builtAhead := false
		defer func() {
			for _, p := range ahead {
				p.release()
			}
		}()
		start := 0
		for i, size := range sizes {
			var p *prepared
			if builtAhead {
				p, ahead = ahead[0], ahead[1:]
				p.encode(plans.snapshot(), cpus)
			} else {
				p = l.prepare(events[start:start+size], start, loadedAt, plans.snapshot(), cpus)
			}
			if l.d.Name() == "postgres" {
				cpus = max(1, runtime.GOMAXPROCS(0)-1)
			}
			start += size
			if p.schemaChange && !builtAhead {
				builtAhead = true
				next := start
				for _, s := range sizes[i+1:] {
					ahead = append(ahead, l.prepare(events[next:next+s], next, loadedAt, target{}, runtime.GOMAXPROCS(0)))
					next += s
				}
			}
			if p.schemaChange {
				p.later = ahead
			}
			wait := plans != nil && (p.unplanned || p.schemaChange) // p belongs to the writer once handed over
			select {
			case ready <- p:
			case <-pctx.Done():
				p.release()
				return
			}
			if wait {
				select {
				case <-written:
				case <-pctx.Done():
					return
				}
			}
		}
	})
	defer wg.Wait()
	defer cancel()

	w := newPartWriter(l, schemaName, merge, plans)
	for p := range ready {
		wait := plans != nil && (p.unplanned || p.schemaChange) // p is released once written
		ok := w.dispatch(ctx, p)
		if wait {
			written <- struct{}{}
		}
		if !ok {
			break
		}
	}
	res, err := w.wait()
	if err != nil {
		l.forget(schemaName, err)
		return res, fmt.Errorf("load into %q: %w", schemaName, err)
	}
	if plans != nil {
		l.plans[schemaName] = plans.m
	}
	return res, nil
}

// forget drops what the loader believes of schemaName's tables after a load failed with err,
// so the next load reads them again: the database may differ from what it believed. A stored id
// (sqlengine.ErrKeyExists) says nothing about the tables.
func (l *Loader) forget(schemaName string, err error) {
	if errors.Is(err, sqlengine.ErrKeyExists) {
		return
	}
	delete(l.known, schemaName)
	delete(l.plans, schemaName)
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
		t, seen := s[table]
		if !seen {
			t = tableLayout{cols: tableColumns{}, exact: true}
		}
		t.cols[column] = k
		t.exact = t.exact && ok && (l.d.Name() != "postgres" || sqlengine.CopyableType(k, dataType))
		s[table] = t
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read layout of %q: %w", schemaName, err)
	}
	l.known[schemaName] = s
	return s, nil
}
