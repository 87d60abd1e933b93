package sqlengine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDuckDBLockedDown checks the engine itself refuses file and network
// access and configuration changes, even for SQL that gets past the query
// API's keyword guard (read_csv starts with SELECT).
func TestDuckDBLockedDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.csv")
	if err := os.WriteFile(secret, []byte("token\nsy_secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := OpenDuckDB(filepath.Join(dir, "wh.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	for _, q := range []string{
		"SELECT * FROM read_csv('" + secret + "')",
		"SELECT * FROM read_text('" + secret + "')",
		"SELECT * FROM glob('" + dir + "/*')",
		"SELECT * FROM read_json_auto('" + secret + "')",
	} {
		t.Run(q, func(t *testing.T) {
			cols, rows, err := QueryReadOnly(t.Context(), e, q, 10)
			if err == nil {
				t.Fatalf("query succeeded: %v %v", cols, rows)
			}
			if strings.Contains(err.Error(), "sy_secret") {
				t.Errorf("error leaks the file: %v", err)
			}
		})
	}
	t.Run("settings cannot be changed by SQL", func(t *testing.T) {
		if _, err := e.DB().Exec("SET enable_external_access = true"); err == nil {
			t.Fatal("SET enable_external_access = true succeeded")
		}
	})
	t.Run("the database itself still works", func(t *testing.T) {
		if _, err := e.DB().Exec("CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		_, rows, err := QueryReadOnly(t.Context(), e, "SELECT a FROM t", 10)
		if err != nil || len(rows) != 1 {
			t.Fatalf("rows = %v, err = %v", rows, err)
		}
	})
}

func TestQueryResultBytesAreBounded(t *testing.T) {
	t.Parallel()
	e, err := OpenDuckDB(filepath.Join(t.TempDir(), "big.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	// 40 rows of 1 MiB each: few rows, far over MaxResultBytes (16 MiB).
	_, rows, err := QueryReadOnly(t.Context(), e, "SELECT repeat('x', 1048576) AS s FROM range(40)", 1000)
	if !errors.Is(err, ErrResultTooLarge) {
		t.Fatalf("err = %v (rows %d), want ErrResultTooLarge", err, len(rows))
	}
	_, rows, err = QueryReadOnly(t.Context(), e, "SELECT repeat('x', 1024) AS s FROM range(40)", 1000)
	if err != nil || len(rows) != 40 {
		t.Fatalf("small result: rows %d err %v", len(rows), err)
	}
}
