package dev

import (
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr []string // substrings that must all appear
		check   func(t *testing.T, c Config)
	}{
		{
			name: "defaults follow the runtime contract",
			check: func(t *testing.T, c Config) {
				if c.DataDir != ".switchyard" || c.HTTPAddr != "127.0.0.1:8080" || c.GRPCAddr != "127.0.0.1:9090" || c.NATSURL != "" || c.NATSAddr != "" {
					t.Errorf("defaults = %+v", c)
				}
			},
		},
		{
			name: "environment fixes the bootstrap secrets",
			env:  map[string]string{"SWITCHYARD_ADMIN_TOKEN": "admin-token-0123456789", "SWITCHYARD_DEV_WRITE_KEY": "write-key-1"},
			check: func(t *testing.T, c Config) {
				if c.AdminToken != "admin-token-0123456789" || c.WriteKey != "write-key-1" {
					t.Errorf("secrets = %q %q", c.AdminToken, c.WriteKey)
				}
			},
		},
		{
			name: "flags override defaults",
			args: []string{"--data-dir", "/tmp/x", "--http-addr", "127.0.0.1:1", "--grpc-addr", "127.0.0.1:2", "--nats-url", "nats://h:4222"},
			check: func(t *testing.T, c Config) {
				if c.DataDir != "/tmp/x" || c.HTTPAddr != "127.0.0.1:1" || c.GRPCAddr != "127.0.0.1:2" || c.NATSURL != "nats://h:4222" {
					t.Errorf("parsed = %+v", c)
				}
			},
		},
		{name: "bad address", args: []string{"--http-addr", "nope"}, wantErr: []string{`--http-addr "nope" is not host:port`}},
		{name: "same address twice", args: []string{"--http-addr", "127.0.0.1:1", "--grpc-addr", "127.0.0.1:1"}, wantErr: []string{"must differ"}},
		{name: "nats-addr with nats-url", args: []string{"--nats-addr", "127.0.0.1:4333", "--nats-url", "nats://x:1"}, wantErr: []string{"cannot be combined"}},
		{name: "short admin token", env: map[string]string{"SWITCHYARD_ADMIN_TOKEN": "short"}, wantErr: []string{"at least 16"}},
		{
			name:    "every problem is reported at once",
			args:    []string{"--log-level", "loud", "--log-format", "xml", "--data-dir", ""},
			wantErr: []string{"--log-level", "--log-format", "--data-dir"},
		},
		{name: "unknown flag", args: []string{"--bogus"}, wantErr: []string{"bogus"}},
		{name: "stray argument", args: []string{"extra"}, wantErr: []string{"unexpected arguments: extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseFlags(tt.args, env(tt.env))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("ParseFlags(%q) = nil error, want one mentioning %q", tt.args, tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFlags(%q): %v", tt.args, err)
			}
			tt.check(t, c)
		})
	}
}
