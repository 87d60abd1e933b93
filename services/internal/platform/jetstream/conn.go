// Package jetstream wraps nats.go's jetstream package with what every
// Switchyard service needs: connecting, ensuring streams and durable
// consumers, publishing with routing and W3C trace headers, and consuming
// in batches with explicit acks and bounded retry back-off.
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Conn is a NATS connection and its JetStream context.
type Conn struct {
	// NC is the core NATS connection.
	NC *nats.Conn
	// JS is the JetStream API on NC.
	JS natsjs.JetStream

	closed chan struct{}
}

// Connect connects to the NATS server(s) at url (comma-separated URLs are
// allowed) as client name. It reconnects forever after a disconnect; ctx
// bounds only the initial connection attempt.
func Connect(ctx context.Context, url string, name string) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opts := []nats.Option{nats.MaxReconnects(-1)}
	if d, ok := ctx.Deadline(); ok {
		opts = append(opts, nats.Timeout(time.Until(d)))
	}
	return connect(url, name, opts...)
}

// ConnectInProcess connects to an embedded server without a TCP socket
// (see package natsembed). The connection does not survive the server's
// shutdown: connect again to a restarted server.
func ConnectInProcess(srv *server.Server, name string) (*Conn, error) {
	return connect("", name, nats.InProcessServer(srv))
}

func connect(url, name string, opts ...nats.Option) (*Conn, error) {
	closed := make(chan struct{})
	opts = append([]nats.Option{
		nats.Name(name),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
	}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS %q: %w", url, err)
	}
	js, err := natsjs.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Conn{NC: nc, JS: js, closed: closed}, nil
}

// Close waits for outstanding asynchronous publishes to be acknowledged,
// then drains the connection (subscriptions finish their pending messages,
// buffered publishes are flushed) and waits until it is closed or ctx is
// done; in the latter case it closes the connection at once and returns
// ctx's error.
func (c *Conn) Close(ctx context.Context) error {
	if c.NC.IsClosed() {
		return nil
	}
	if c.JS != nil && c.JS.PublishAsyncPending() > 0 {
		select {
		case <-c.JS.PublishAsyncComplete():
		case <-ctx.Done():
			c.NC.Close()
			return fmt.Errorf("wait for async publishes: %w", ctx.Err())
		}
	}
	if err := c.NC.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		c.NC.Close()
		return fmt.Errorf("drain NATS connection: %w", err)
	}
	if c.closed == nil {
		// A Conn assembled by hand has no closed signal: poll.
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for !c.NC.IsClosed() {
			select {
			case <-t.C:
			case <-ctx.Done():
				c.NC.Close()
				return fmt.Errorf("drain NATS connection: %w", ctx.Err())
			}
		}
		return nil
	}
	select {
	case <-c.closed:
		return nil
	case <-ctx.Done():
		c.NC.Close()
		return fmt.Errorf("drain NATS connection: %w", ctx.Err())
	}
}

// EnsureStream creates the stream described by cfg, or updates it to cfg
// when it exists (fields JetStream cannot change return an error).
func EnsureStream(ctx context.Context, js natsjs.JetStream, cfg natsjs.StreamConfig) (natsjs.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
	}
	return s, nil
}
