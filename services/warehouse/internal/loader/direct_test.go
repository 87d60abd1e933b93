package loader

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
)

func trackEvent(id string) []byte {
	return fmt.Appendf(nil, `{"type":"track","messageId":%q,"userId":"u","event":"Signed Up","receivedAt":"2024-05-01T10:00:00.000Z","properties":{"plan":"pro"}}`, id)
}

// TestDirectCopyFallsBackToMerge checks the PostgreSQL fast path (probe, then COPY straight into
// the table): a batch holding ids that exist goes through the merge, and an id another transaction
// commits between the probe and the COPY makes the load start over through the merge. Every id is
// stored once either way.
func TestDirectCopyFallsBackToMerge(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	pg, err := sqlengine.OpenPostgres(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	l := NewWithOptions(pg, slog.New(slog.DiscardHandler), Options{Now: func() time.Time { return fixedNow }})
	const schemaName = "direct"
	count := func(t *testing.T, table, id string) int {
		t.Helper()
		var n int
		q := fmt.Sprintf(`SELECT count(*) FROM "direct".%q WHERE id = $1`, table)
		if err := pg.DB().QueryRowContext(t.Context(), q, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("a batch mixing stored and new ids stores each id once", func(t *testing.T) {
		if _, err := l.Load(t.Context(), schemaName, [][]byte{trackEvent("d-1")}); err != nil {
			t.Fatal(err)
		}
		res, err := l.Load(t.Context(), schemaName, [][]byte{trackEvent("d-1"), trackEvent("d-2")})
		if err != nil {
			t.Fatal(err)
		}
		if res.Rows["tracks"] != 1 || res.Rows["signed_up"] != 1 {
			t.Fatalf("rows %v, want 1 new row per table", res.Rows)
		}
		for _, id := range []string{"d-1", "d-2"} {
			if n := count(t, "signed_up", id); n != 1 {
				t.Fatalf("%s stored %d times in signed_up", id, n)
			}
		}
	})

	t.Run("an id committed by another transaction after the probe: reloaded through the merge", func(t *testing.T) {
		ctx := t.Context()
		other, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close(context.Background())
		tx, err := other.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO "direct"."tracks" (id) VALUES ('d-3')`); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		var res Result
		go func() {
			var err error
			res, err = l.Load(ctx, schemaName, [][]byte{trackEvent("d-3")})
			done <- err
		}()
		// The loader's probe cannot see the uncommitted row, so its COPY waits for this transaction
		// (the only other session of this database is the loader's).
		deadline := time.Now().Add(20 * time.Second)
		for {
			var waiting int
			err := other.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
				AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`).Scan(&waiting)
			if err == nil && waiting > 0 {
				break
			}
			if time.Now().After(deadline) {
				rows, _ := other.Query(ctx, `SELECT coalesce(wait_event_type,''), coalesce(wait_event,''), state, left(query, 60) FROM pg_stat_activity WHERE datname = current_database()`)
				for rows.Next() {
					var a, b, c, d string
					_ = rows.Scan(&a, &b, &c, &d)
					t.Log(a, b, c, d)
				}
				t.Fatal("the loader's COPY never waited on the concurrent insert")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Load: %v", err)
		}
		if res.Rows["tracks"] != 0 || res.Rows["signed_up"] != 1 || res.Discards != 0 {
			t.Fatalf("result %+v, want tracks 0 (taken concurrently), signed_up 1, no discards", res)
		}
		if n := count(t, "tracks", "d-3"); n != 1 {
			t.Fatalf("d-3 stored %d times in tracks", n)
		}
		if n := count(t, "signed_up", "d-3"); n != 1 {
			t.Fatalf("d-3 stored %d times in signed_up", n)
		}
	})
}
