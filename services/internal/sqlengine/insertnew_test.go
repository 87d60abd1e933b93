package sqlengine

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
)

// TestInsertNewRefusesStoredKeys checks InsertNew on DuckDB: new rows are inserted and counted;
// a batch holding a stored key fails with ErrKeyExists (not a data error to isolate), and after
// the rollback MergeInsert stores only the batch's new rows.
func TestInsertNewRefusesStoredKeys(t *testing.T) {
	t.Parallel()
	e, err := OpenDuckDB(filepath.Join(t.TempDir(), "w.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := t.Context()
	d := e.Dialect()
	if _, err := e.DB().ExecContext(ctx, `CREATE SCHEMA s; CREATE TABLE s.t (id VARCHAR PRIMARY KEY, n BIGINT)`); err != nil {
		t.Fatal(err)
	}
	cols := []Column{{"id", KindString}, {"n", KindInt}}
	inTx := func(f func(conn *sql.Conn, tx *sql.Tx) (int64, error)) (int64, error) {
		conn, err := e.DB().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := f(conn, tx)
		if err != nil {
			_ = tx.Rollback()
			return n, err
		}
		return n, tx.Commit()
	}
	insert := func(rows [][]any) (int64, error) {
		return inTx(func(conn *sql.Conn, tx *sql.Tx) (int64, error) {
			return InsertNew(ctx, conn, tx, d, "s", "t", cols, rows)
		})
	}
	if n, err := insert([][]any{{"a", int64(1)}, {"b", int64(2)}}); err != nil || n != 2 {
		t.Fatalf("first insert = %d, %v; want 2 rows", n, err)
	}
	_, err = insert([][]any{{"c", int64(3)}, {"a", int64(9)}})
	if !errors.Is(err, ErrKeyExists) {
		t.Fatalf("insert of a stored key: err = %v, want ErrKeyExists", err)
	}
	n, err := inTx(func(conn *sql.Conn, tx *sql.Tx) (int64, error) {
		return MergeInsert(ctx, conn, tx, d, "s", "t", []string{"id"}, cols, [][]any{{"c", int64(3)}, {"a", int64(9)}})
	})
	if err != nil || n != 1 {
		t.Fatalf("merge after the refused insert = %d, %v; want 1 new row", n, err)
	}
	var sum, count int64
	if err := e.DB().QueryRowContext(context.Background(), `SELECT sum(n), count(*) FROM s.t`).Scan(&sum, &count); err != nil {
		t.Fatal(err)
	}
	if sum != 6 || count != 3 {
		t.Fatalf("table holds %d rows summing to %d, want a=1, b=2, c=3", count, sum)
	}
}
