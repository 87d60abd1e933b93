package loader

import (
	"fmt"
	"testing"

	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
)

func benchEvent(i int) []byte {
	return fmt.Appendf(nil, `{"type":"track","messageId":"%s-%08d","userId":"u-%d","anonymousId":"a-%d","event":"Order Completed",`+
		`"receivedAt":"2024-05-01T10:00:00.000Z","sentAt":"2024-05-01T10:00:00.000Z","timestamp":"2024-05-01T10:00:00.000Z",`+
		`"properties":{"orderId":"o-%d","total":%d.5,"revenue":%d,"currency":"EUR","coupon":"SAVE10","discount":2,"shipping":4.99,"tags":["a","b"]},`+
		`"context":{"ip":"203.0.113.9","library":{"name":"analytics-node","version":"2.1.0"},"page":{"path":"/checkout","url":"https://example.com/checkout"}}}`,
		"bench", i, i%1000, i, i, i%500, i)
}

func BenchmarkProfPG(b *testing.B) {
	e, err := sqlengine.OpenPostgres(testenv.Postgres(b))
	if err != nil {
		b.Fatal(err)
	}
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

func BenchmarkProfBuild(b *testing.B) {
	e, err := sqlengine.OpenDuckDB(b.TempDir() + "/x.duckdb")
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	l := New(e, nil)
	evs := make([][]byte, 1000)
	for i := range evs {
		evs[i] = benchEvent(i)
	}
	for b.Loop() {
		l.buildRows("x", evs, l.now(), &Result{Rows: map[string]int64{}})
	}
}
