package sqlengine

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Column is a named column of a portable kind.
type Column struct {
	Name string
	Kind ColumnKind
}

// stageName is the temporary table bulk rows land in before the merge. It is created and dropped
// inside the caller's transaction, on the caller's connection (temporary tables are per session).
// The name carries a hash of the column definitions because pgx caches the description of the
// table COPY writes to by name: a table of another shape must have another name.
func stageName(defs []string) string {
	sum := sha256.Sum256([]byte(strings.Join(defs, ",")))
	return "sy_stage_" + hex.EncodeToString(sum[:8])
}

// MergeInsert writes rows (values in cols order; nil is NULL) into schema.table through the
// engine's bulk path and merges them on key: rows whose key already exists in the table are
// skipped, so reloading a batch adds nothing. PostgreSQL: COPY into a temporary staging table, then
// INSERT … SELECT … ON CONFLICT DO NOTHING. DuckDB: its appender into a temporary staging table, then
// the same INSERT. conn must be inside tx (both from the caller), which commits or rolls back.
// Rows must hold distinct keys. It returns how many rows were new.
func MergeInsert(ctx context.Context, conn *sql.Conn, tx *sql.Tx, d Dialect, schema, table string, key []string, cols []Column, rows [][]any) (int64, error) {
	return bulkInsert(ctx, conn, tx, d, schema, table, key, cols, rows)
}

// InsertNew writes rows like MergeInsert, without the merge: the staged rows are inserted with a
// plain INSERT … SELECT, and the table's unique key keeps each row once: a row whose key is
// stored already (a redelivery) makes the statement fail, reported as ErrKeyExists (the
// transaction is then aborted: the caller rolls back and loads the rows again with
// MergeInsert). On DuckDB, the merge's ON CONFLICT costs more the larger the table is (about
// 20 ms per 1,000 rows into 20,000 rows, 115 ms into 1.8 million), a plain INSERT does not
// (about 13 ms throughout).
func InsertNew(ctx context.Context, conn *sql.Conn, tx *sql.Tx, d Dialect, schema, table string, cols []Column, rows [][]any) (int64, error) {
	n, err := bulkInsert(ctx, conn, tx, d, schema, table, nil, cols, rows)
	if err != nil && isUniqueViolation(err) {
		return 0, fmt.Errorf("%w: %w", ErrKeyExists, err)
	}
	return n, err
}

// isUniqueViolation reports whether err is a primary key or unique constraint violation.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	// DuckDB: `Constraint Error: Duplicate key "id: m-1" violates primary key constraint.`
	var de *duckdb.Error
	if !errors.As(err, &de) || de.Type != duckdb.ErrorTypeConstraint {
		return false
	}
	msg := strings.ToLower(de.Msg)
	return strings.Contains(msg, "duplicate key") && (strings.Contains(msg, "primary key") || strings.Contains(msg, "unique"))
}

// bulkInsert stages rows and inserts them into schema.table, skipping rows whose key exists when
// key is set (the merge), failing on them otherwise.
func bulkInsert(ctx context.Context, conn *sql.Conn, tx *sql.Tx, d Dialect, schema, table string, key []string, cols []Column, rows [][]any) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	stage, err := Stage(ctx, conn, tx, d, cols, rows)
	if err != nil {
		return 0, fmt.Errorf("stage rows for %s.%s: %w", schema, table, err)
	}
	col := quoteAll(d, stage.Names)
	merge := fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s", QualifiedName(d, schema, table), col, col, stage.Table)
	if key != nil {
		merge += fmt.Sprintf(" ON CONFLICT (%s) DO NOTHING", quoteAll(d, key))
	}
	res, err := tx.ExecContext(ctx, merge)
	if err != nil {
		return 0, fmt.Errorf("merge into %s.%s: %w", schema, table, err)
	}
	n, _ := res.RowsAffected()
	return n, stage.Drop(ctx)
}

