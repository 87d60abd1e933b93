package loader

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
)

// benchEvent is the i-th benchmark event of cmd/benchwarehouse: a track call with eight
// properties and a context (2 rows: tracks and order_completed).
func benchEvent(i int) []byte {
	return fmt.Appendf(nil, `{"type":"track","messageId":"bench-%08d","userId":"u-%d","anonymousId":"a-%d","event":"Order Completed",`+
		`"receivedAt":"2024-05-01T10:00:00.000Z","sentAt":"2024-05-01T10:00:00.000Z","timestamp":"2024-05-01T10:00:00.000Z",`+
		`"properties":{"orderId":"o-%d","total":%d.5,"revenue":%d,"currency":"EUR","coupon":"SAVE10","discount":2,"shipping":4.99,"tags":["a","b"]},`+
		`"context":{"ip":"203.0.113.9","library":{"name":"analytics-node","version":"2.1.0"},"page":{"path":"/checkout","url":"https://example.com/checkout"}}}`,
		i, i%1000, i, i, i%500, i)
}

// benchLoad loads batches of 1000 new events per iteration (go test -bench Load -cpuprofile …).
func benchLoad(b *testing.B, e sqlengine.Engine) {
	defer e.Close()
	l := New(e, nil)
	n := 0
	for b.Loop() {
		evs := make([][]byte, 1000)
		for i := range evs {
			evs[i] = benchEvent(n)
			n++
		}
		if _, err := l.Load(b.Context(), "bench", evs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadDuckDB loads batches of 1000 track events into DuckDB (2 rows per event).
func BenchmarkLoadDuckDB(b *testing.B) {
	e, err := sqlengine.OpenDuckDB(filepath.Join(b.TempDir(), "b.duckdb"))
	if err != nil {
		b.Fatal(err)
	}
	benchLoad(b, e)
}

// BenchmarkLoadPostgres loads batches of 1000 track events into the machine's PostgreSQL.
func BenchmarkLoadPostgres(b *testing.B) {
	e, err := sqlengine.OpenPostgres(testenv.Postgres(b))
	if err != nil {
		b.Fatal(err)
	}
	benchLoad(b, e)
}

// BenchmarkBuildRows measures the CPU part of a load alone: parsing and flattening 1000 events
// (prepare without copy plans).
func BenchmarkBuildRows(b *testing.B) {
	evs := make([][]byte, 1000)
	for i := range evs {
		evs[i] = benchEvent(i)
	}
	l := &Loader{logger: slog.New(slog.DiscardHandler)}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		l.prepare(evs, 0, now, target{}, runtime.GOMAXPROCS(0))
	}
}

// BenchmarkLoadIdentifiesDuckDB loads batches of 1000 identify calls of 100 users into DuckDB
// (identifies rows, and users upserted with the latest traits).
func BenchmarkLoadIdentifiesDuckDB(b *testing.B) {
	e, err := sqlengine.OpenDuckDB(filepath.Join(b.TempDir(), "b.duckdb"))
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	l := New(e, nil)
	n := 0
	for b.Loop() {
		evs := make([][]byte, 1000)
		for i := range evs {
			evs[i] = fmt.Appendf(nil, `{"type":"identify","messageId":"id-%08d","userId":"u-%d","receivedAt":"2024-05-01T10:00:00.000Z","traits":{"plan":"p%d","seats":%d,"email":"u%d@example.com"}}`,
				n, n%100, n%7, n%50, n%100)
			n++
		}
		if _, err := l.Load(b.Context(), "bench", evs); err != nil {
			b.Fatal(err)
		}
	}
}
