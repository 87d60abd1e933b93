package dev

import (
	"net"
	"net/url"
	"strings"
	"time"

	ingestapp "github.com/switchyardhq/switchyard/services/ingest/app"
	"github.com/switchyardhq/switchyard/services/internal/platform/config"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// IngestConfig is the configuration of `switchyard ingest`: the Ingest
// service alone, on an external NATS server, following a remote Catalog.
type IngestConfig struct {
	// NATSURL is the NATS server (with JetStream) the EVENTS stream lives
	// on; comma-separated URLs name several servers of one cluster.
	NATSURL string
	// CatalogAddr is the gRPC address of a process running Catalog.
	CatalogAddr string
	HTTPAddr    string
	GRPCAddr    string
	// DataDir holds the messageId index (<data-dir>/ingest-dedupe).
	DataDir   string
	LogLevel  string
	LogFormat string
	// SpanExporter, when set, receives every span (tests); the OTLP export
	// itself is configured by the standard OTEL_* environment variables.
	SpanExporter    sdktrace.SpanExporter
	ShutdownTimeout time.Duration
	// Ingest holds the Tracking API settings, as in `switchyard dev`.
	Ingest ingestapp.Options
}

// ParseIngestFlags parses `switchyard ingest` flags.
func ParseIngestFlags(args []string) (IngestConfig, error) {
	var c IngestConfig
	fs := newFlagSet("switchyard ingest")
	fs.StringVar(&c.NATSURL, "nats-url", "", "NATS server with JetStream, e.g. nats://127.0.0.1:4222 (required)")
	fs.StringVar(&c.CatalogAddr, "catalog-addr", "", "gRPC address of a process running Catalog, e.g. 127.0.0.1:9090 for a switchyard dev process (required)")
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8081", "HTTP listener: Tracking API, the event debugger's REST route, health, metrics")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", "127.0.0.1:9091", "gRPC listener: IngestService, health")
	fs.StringVar(&c.DataDir, "data-dir", ".switchyard-ingest", "directory for the messageId index")
	addProcessFlags(fs, &c.LogLevel, &c.LogFormat, &c.ShutdownTimeout)
	ingest := addIngestFlags(fs, &c.Ingest)
	if err := parseFlagSet(fs, args); err != nil {
		return c, err
	}
	if err := ingest.finish(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate reports every problem of the configuration at once.
func (c IngestConfig) Validate() error {
	var p config.Problems
	if strings.TrimSpace(c.NATSURL) == "" {
		p.Addf("--nats-url is required: the NATS server (with JetStream) to publish events to, e.g. nats://127.0.0.1:4222")
	} else {
		for _, u := range strings.Split(c.NATSURL, ",") {
			if problem := checkNATSURL(strings.TrimSpace(u)); problem != "" {
				p.Addf("--nats-url %q: %s", u, problem)
			}
		}
	}
	if strings.TrimSpace(c.CatalogAddr) == "" {
		p.Addf("--catalog-addr is required: the gRPC address of a process running Catalog, e.g. 127.0.0.1:9090 (a `switchyard dev`)")
	} else if !strings.Contains(c.CatalogAddr, ":///") {
		// Anything but a gRPC target with a resolver (dns:///…) is host:port.
		if _, _, err := net.SplitHostPort(c.CatalogAddr); err != nil {
			p.Addf("--catalog-addr %q is not host:port: %v", c.CatalogAddr, err)
		}
	}
	validateListeners(&p, c.DataDir, c.HTTPAddr, c.GRPCAddr)
	validateProcess(&p, c.LogLevel, c.LogFormat, c.ShutdownTimeout)
	validateIngest(&p, c.Ingest)
	return p.Err()
}

// checkNATSURL returns what is wrong with one server URL of --nats-url,
// or "".
func checkNATSURL(s string) string {
	if s == "" {
		return "empty server URL"
	}
	if !strings.Contains(s, "://") {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return "not a URL such as nats://host:4222 nor host:port"
		}
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return err.Error()
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return "scheme must be nats, tls, ws or wss"
	}
	if u.Host == "" {
		return "no host"
	}
	return ""
}
