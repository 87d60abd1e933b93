package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Setup installs global providers, so these tests do not run in parallel.

func TestSetup(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{name: "service name required", wantErr: true},
		{name: "in-memory exporter", opts: Options{ServiceName: "test-svc"}},
		{name: "OTLP endpoint does not dial at setup", opts: Options{ServiceName: "test-svc", OTLPEndpoint: "127.0.0.1:1"}},
		{name: "OTLP endpoint URL", opts: Options{ServiceName: "test-svc", OTLPEndpoint: "http://127.0.0.1:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tt.opts.SpanExporter = exp
			tel, err := Setup(t.Context(), tt.opts)
			if tt.wantErr {
				if err == nil {
					t.Fatal("Setup succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}

			_, span := otel.Tracer("test").Start(t.Context(), "work")
			span.End()
			if spans := exp.GetSpans(); len(spans) != 1 || spans[0].Name != "work" {
				t.Errorf("exported spans = %v, want one named work", spans)
			}

			counter, err := otel.Meter("test").Int64Counter("switchyard_test_events")
			if err != nil {
				t.Fatal(err)
			}
			counter.Add(t.Context(), 3)
			rec := httptest.NewRecorder()
			tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
			body := rec.Body.String()
			for _, want := range []string{"switchyard_test_events_total", "go_goroutines", `service_name="test-svc"`} {
				if !strings.Contains(body, want) {
					t.Errorf("metrics output lacks %q", want)
				}
			}

			// The propagator carries both trace context and baggage.
			m, _ := baggage.NewMember("k", "v")
			b, _ := baggage.New(m)
			ctx, span := otel.Tracer("test").Start(baggage.ContextWithBaggage(t.Context(), b), "outer")
			carrier := propagation.MapCarrier{}
			otel.GetTextMapPropagator().Inject(ctx, carrier)
			span.End()
			if carrier.Get("traceparent") == "" || carrier.Get("baggage") == "" {
				t.Errorf("propagated headers = %v, want traceparent and baggage", carrier)
			}

			// Nothing listens at the OTLP endpoint: bound the final flush.
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			if err := tel.Shutdown(ctx); err != nil && tt.opts.OTLPEndpoint == "" {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}
