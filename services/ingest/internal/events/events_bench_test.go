package events

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchyardhq/switchyard/services/ingest/internal/tracking"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
)

// BenchmarkPublish measures one 100-event batch stored in EVENTS (one
// pack) on an embedded JetStream, with and without the 24 h dedupe (its
// index on disk, fed by its consumer of EVENTS as in production). Report:
// ns/op per batch.
func BenchmarkPublish(b *testing.B) {
	for _, withDedupe := range []bool{false, true} {
		b.Run(fmt.Sprintf("dedupe=%v", withDedupe), func(b *testing.B) {
			_, conn := testenv.NATS(b)
			if err := streams.Ensure(b.Context(), conn.JS, streams.DefaultOptions); err != nil {
				b.Fatal(err)
			}
			p := &Publisher{JS: conn.JS}
			if withDedupe {
				dd, err := NewDedupe(b.Context(), conn.JS, DedupeOptions{Dir: b.TempDir()}, slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(b.Context())
				done := make(chan struct{})
				go func() { _ = dd.Run(ctx); close(done) }()
				b.Cleanup(func() { cancel(); <-done; _ = dd.Close() })
				for !dd.Filter().Warm() {
					time.Sleep(time.Millisecond)
				}
				p.Dedupe = dd
			}
			body := []byte(`{"type":"track","userId":"u","event":"E","properties":{"pad":"` + strings.Repeat("x", 330) + `"}}`)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				evs := make([]tracking.Event, 100)
				for j := range evs {
					evs[j] = tracking.Event{Type: "track", MessageID: fmt.Sprintf("b-%d-%d-%d", time.Now().UnixNano(), i, j), JSON: body}
				}
				if err := p.Publish(b.Context(), "ws", "src", evs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkParseBatch measures parsing and enriching a 100-event batch.
func BenchmarkParseBatch(b *testing.B) {
	item := `{"type":"track","userId":"u","event":"Order Completed","messageId":"m","properties":{"orderId":1,"total":42.5,"pad":"` + strings.Repeat("x", 250) + `"},"context":{"library":{"name":"x"}}}`
	items := make([]string, 100)
	for i := range items {
		items[i] = item
	}
	body := []byte(`{"batch":[` + strings.Join(items, ",") + `],"sentAt":"2026-01-01T00:00:00Z"}`)
	p := tracking.NewParser()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.ParseBatch(body, tracking.Meta{IP: "127.0.0.1"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}
