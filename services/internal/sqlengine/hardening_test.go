package sqlengine

import (
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
