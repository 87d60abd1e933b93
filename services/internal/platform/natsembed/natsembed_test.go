package natsembed

import (
	"log/slog"
	"testing"

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
