package dev

import (
	"errors"
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
)

// The flags `switchyard dev` and `switchyard ingest` share, registered and
// validated in one place so both commands accept and refuse the same
// values with the same messages.

// newFlagSet returns a flag set that reports errors to its caller instead
// of printing them; parseFlagSet prints the help.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlagSet parses args; -h prints the flags to stderr and returns
// flag.ErrHelp, and a positional argument is an error.
func parseFlagSet(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fmt.Fprintf(os.Stderr, "Usage: %s [flags]\n", fs.Name())
			fs.PrintDefaults()
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return nil
}

// validateListeners checks --data-dir, --http-addr and --grpc-addr.
func validateListeners(p *config.Problems, dataDir, httpAddr, grpcAddr string) {
	if strings.TrimSpace(dataDir) == "" {
		p.Addf("--data-dir must not be empty")
	}
	for _, a := range []struct{ name, addr string }{{"--http-addr", httpAddr}, {"--grpc-addr", grpcAddr}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			p.Addf("%s %q is not host:port: %v", a.name, a.addr, err)
		}
	}
	if httpAddr == grpcAddr && httpAddr != "" {
		p.Addf("--http-addr and --grpc-addr must differ")
	}
}

// addProcessFlags registers --log-level, --log-format and
// --shutdown-timeout.
func addProcessFlags(fs *flag.FlagSet, level, format *string, shutdown *time.Duration) {
	fs.StringVar(level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(format, "log-format", "text", "text or json")
	fs.DurationVar(shutdown, "shutdown-timeout", 20*time.Second, "how long a graceful shutdown may take")
}

// validateProcess checks the values of addProcessFlags.
func validateProcess(p *config.Problems, level, format string, shutdown time.Duration) {
	switch level {
	case "debug", "info", "warn", "error":
	default:
		p.Addf("--log-level %q must be debug, info, warn or error", level)
	}
	switch format {
	case "text", "json":
	default:
		p.Addf("--log-format %q must be text or json", format)
	}
	if shutdown <= 0 {
		p.Addf("--shutdown-timeout must be positive")
	}
}

// ingestFlags holds the Tracking API flags (--public-url,
// --trusted-proxies, --dedupe-window, --rate-limit, --geoip-db,
// --blocked-countries) until finish turns the lists into options.
type ingestFlags struct {
	opts             *ingestapp.Options
	trusted, blocked string
}

// addIngestFlags registers the Tracking API flags, which fill o.
func addIngestFlags(fs *flag.FlagSet, o *ingestapp.Options) *ingestFlags {
	f := &ingestFlags{opts: o}
	fs.StringVar(&o.PublicURL, "public-url", "", "address SDKs reach Switchyard at, returned as apiHost by /v1/projects/{writeKey}/settings (default: the request's own host)")
	fs.StringVar(&f.trusted, "trusted-proxies", "", "comma-separated IPs/CIDRs whose X-Forwarded-For sets the client IP")
	fs.DurationVar(&o.DedupeWindow, "dedupe-window", 24*time.Hour, "how long a messageId counts as seen")
	fs.Float64Var(&o.RateLimit, "rate-limit", 0, "per-source limit in events/s (0: none); over it the Tracking API answers 429")
	fs.StringVar(&o.GeoIPPath, "geoip-db", "", "MaxMind-format database; enables the sanctions policy (451)")
	fs.StringVar(&f.blocked, "blocked-countries", "CU,IR,SY,KP", "ISO codes refused when --geoip-db is set")
	return f
}

// finish parses --trusted-proxies and --blocked-countries into the
// options; call it after the flag set was parsed.
func (f *ingestFlags) finish() error {
	for _, t := range strings.Split(f.trusted, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(t)
		if err != nil {
			addr, aerr := netip.ParseAddr(t)
			if aerr != nil {
				return fmt.Errorf("--trusted-proxies: %q is not an IP or CIDR", t)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		f.opts.TrustedProxies = append(f.opts.TrustedProxies, pfx)
	}
	for _, b := range strings.Split(f.blocked, ",") {
		if b = strings.TrimSpace(b); b != "" {
			f.opts.BlockedCountries = append(f.opts.BlockedCountries, strings.ToUpper(b))
		}
	}
	return nil
}

// validateIngest checks the Tracking API options.
func validateIngest(p *config.Problems, o ingestapp.Options) {
	if o.DedupeWindow <= 0 {
		p.Addf("--dedupe-window must be positive")
	}
	if o.RateLimit < 0 {
		p.Addf("--rate-limit must not be negative")
	}
	if u := o.PublicURL; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			p.Addf("--public-url %q must be an http(s) URL such as https://events.example.com", u)
		}
	}
}
