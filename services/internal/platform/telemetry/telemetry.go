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
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
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
	// http://collector:4317); "" exports no spans unless FromEnv finds an
	// endpoint. The connection is insecure and lazy: Setup does not reach
	// the network.
	OTLPEndpoint string
	// FromEnv configures the span export from the standard OpenTelemetry
	// environment variables when OTLPEndpoint is empty: spans are exported
	// when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
	// is set and OTEL_TRACES_EXPORTER is not "none", over gRPC or, with
	// OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, over HTTP; the exporter
	// reads the endpoint, headers, TLS and timeout variables itself.
	FromEnv bool
	// Getenv reads the environment (nil: os.Getenv).
	Getenv func(string) string
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

// Setup installs the global tracer provider (sampler from
// OTEL_TRACES_SAMPLER, default parent-based always-on), the
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

	// No WithSampler: the SDK then honours OTEL_TRACES_SAMPLER and
	// OTEL_TRACES_SAMPLER_ARG, defaulting to parentbased_always_on.
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if opts.OTLPEndpoint == "" && opts.FromEnv {
		exp, err := exporterFromEnv(ctx, getenv)
		if err != nil {
			return nil, err
		}
		if exp != nil {
			tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
		}
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

// exporterFromEnv builds the OTLP span exporter the standard environment
// variables ask for, or nil when they ask for none.
func exporterFromEnv(ctx context.Context, getenv func(string) string) (sdktrace.SpanExporter, error) {
	if strings.EqualFold(getenv("OTEL_TRACES_EXPORTER"), "none") {
		return nil, nil
	}
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch protocol {
	case "", "grpc":
		exp, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP/gRPC exporter: %w", err)
		}
		return exp, nil
	case "http/protobuf":
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP/HTTP exporter: %w", err)
		}
		return exp, nil
	}
	return nil, fmt.Errorf("telemetry: OTEL_EXPORTER_OTLP_PROTOCOL %q is not supported (use grpc or http/protobuf)", protocol)
}

// MetricsHandler serves the registry in the Prometheus text format.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.Registry, promhttp.HandlerOpts{Registry: t.Registry})
}

// Shutdown flushes and stops the tracer and meter providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	return errors.Join(t.TracerProvider.Shutdown(ctx), t.MeterProvider.Shutdown(ctx))
}