// MergeInsertKeys is MergeInsert returning the key (a single column) of every row it stored, so
// the caller knows which rows were new.
func MergeInsertKeys(ctx context.Context, conn *sql.Conn, tx *sql.Tx, d Dialect, schema, table, key string, cols []Column, rows [][]any) ([]string, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	stage, err := Stage(ctx, conn, tx, d, cols, rows)
	if err != nil {
		return nil, fmt.Errorf("stage rows for %s.%s: %w", schema, table, err)
	}
	col := quoteAll(d, stage.Names)
	q := fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s ON CONFLICT (%s) DO NOTHING RETURNING %s",
		QualifiedName(d, schema, table), col, col, stage.Table, d.QuoteIdent(key), d.QuoteIdent(key))
	rs, err := tx.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("merge into %s.%s: %w", schema, table, err)
	}
	var keys []string
	for rs.Next() {
		var k string
		if err := rs.Scan(&k); err != nil {
			_ = rs.Close()
			return nil, fmt.Errorf("merge into %s.%s: %w", schema, table, err)
		}
		keys = append(keys, k)
	}
	if err := errors.Join(rs.Err(), rs.Close()); err != nil {
		return nil, fmt.Errorf("merge into %s.%s: %w", schema, table, err)
	}
	return keys, stage.Drop(ctx)
}

// A Staged table holds rows written by the engine's bulk path (PostgreSQL: COPY; DuckDB: the
// appender) in a temporary table of the caller's transaction, for a statement that reads them.
type Staged struct {
	// Table is the staging table's (unqualified, already quoted-safe) name.
	Table string
	// Names are the columns' names, in the rows' order.
	Names []string
	tx    *sql.Tx
}

// Drop drops the staging table, so the next table of the same transaction can stage with other
// columns.
func (s Staged) Drop(ctx context.Context) error {
	if _, err := s.tx.ExecContext(ctx, "DROP TABLE "+s.Table); err != nil {
		return fmt.Errorf("drop staging table: %w", err)
	}
	return nil
}

// Stage writes rows (values in cols order; nil is NULL) into a new temporary table on conn,
// inside tx (both from the caller).
func Stage(ctx context.Context, conn *sql.Conn, tx *sql.Tx, d Dialect, cols []Column, rows [][]any) (Staged, error) {
	defs := make([]string, len(cols))
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
		defs[i] = d.QuoteIdent(c.Name) + " " + d.ColumnType(c.Kind)
	}
	stageTable := stageName(defs)
	var create string
	switch d.Name() {
	case "postgres":
		create = fmt.Sprintf("CREATE TEMPORARY TABLE %s (%s) ON COMMIT DROP", stageTable, strings.Join(defs, ", "))
	default:
		create = fmt.Sprintf("CREATE OR REPLACE TEMPORARY TABLE %s (%s)", stageTable, strings.Join(defs, ", "))
	}
	if _, err := tx.ExecContext(ctx, create); err != nil {
		return Staged{}, fmt.Errorf("create staging table: %w", err)
	}
	err := conn.Raw(func(dc any) error {
		switch c := dc.(type) {
		case *stdlib.Conn:
			_, err := c.Conn().CopyFrom(ctx, pgx.Identifier{stageTable}, names, pgx.CopyFromRows(rows))
			return err
		case driver.Conn:
			if d.Name() != "duckdb" {
				return fmt.Errorf("no bulk path for %s", d.Name())
			}
			return appendDuck(c, stageTable, rows)
		default:
			return fmt.Errorf("no bulk path for driver connection %T", dc)
		}
	})
	if err != nil {
		return Staged{}, fmt.Errorf("bulk write: %w", err)
	}
	return Staged{Table: stageTable, Names: names, tx: tx}, nil
}

// appendDuck appends rows to the DuckDB staging table with the appender.
func appendDuck(c driver.Conn, stageTable string, rows [][]any) (err error) {
	a, err := duckdb.NewAppender(c, "temp", "main", stageTable)
	if err != nil {
		return fmt.Errorf("open appender: %w", err)
	}
	defer func() { err = errors.Join(err, a.Close()) }()
	vals := make([]driver.Value, 0, len(rows[0]))
	for _, r := range rows {
		vals = vals[:0]
		for _, v := range r {
			vals = append(vals, v)
		}
		if err := a.AppendRow(vals...); err != nil {
			return fmt.Errorf("append row: %w", err)
		}
	}
	return nil
}

// quoteAll quotes names and joins them with commas.
func quoteAll(d Dialect, names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = d.QuoteIdent(n)
	}
	return strings.Join(q, ", ")
}
