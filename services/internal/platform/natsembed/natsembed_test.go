package natsembed

import (
	"errors"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		opts       func(t *testing.T) Options
		wantErr    bool
		wantListen bool
	}{
		{name: "in-process only", opts: func(t *testing.T) Options { return Options{StoreDir: t.TempDir()} }},
		{name: "with logger and TCP port", wantListen: true, opts: func(t *testing.T) Options {
			return Options{StoreDir: t.TempDir(), ListenAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)}
		}},
		{name: "store dir required", wantErr: true, opts: func(*testing.T) Options { return Options{} }},
		{name: "bad listen address", wantErr: true, opts: func(t *testing.T) Options { return Options{StoreDir: t.TempDir(), ListenAddr: "nope"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, err := Start(tt.opts(t))
			if tt.wantErr {
				if err == nil {
					srv.Shutdown()
					t.Fatal("Start succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })

			nc, err := nats.Connect("", nats.InProcessServer(srv))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			if tt.wantListen {
				tcp, err := nats.Connect(srv.ClientURL())
				if err != nil {
					t.Fatalf("TCP connect to %s: %v", srv.ClientURL(), err)
				}
				tcp.Close()
			} else if srv.Addr() != nil {
				t.Errorf("server listens on %v, want no TCP port", srv.Addr())
			}
		})
	}
}

// TestStartOnAddressInUse checks that a listen address already in use (by
// another NATS server, as `switchyard dev --nats-addr 127.0.0.1:4222` meets
// when nats-server runs on the machine, or by anything else) fails Start at
// once with the address and the cause, instead of after ReadyTimeout with
// "server not ready for connections".
func TestStartOnAddressInUse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		occupy func(t *testing.T) string // returns the taken address
	}{
		{"another embedded NATS server", func(t *testing.T) string {
			srv, err := Start(Options{StoreDir: t.TempDir(), ListenAddr: "127.0.0.1:0"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
			return srv.Addr().String()
		}},
		{"a plain TCP listener", func(t *testing.T) string {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = l.Close() })
			return l.Addr().String()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := tc.occupy(t)
			start := time.Now()
			srv, err := Start(Options{StoreDir: t.TempDir(), ListenAddr: addr, Logger: slog.New(slog.DiscardHandler)})
			took := time.Since(start)
			if err == nil {
				srv.Shutdown()
				srv.WaitForShutdown()
				t.Fatalf("Start on %s (in use) succeeded, want an error", addr)
			}
			if want := "listen on " + addr + ": address already in use"; !strings.Contains(err.Error(), want) {
				t.Errorf("error = %q, want it to contain %q", err, want)
			}
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("error = %v, want errors.Is EADDRINUSE", err)
			}
			// Before the fix Start waited ReadyTimeout (10 s) for a listener
			// that never came.
			if took > ReadyTimeout/2 {
				t.Errorf("Start took %v to fail, want well under ReadyTimeout (%v)", took, ReadyTimeout)
			}
		})
	}
}
