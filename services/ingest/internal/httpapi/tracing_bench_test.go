package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"github.com/switchyardhq/switchyard/services/ingest/internal/events"
	"github.com/switchyardhq/switchyard/services/ingest/internal/httpapi"
	"github.com/switchyardhq/switchyard/services/ingest/internal/tracking"
	"github.com/switchyardhq/switchyard/services/internal/platform/logging"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// BenchmarkTracingOverhead measures the Tracking API path (HTTP handler
// with its otelhttp server span, parse, publish to a real embedded
// JetStream with its producer span) with tracing on (every trace sampled,
// spans batched to an exporter that drops them) and off (no-op provider).
// The goal is on/off ≥ 0.9 in events/s; compare the two
// sub-benchmarks' events/s (make bench-tracing prints the ratio).
func BenchmarkTracingOverhead(b *testing.B) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	for _, mode := range []struct {
		name     string
		provider func() (trace.TracerProvider, func())
	}{
		{"off", func() (trace.TracerProvider, func()) { return noop.NewTracerProvider(), func() {} }},
		{"on", func() (trace.TracerProvider, func()) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			return tp, func() { _ = tp.Shutdown(b.Context()) }
		}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			tp, stop := mode.provider()
			defer stop()
			otel.SetTracerProvider(tp)
			_, conn := testenv.NATS(b)
			if err := streams.Ensure(b.Context(), conn.JS, streams.DefaultOptions); err != nil {
				b.Fatal(err)
			}
			keys := &httpapi.Keys{}
			keys.Update([]*catalogv1.ConfigSnapshot{{Sources: []*catalogv1.Source{{Id: "src", WorkspaceId: "ws", Enabled: true, WriteKeys: []string{"wk"}}}}})
			h := &httpapi.Handler{Keys: keys, Parser: tracking.NewParser(), Publisher: &events.Publisher{JS: conn.JS}, Logger: logging.Discard()}
			srv := otelhttp.NewHandler(httpapi.Instrument(h), "ingest")

			var seq atomic.Int64
			item := `{"type":"track","userId":"user-%d","event":"Product Viewed","messageId":"m-%d","properties":{"sku":"G-32","price":19.99,"name":"Monopoly: 3rd Edition","category":"Games"},"context":{"library":{"name":"bench"}}}`
			body := func() string {
				var sb strings.Builder
				sb.WriteString(`{"batch":[`)
				for i := range 100 {
					if i > 0 {
						sb.WriteByte(',')
					}
					n := seq.Add(1)
					fmt.Fprintf(&sb, item, n, n)
				}
				sb.WriteString(`]}`)
				return sb.String()
			}
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/v1/batch", strings.NewReader(body()))
				req.SetBasicAuth("wk", "")
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
			b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
