package diff_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/diff"
)

// benchRows is the model size of BenchmarkDiffMillion.
const benchRows = 1_000_000

// BenchmarkDiffMillion diffs a 1,000,000-row model in which 1% of the rows
// changed since the last run (0.5% updated, 0.25% added, 0.25% deleted),
// on each engine, and reports the time of one run (extract, every change
// paged out and JSON-encoded as a RETL record would be, commit) and the
// peak Go heap during it. Run it with `make bench-retl`.
func BenchmarkDiffMillion(b *testing.B) {
	for _, name := range []string{"duckdb", "postgres"} {
		b.Run(name, func(b *testing.B) {
			var e sqlengine.Engine
			var err error
			if name == "duckdb" {
				e, err = sqlengine.OpenDuckDB(filepath.Join(b.TempDir(), "bench.duckdb"))
			} else {
				e, err = sqlengine.OpenPostgres(testenv.Postgres(b))
			}
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			benchEngine(b, name, e)
		})
	}
}

func benchEngine(b *testing.B, name string, e sqlengine.Engine) {
	ctx := b.Context()
	db := e.DB()
	gen := "range(0, %d) t(i)"
	if name == "postgres" {
		gen = "generate_series(0, %d - 1) t(i)"
	}
	gen = fmt.Sprintf(gen, benchRows)
	exec := func(q string) {
		b.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE SCHEMA IF NOT EXISTS app")
	exec("CREATE TABLE app.users AS SELECT CAST(i AS BIGINT) AS id, 'user' || CAST(i AS VARCHAR) || '@example.com' AS email, CASE WHEN i % 3 = 0 THEN 'pro' ELSE 'free' END AS plan, CAST(i % 1000 AS BIGINT) AS score, 'Name ' || CAST(i AS VARCHAR) AS name FROM " + gen)
	d, err := diff.New(e)
	if err != nil {
		b.Fatal(err)
	}
	job := diff.Job{SyncID: "bench", Query: "SELECT id, email, plan, score, name FROM app.users", UniqueKey: "id", Now: time.Now()}
	// First run: every row is added; record the state without sending.
	if _, err := d.Extract(ctx, job); err != nil {
		b.Fatal(err)
	}
	if err := d.Commit(ctx, job); err != nil {
		b.Fatal(err)
	}
	// 1% changed: 5,000 updated, 2,500 deleted, 2,500 added.
	exec("UPDATE app.users SET plan = 'enterprise' WHERE id % 200 = 7")
	exec("DELETE FROM app.users WHERE id % 400 = 11")
	exec(fmt.Sprintf("INSERT INTO app.users SELECT %d + i, 'new' || CAST(i AS VARCHAR) || '@example.com', 'free', 0, 'New' FROM %s WHERE i < 2500", benchRows, gen))
	runtime.GC()

	job.Selection = []diff.Op{diff.Added, diff.Updated, diff.Deleted}
	var peak atomic.Uint64
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	b.ResetTimer()
	start := time.Now()
	ext, err := d.Extract(ctx, job)
	if err != nil {
		b.Fatal(err)
	}
	var sent, bytes int64
	err = d.Pages(ctx, job, ext, func(page []diff.Change) error {
		for _, c := range page {
			fields := make(map[string]any, len(ext.Columns))
			for i, col := range ext.Columns {
				fields[col] = c.Values[i]
			}
			data, err := json.Marshal(map[string]any{"recordId": c.RecordID, "operation": c.Op, "fields": fields})
			if err != nil {
				return err
			}
			sent++
			bytes += int64(len(data))
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Commit(ctx, job); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	wg.Wait()
	if ext.Added != 2500 || ext.Updated != 5000 || ext.Deleted != 2500 || sent != 10000 {
		b.Fatalf("changes (added, updated, deleted, sent) = (%d, %d, %d, %d), want (2500, 5000, 2500, 10000)", ext.Added, ext.Updated, ext.Deleted, sent)
	}
	peakMB := float64(peak.Load()) / (1 << 20)
	b.ReportMetric(elapsed.Seconds(), "s/diff")
	b.ReportMetric(peakMB, "peak-heap-MB")
	fmt.Printf("bench-retl %s: %d-row model, %d changes (added %d, updated %d, deleted %d), %d records encoded (%d bytes): %.2f s, peak Go heap %.1f MB (heap before the run %.1f MB)\n",
		name, benchRows, ext.Added+ext.Updated+ext.Deleted, ext.Added, ext.Updated, ext.Deleted, sent, bytes, elapsed.Seconds(), peakMB, float64(base.HeapAlloc)/(1<<20))
}
