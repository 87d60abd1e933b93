// Package natsembed runs a NATS server with JetStream inside the current
// process: the dev-mode all-in-one binary and the tests use it. By default
// it opens no TCP port and is reached in-process (nats.InProcessServer), so
// it never collides with a NATS server already running on the machine.
package natsembed

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ReadyTimeout is how long Start waits for the server to accept
// connections.
const ReadyTimeout = 10 * time.Second

// Options configures Start.
type Options struct {
	// StoreDir is the JetStream file-storage directory. Required.
	StoreDir string
	// ListenAddr is the client TCP address (host:port; port 0 picks a
	// free one). "" opens no TCP port: in-process connections only. An
	// address that cannot be bound (e.g. a NATS server already listens
	// there) fails Start at once: "natsembed: listen on <addr>: address
	// already in use" (errors.Is syscall.EADDRINUSE).
	ListenAddr string
	// Logger receives the server's log lines. Nil discards them.
	Logger *slog.Logger
	// ServerName names the server; "" means "switchyard-embedded".
	ServerName string
}

// Start starts an embedded NATS server with JetStream file storage in
// opts.StoreDir and waits until it accepts connections. The caller owns the
// server: call Shutdown and then WaitForShutdown to stop it (stopping it
// flushes JetStream state, which a later Start on the same StoreDir
// recovers). Connect with nats.InProcessServer(srv), or srv.ClientURL()
// when ListenAddr was set.
func Start(opts Options) (*server.Server, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("natsembed: StoreDir is required")
	}
	name := opts.ServerName
	if name == "" {
		name = "switchyard-embedded"
	}
	sopts := &server.Options{
		ServerName: name,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		NoSigs:     true,
		DontListen: opts.ListenAddr == "",
		// The server's own logging is routed through SetLoggerV2 below.
		NoLog: opts.Logger == nil,
	}
	if opts.ListenAddr != "" {
		host, portStr, err := net.SplitHostPort(opts.ListenAddr)
		if err != nil {
			return nil, fmt.Errorf("natsembed: listen address %q: %w", opts.ListenAddr, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return nil, fmt.Errorf("natsembed: listen address %q: invalid port", opts.ListenAddr)
		}
		if port == 0 {
			// Port 0 means 4222 to nats-server; RANDOM_PORT asks for a free one.
			port = server.RANDOM_PORT
		} else if err := probeListen(opts.ListenAddr); err != nil {
			return nil, err
		}
		sopts.Host, sopts.Port = host, port
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: configure server: %w", err)
	}
	if opts.Logger != nil {
		srv.SetLoggerV2(&slogAdapter{l: opts.Logger.With("component", "nats-server")}, false, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(ReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		if sopts.Port > 0 {
			// The address was taken between the probe and the server's
			// own listen: say so rather than "not ready".
			if err := probeListen(opts.ListenAddr); err != nil {
				return nil, err
			}
		}
		return nil, fmt.Errorf("natsembed: server not ready for connections within %s (store dir %s, listen %q)", ReadyTimeout, opts.StoreDir, opts.ListenAddr)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("natsembed: JetStream did not start (store dir %s)", opts.StoreDir)
	}
	return srv, nil
}

// probeListen binds addr and releases it at once; it returns an error
// naming addr when addr cannot be bound, e.g. because a NATS server already
// listens there. nats-server itself only logs a failed listen and keeps
// running without a client listener, so Start would otherwise wait
// ReadyTimeout and report "not ready" without the cause.
func probeListen(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		// "address already in use" rather than "listen tcp …: bind: …".
		cause := err
		var se *os.SyscallError
		if errors.As(err, &se) {
			cause = se.Err
		}
		return fmt.Errorf("natsembed: listen on %s: %w", addr, cause)
	}
	return l.Close()
}

// slogAdapter routes nats-server log lines to slog.
type slogAdapter struct{ l *slog.Logger }

func (a *slogAdapter) Noticef(format string, v ...any) { a.l.Info(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Tracef(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
