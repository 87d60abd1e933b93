// Package telemetry sets up OpenTelemetry for a Switchyard process: the
// global tracer provider (exported over OTLP gRPC when configured), the
// W3C TraceContext+Baggage propagator, and a meter provider read by a
// Prometheus exporter on a private registry served at /metrics.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Options configures Setup.
type Options struct {
	// ServiceName is the service.name resource attribute.
	ServiceName string
	// OTLPEndpoint is the OTLP gRPC collector (host:port, or a URL such as
	// http://collector:4317); "" exports no spans. The connection is
	// insecure and lazy: Setup does not reach the network.
	OTLPEndpoint string
	// SpanExporter, when set, receives every span synchronously as it ends
	// (e.g. tracetest.InMemoryExporter, so tests can assert spans). It is
	// used in addition to OTLPEndpoint.
	SpanExporter sdktrace.SpanExporter
}

// Telemetry owns the providers Setup installed globally.
type Telemetry struct {
	// TracerProvider is the global tracer provider.
	TracerProvider *sdktrace.TracerProvider
	// MeterProvider is the global meter provider.
	MeterProvider *sdkmetric.MeterProvider
	// Registry holds the OpenTelemetry metrics plus Go runtime and process
	// collectors; services may register their own Prometheus collectors.
	Registry *prometheus.Registry
}

// Setup installs the global tracer provider (always-on sampler), the
// global TraceContext+Baggage propagator and the global meter provider.
// Call Shutdown on exit to flush spans.
func Setup(ctx context.Context, opts Options) (*Telemetry, error) {
	if opts.ServiceName == "" {
		return nil, errors.New("telemetry: ServiceName is required")
	}
	res, err := resource.New(ctx,
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", opts.ServiceName)),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}

	tpOpts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
	}
	if opts.OTLPEndpoint != "" {
		endpoint := otlptracegrpc.WithEndpoint(opts.OTLPEndpoint)
		if strings.Contains(opts.OTLPEndpoint, "://") {
			endpoint = otlptracegrpc.WithEndpointURL(opts.OTLPEndpoint)
		}
		exp, err := otlptracegrpc.New(ctx, endpoint, otlptracegrpc.WithInsecure())
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP exporter for %s: %w", opts.OTLPEndpoint, err)
		}
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
	}
	if opts.SpanExporter != nil {
		tpOpts = append(tpOpts, sdktrace.WithSyncer(opts.SpanExporter))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)

	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("telemetry: register Go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("telemetry: register process collector: %w", err)
	}
	promExp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		_ = tp.Shutdown(ctx)
		return nil, fmt.Errorf("telemetry: Prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(promExp))

	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return &Telemetry{TracerProvider: tp, MeterProvider: mp, Registry: reg}, nil
}

// MetricsHandler serves the registry in the Prometheus text format.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.Registry, promhttp.HandlerOpts{Registry: t.Registry})
}

// Shutdown flushes and stops the tracer and meter providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	return errors.Join(t.TracerProvider.Shutdown(ctx), t.MeterProvider.Shutdown(ctx))
}
