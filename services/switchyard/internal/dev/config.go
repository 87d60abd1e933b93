// Package dev runs every Switchyard service in one process: the runtime
// contract of `switchyard dev` (DESIGN.md "Runtime contract").
package dev

import (
	"net"
	"time"

	ingestapp "github.com/switchyardhq/switchyard/services/ingest/app"
	"github.com/switchyardhq/switchyard/services/internal/platform/config"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Config is the dev-mode configuration.
type Config struct {
	DataDir  string
	HTTPAddr string
	GRPCAddr string
	// NATSURL, when set, replaces the embedded NATS server.
	NATSURL string
	// NATSAddr, when set, makes the embedded server listen on TCP too.
	NATSAddr string
	// AdminToken and WriteKey fix the bootstrap secrets (first start only).
	AdminToken string
	WriteKey   string
	LogLevel   string
	LogFormat  string
	// SpanExporter, when set, receives every span (tests); the OTLP export
	// itself is configured by the standard OTEL_* environment variables.
	SpanExporter    sdktrace.SpanExporter
	ShutdownTimeout time.Duration
	// Ingest holds the Tracking API settings (--public-url,
	// --trusted-proxies, --dedupe-window, --rate-limit, --geoip-db,
	// --blocked-countries).
	Ingest ingestapp.Options
	// SMTPAddr, SMTPFrom, SMTPUser and SMTPPassword configure the catalog's
	// lifecycle emails (not sent when SMTPAddr is empty).
	SMTPAddr, SMTPFrom, SMTPUser, SMTPPassword string
	// LifecycleInterval is the time between source lifecycle sweeps; 0 turns
	// the lifecycle off.
	LifecycleInterval time.Duration
}

// ParseFlags parses `switchyard dev` flags; getenv supplies the environment.
func ParseFlags(args []string, getenv func(string) string) (Config, error) {
	var c Config
	fs := newFlagSet("switchyard dev")
	fs.StringVar(&c.DataDir, "data-dir", ".switchyard", "directory for JetStream, the DuckDB warehouse and bootstrap.json")
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8080", "HTTP listener: Tracking API, REST API, console, health, metrics")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", "127.0.0.1:9090", "gRPC listener")
	fs.StringVar(&c.NATSURL, "nats-url", "", "use this NATS server instead of the embedded one")
	fs.StringVar(&c.NATSAddr, "nats-addr", "", "let the embedded NATS server listen on this TCP address (default: in-process only)")
	addProcessFlags(fs, &c.LogLevel, &c.LogFormat, &c.ShutdownTimeout)
	ingest := addIngestFlags(fs, &c.Ingest)
	fs.StringVar(&c.SMTPAddr, "smtp-addr", "", "SMTP server (host:port) for lifecycle emails; empty: emails are only logged")
	fs.StringVar(&c.SMTPFrom, "smtp-from", "switchyard@localhost", "sender address of lifecycle emails")
	fs.StringVar(&c.SMTPUser, "smtp-user", "", "SMTP username (password: SWITCHYARD_SMTP_PASSWORD)")
	fs.DurationVar(&c.LifecycleInterval, "lifecycle-interval", time.Minute, "time between source lifecycle sweeps (0: off)")
	if err := parseFlagSet(fs, args); err != nil {
		return c, err
	}
	if err := ingest.finish(); err != nil {
		return c, err
	}
	c.AdminToken = getenv("SWITCHYARD_ADMIN_TOKEN")
	c.WriteKey = getenv("SWITCHYARD_DEV_WRITE_KEY")
	c.SMTPPassword = getenv("SWITCHYARD_SMTP_PASSWORD")
	return c, c.Validate()
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var p config.Problems
	validateListeners(&p, c.DataDir, c.HTTPAddr, c.GRPCAddr)
	if c.NATSAddr != "" {
		if _, _, err := net.SplitHostPort(c.NATSAddr); err != nil {
			p.Addf("--nats-addr %q is not host:port: %v", c.NATSAddr, err)
		}
		if c.NATSURL != "" {
			p.Addf("--nats-addr configures the embedded server; it cannot be combined with --nats-url")
		}
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		p.Addf("SWITCHYARD_ADMIN_TOKEN must be at least 16 characters")
	}
	if c.WriteKey != "" && len(c.WriteKey) < 8 {
		p.Addf("SWITCHYARD_DEV_WRITE_KEY must be at least 8 characters")
	}
	validateProcess(&p, c.LogLevel, c.LogFormat, c.ShutdownTimeout)
	validateIngest(&p, c.Ingest)
	if c.SMTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.SMTPAddr); err != nil {
			p.Addf("--smtp-addr %q is not host:port: %v", c.SMTPAddr, err)
		}
	}
	if c.LifecycleInterval < 0 {
		p.Addf("--lifecycle-interval must not be negative")
	}
	return p.Err()
}
