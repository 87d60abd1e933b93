package loader

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
)

// BenchmarkLoadDuckDB loads batches of 1000 track events into DuckDB (2 rows per event).
func BenchmarkLoadDuckDB(b *testing.B) {
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
			evs[i] = fmt.Appendf(nil, `{"type":"track","messageId":"m-%d","userId":"u","event":"Order Completed","receivedAt":"2024-05-01T10:00:00Z","properties":{"orderId":"o-1","total":1.5,"revenue":3,"currency":"EUR","tags":["a"]},"context":{"ip":"1.2.3.4","library":{"name":"x","version":"1"}}}`, n)
			n++
		}
		if _, err := l.Load(b.Context(), "bench", evs); err != nil {
			b.Fatal(err)
		}
	}
}
