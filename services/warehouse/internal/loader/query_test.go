package loader

import (
	"testing"

	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
)

// TestQueryReleasesAdvisoryLocks runs a read-only query that takes a session-level advisory lock
// on PostgreSQL (a SELECT, which the rolled-back transaction does not undo): the lock must be
// gone once the query answered, not kept by a pooled connection.
func TestQueryReleasesAdvisoryLocks(t *testing.T) {
	t.Parallel()
	e, err := sqlengine.OpenPostgres(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := t.Context()
	if _, rows, err := sqlengine.QueryReadOnly(ctx, e, "select pg_advisory_lock(424242)", 10); err != nil || len(rows) != 1 {
		t.Fatalf("query = %v, %v", rows, err)
	}
	var held int
	q := "select count(*) from pg_locks where locktype = 'advisory' and objid = 424242 and database = (select oid from pg_database where datname = current_database())"
	if err := e.DB().QueryRowContext(ctx, q).Scan(&held); err != nil {
		t.Fatal(err)
	}
	if held != 0 {
		t.Fatalf("%d advisory locks still held after the query", held)
	}
}
