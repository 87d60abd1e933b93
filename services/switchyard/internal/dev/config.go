// Package dev runs every Switchyard service in one process: the runtime
// contract of `switchyard dev` (DESIGN.md "Runtime contract").
package dev

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
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
	fs := flag.NewFlagSet("switchyard dev", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.DataDir, "data-dir", ".switchyard", "directory for JetStream, the DuckDB warehouse and bootstrap.json")
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8080", "HTTP listener: Tracking API, REST API, console, health, metrics")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", "127.0.0.1:9090", "gRPC listener")
	fs.StringVar(&c.NATSURL, "nats-url", "", "use this NATS server instead of the embedded one")
	fs.StringVar(&c.NATSAddr, "nats-addr", "", "let the embedded NATS server listen on this TCP address (default: in-process only)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long a graceful shutdown may take")
	var trusted, blocked string
	fs.StringVar(&c.Ingest.PublicURL, "public-url", "", "address SDKs reach Switchyard at, returned as apiHost by /v1/projects/{writeKey}/settings (default: the request's own host)")
	fs.StringVar(&trusted, "trusted-proxies", "", "comma-separated IPs/CIDRs whose X-Forwarded-For sets the client IP")
	fs.DurationVar(&c.Ingest.DedupeWindow, "dedupe-window", 24*time.Hour, "how long a messageId counts as seen")
	fs.Float64Var(&c.Ingest.RateLimit, "rate-limit", 0, "per-source limit in events/s (0: none); over it the Tracking API answers 429")
	fs.StringVar(&c.Ingest.GeoIPPath, "geoip-db", "", "MaxMind-format database; enables the sanctions policy (451)")
	fs.StringVar(&blocked, "blocked-countries", "CU,IR,SY,KP", "ISO codes refused when --geoip-db is set")
	fs.StringVar(&c.SMTPAddr, "smtp-addr", "", "SMTP server (host:port) for lifecycle emails; empty: emails are only logged")
	fs.StringVar(&c.SMTPFrom, "smtp-from", "switchyard@localhost", "sender address of lifecycle emails")
	fs.StringVar(&c.SMTPUser, "smtp-user", "", "SMTP username (password: SWITCHYARD_SMTP_PASSWORD)")
	fs.DurationVar(&c.LifecycleInterval, "lifecycle-interval", time.Minute, "time between source lifecycle sweeps (0: off)")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fs.SetOutput(os.Stderr)
			fmt.Fprintln(os.Stderr, "Usage: switchyard dev [flags]")
			fs.PrintDefaults()
		}
		return c, err
	}
	for _, t := range strings.Split(trusted, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(t)
		if err != nil {
			addr, aerr := netip.ParseAddr(t)
			if aerr != nil {
				return c, fmt.Errorf("--trusted-proxies: %q is not an IP or CIDR", t)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		c.Ingest.TrustedProxies = append(c.Ingest.TrustedProxies, pfx)
	}
	for _, b := range strings.Split(blocked, ",") {
		if b = strings.TrimSpace(b); b != "" {
			c.Ingest.BlockedCountries = append(c.Ingest.BlockedCountries, strings.ToUpper(b))
		}
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	c.AdminToken = getenv("SWITCHYARD_ADMIN_TOKEN")
	c.WriteKey = getenv("SWITCHYARD_DEV_WRITE_KEY")
	c.SMTPPassword = getenv("SWITCHYARD_SMTP_PASSWORD")
	return c, c.Validate()
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var p config.Problems
	if strings.TrimSpace(c.DataDir) == "" {
		p.Addf("--data-dir must not be empty")
	}
	for name, addr := range map[string]string{"--http-addr": c.HTTPAddr, "--grpc-addr": c.GRPCAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			p.Addf("%s %q is not host:port: %v", name, addr, err)
		}
	}
	if c.HTTPAddr == c.GRPCAddr && c.HTTPAddr != "" {
		p.Addf("--http-addr and --grpc-addr must differ")
	}
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
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		p.Addf("--log-level %q must be debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		p.Addf("--log-format %q must be text or json", c.LogFormat)
	}
	if c.Ingest.DedupeWindow <= 0 {
		p.Addf("--dedupe-window must be positive")
	}
	if c.Ingest.RateLimit < 0 {
		p.Addf("--rate-limit must not be negative")
	}
	if u := c.Ingest.PublicURL; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			p.Addf("--public-url %q must be an http(s) URL such as https://events.example.com", u)
		}
	}
	if c.SMTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.SMTPAddr); err != nil {
			p.Addf("--smtp-addr %q is not host:port: %v", c.SMTPAddr, err)
		}
	}
	if c.LifecycleInterval < 0 {
		p.Addf("--lifecycle-interval must not be negative")
	}
	if c.ShutdownTimeout <= 0 {
		p.Addf("--shutdown-timeout must be positive")
	}
	return p.Err()
}
