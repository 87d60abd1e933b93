package sqlengine

import (
	"encoding/json"
	"errors"
	"math/big"
	"path/filepath"
	"testing"
	"time"
)

func TestIsReadOnlySQL(t *testing.T) {
	t.Parallel()
	allowed := []string{
		"SELECT 1",
		"select * from s.t where x = 'DELETE FROM t; DROP TABLE t'",
		"SELECT \"update\", \"user\" FROM s.\"order\";",
		"  -- a comment\n WITH a AS (SELECT 1) SELECT * FROM a ; ",
		"/* DROP TABLE x */ SELECT 1",
		"SELECT $$ DELETE ; $$",
		"SELECT E'it\\'s; DROP'",
		"EXPLAIN SELECT 1",
		"DESCRIBE s.t",
		"SHOW TABLES",
		"VALUES (1), (2)",
		"FROM s.t LIMIT 3",
		"SELECT x FROM t WHERE y = $1",
	}
	for _, q := range allowed {
		t.Run("allows "+q, func(t *testing.T) {
			t.Parallel()
			if err := IsReadOnlySQL(q); err != nil {
				t.Fatalf("IsReadOnlySQL(%q) = %v, want nil", q, err)
			}
		})
	}
	refused := []string{
		"",
		"  ;  ",
		"DELETE FROM t",
		"INSERT INTO t VALUES (1)",
		"UPDATE t SET a = 1",
		"DROP TABLE t",
		"CREATE TABLE x AS SELECT 1",
		"SELECT 1; DROP TABLE t",
		"SELECT 1; SELECT 2",
		"SELECT * INTO newt FROM t",
		"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
		"EXPLAIN ANALYZE DELETE FROM t",
		"PRAGMA table_info('t')",
		"ATTACH 'other.db'",
		"COPY t TO 'out.csv'",
		"SET memory_limit = '1GB'",
		"INSTALL httpfs",
		"CALL checkpoint()",
		"SELECT 'unterminated",
		"SELECT E'\\''; DELETE FROM t; --'",
		"BEGIN; SELECT 1",
	}
	for _, q := range refused {
		t.Run("refuses "+q, func(t *testing.T) {
			t.Parallel()
			err := IsReadOnlySQL(q)
			if !errors.Is(err, ErrNotReadOnly) {
				t.Fatalf("IsReadOnlySQL(%q) = %v, want ErrNotReadOnly", q, err)
			}
		})
	}
}

func openTestDuck(t *testing.T) Engine {
	t.Helper()
	e, err := OpenDuckDB(filepath.Join(t.TempDir(), "wh.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func count(t *testing.T, e Engine) int {
	t.Helper()
	var n int
	if err := e.DB().QueryRowContext(t.Context(), `SELECT count(*) FROM s."user"`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestQueryReadOnly(t *testing.T) {
	t.Parallel()
	e := openTestDuck(t)
	ctx := t.Context()
	for _, q := range []string{
		`CREATE SCHEMA s`,
		`CREATE TABLE s."user" (id VARCHAR PRIMARY KEY, "order" BIGINT, ts TIMESTAMP, price DECIMAL(18,3), big HUGEINT, ok BOOLEAN, raw BLOB)`,
		`INSERT INTO s."user" VALUES ('a', 1, TIMESTAMP '2024-01-02 03:04:05.123456', 12.345, 170141183460469231731687303715884105727, true, 'xyz'::BLOB)`,
	} {
		if _, err := e.DB().ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	t.Run("reads and converts values", func(t *testing.T) {
		cols, rows, err := QueryReadOnly(ctx, e, `SELECT id, "order", ts, price, big, ok, raw FROM s."user"`, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(cols) != 7 || cols[1] != "order" {
			t.Fatalf("columns = %v", cols)
		}
		got, _ := json.Marshal(rows)
		want := `[["a",1,"2024-01-02T03:04:05.123456Z",12.345,170141183460469231731687303715884105727,true,"xyz"]]`
		if string(got) != want {
			t.Fatalf("rows = %s, want %s", got, want)
		}
	})

	t.Run("limits rows", func(t *testing.T) {
		_, rows, err := QueryReadOnly(ctx, e, `SELECT * FROM range(50)`, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 7 {
			t.Fatalf("got %d rows, want 7", len(rows))
		}
	})

	t.Run("refuses a write and changes nothing", func(t *testing.T) {
		for _, q := range []string{`DELETE FROM s."user"`, `SELECT 1; DELETE FROM s."user"`, `DROP TABLE s."user"`} {
			_, _, err := QueryReadOnly(ctx, e, q, 10)
			if !errors.Is(err, ErrNotReadOnly) {
				t.Fatalf("QueryReadOnly(%q) err = %v, want ErrNotReadOnly", q, err)
			}
		}
		if n := count(t, e); n != 1 {
			t.Fatalf("row count = %d after refused writes, want 1", n)
		}
	})

	t.Run("a write past the guard is rolled back", func(t *testing.T) {
		conn, err := e.DB().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, _, err := queryRolledBack(ctx, conn, nil, `DELETE FROM s."user" RETURNING id`, 10); err != nil {
			t.Fatal(err)
		}
		if n := count(t, e); n != 1 {
			t.Fatalf("row count = %d after rolled-back delete, want 1", n)
		}
	})
}

func TestOpenDuckDBSharesInstance(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "shared.duckdb")
	a, err := OpenDuckDB(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenDuckDB(filepath.Join(filepath.Dir(path), ".", "shared.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	if a.DB() != b.DB() {
		t.Fatal("two opens of one file got different *sql.DB")
	}
	if _, err := a.DB().ExecContext(t.Context(), "CREATE TABLE t (x INT)"); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := b.DB().ExecContext(t.Context(), "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal("b unusable after a.Close:", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := OpenDuckDB(path)
	if err != nil {
		t.Fatal("reopen after last close:", err)
	}
	defer c.Close()
	var n int
	if err := c.DB().QueryRowContext(t.Context(), "SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("reopened count = %d, %v", n, err)
	}
}

func TestJSONValue(t *testing.T) {
	t.Parallel()
	n, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"time in UTC", time.Date(2024, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600)), "2024-01-02T02:04:05.000000006Z"},
		{"bytes", []byte("hi"), "hi"},
		{"big int exact", n, json.Number("123456789012345678901234567890")},
		{"nil", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := JSONValue(tt.in); got != tt.want {
				t.Fatalf("JSONValue(%v) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}
