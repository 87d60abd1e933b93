package dev

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseIngestFlags(t *testing.T) {
	t.Parallel()
	required := []string{"--nats-url", "nats://127.0.0.1:4222", "--catalog-addr", "127.0.0.1:9090"}
	tests := []struct {
		name    string
		args    []string
		wantErr []string // substrings that must all appear
		check   func(t *testing.T, c IngestConfig)
	}{
		{
			name: "defaults sit beside a dev process's ports",
			args: required,
			check: func(t *testing.T, c IngestConfig) {
				if c.HTTPAddr != "127.0.0.1:8081" || c.GRPCAddr != "127.0.0.1:9091" || c.DataDir != ".switchyard-ingest" ||
					c.LogLevel != "info" || c.LogFormat != "text" || c.ShutdownTimeout != 20*time.Second {
					t.Errorf("defaults = %+v", c)
				}
				if c.Ingest.DedupeWindow != 24*time.Hour || !slices.Equal(c.Ingest.BlockedCountries, []string{"CU", "IR", "SY", "KP"}) {
					t.Errorf("ingest defaults = %+v", c.Ingest)
				}
				if c.NATSURL != "nats://127.0.0.1:4222" || c.CatalogAddr != "127.0.0.1:9090" {
					t.Errorf("required flags = %q %q", c.NATSURL, c.CatalogAddr)
				}
			},
		},
		{
			name: "the Tracking API flags are dev's",
			args: append([]string{"--trusted-proxies", "10.0.0.0/8, 192.168.1.1", "--blocked-countries", "ru,by", "--dedupe-window", "1h",
				"--rate-limit", "50", "--public-url", "https://events.example.com", "--data-dir", "/tmp/i",
				"--http-addr", "127.0.0.1:1", "--grpc-addr", "127.0.0.1:2", "--log-format", "json"}, required...),
			check: func(t *testing.T, c IngestConfig) {
				want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.1/32")}
				if !slices.Equal(c.Ingest.TrustedProxies, want) {
					t.Errorf("trusted proxies = %v, want %v", c.Ingest.TrustedProxies, want)
				}
				if !slices.Equal(c.Ingest.BlockedCountries, []string{"RU", "BY"}) || c.Ingest.DedupeWindow != time.Hour ||
					c.Ingest.RateLimit != 50 || c.Ingest.PublicURL != "https://events.example.com" {
					t.Errorf("ingest options = %+v", c.Ingest)
				}
				if c.DataDir != "/tmp/i" || c.HTTPAddr != "127.0.0.1:1" || c.GRPCAddr != "127.0.0.1:2" || c.LogFormat != "json" {
					t.Errorf("parsed = %+v", c)
				}
			},
		},
		{
			name: "a cluster's URLs and a resolver target are accepted",
			args: []string{"--nats-url", "nats://a:4222,nats://b:4222, c:4222", "--catalog-addr", "dns:///catalog.internal:9090"},
			check: func(t *testing.T, c IngestConfig) {
				if c.NATSURL != "nats://a:4222,nats://b:4222, c:4222" || c.CatalogAddr != "dns:///catalog.internal:9090" {
					t.Errorf("parsed = %q %q", c.NATSURL, c.CatalogAddr)
				}
			},
		},
		{name: "missing --nats-url", args: []string{"--catalog-addr", "127.0.0.1:9090"}, wantErr: []string{"--nats-url is required"}},
		{name: "missing --catalog-addr", args: []string{"--nats-url", "nats://127.0.0.1:4222"}, wantErr: []string{"--catalog-addr is required"}},
		{name: "both missing are reported at once", wantErr: []string{"--nats-url is required", "--catalog-addr is required"}},
		{name: "NATS URL with a foreign scheme", args: []string{"--nats-url", "http://127.0.0.1:4222", "--catalog-addr", "127.0.0.1:9090"},
			wantErr: []string{`--nats-url "http://127.0.0.1:4222": scheme must be nats, tls, ws or wss`}},
		{name: "NATS URL without a port", args: []string{"--nats-url", "localhost", "--catalog-addr", "127.0.0.1:9090"},
			wantErr: []string{`--nats-url "localhost"`}},
		{name: "catalog address without a port", args: []string{"--nats-url", "nats://127.0.0.1:4222", "--catalog-addr", "catalog"},
			wantErr: []string{`--catalog-addr "catalog" is not host:port`}},
		{name: "same listener twice", args: append([]string{"--http-addr", "127.0.0.1:1", "--grpc-addr", "127.0.0.1:1"}, required...),
			wantErr: []string{"--http-addr and --grpc-addr must differ"}},
		{
			name:    "every problem of the shared flags is reported at once",
			args:    append([]string{"--log-level", "loud", "--dedupe-window", "0s", "--rate-limit", "-1", "--public-url", "events.example.com", "--data-dir", ""}, required...),
			wantErr: []string{"--log-level", "--dedupe-window must be positive", "--rate-limit must not be negative", "--public-url", "--data-dir must not be empty"},
		},
		{name: "bad trusted proxy", args: append([]string{"--trusted-proxies", "proxy.local"}, required...), wantErr: []string{`--trusted-proxies: "proxy.local" is not an IP or CIDR`}},
		{name: "dev-only flag", args: append([]string{"--nats-addr", "127.0.0.1:4333"}, required...), wantErr: []string{"nats-addr"}},
		{name: "stray argument", args: append(slices.Clone(required), "extra"), wantErr: []string{"unexpected arguments: extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseIngestFlags(tt.args)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("ParseIngestFlags(%q) = nil error, want one mentioning %q", tt.args, tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseIngestFlags(%q): %v", tt.args, err)
			}
			tt.check(t, c)
		})
	}
}
