// Package dev runs every Switchyard service in one process: the runtime
// contract of `switchyard dev` (DESIGN.md "Runtime contract").
package dev

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/switchyardhq/switchyard/services/internal/platform/config"
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
	// OTLPEndpoint exports traces over OTLP/gRPC when set.
	OTLPEndpoint    string
	ShutdownTimeout time.Duration
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
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fs.SetOutput(os.Stderr)
			fmt.Fprintln(os.Stderr, "Usage: switchyard dev [flags]")
			fs.PrintDefaults()
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	c.AdminToken = getenv("SWITCHYARD_ADMIN_TOKEN")
	c.WriteKey = getenv("SWITCHYARD_DEV_WRITE_KEY")
	c.OTLPEndpoint = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
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
	if c.ShutdownTimeout <= 0 {
		p.Addf("--shutdown-timeout must be positive")
	}
	return p.Err()
}
