// Package app runs the components of a Switchyard process and shuts them
// down in order: components are added in dependency order (NATS before the
// consumers that use it, servers last) and stopped in reverse.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
)

// Runner runs components and stops them in reverse order of Add. It is
// used once: Add everything, then call Run.
type Runner struct {
	logger     *slog.Logger
	components []*component
}

type component struct {
	name   string
	run    func(ctx context.Context) error
	stop   func(ctx context.Context) error
	cancel context.CancelFunc
	done   chan struct{}
}

// NewRunner returns an empty Runner logging to logger (nil means
// slog.Default()).
func NewRunner(logger *slog.Logger) *Runner {
	if logger == nil {
		logger = slog.Default()
	}
	return &Runner{logger: logger}
}

// Add registers a component. run, when non-nil, runs for the life of the
// process (e.g. grpc.Server.Serve, a consumer loop) and should return when
// its context is cancelled. stop, when non-nil, stops it gracefully (e.g.
// GracefulStop, Drain) within the context's deadline.
//
// When stop is nil and run is not, stopping the component means cancelling
// run's own context and waiting (up to the shutdown timeout) for run to
// return, at the component's place in the reverse order. So a consumer
// loop added after its NATS connection finishes its in-flight batch before
// the connection is drained.
func (r *Runner) Add(name string, run func(ctx context.Context) error, stop func(ctx context.Context) error) {
	r.components = append(r.components, &component{name: name, run: run, stop: stop})
}

// Run starts every run func and blocks until ctx is cancelled or a run
// func returns (with an error, or nil before shutdown was asked). Then it
// stops the components in reverse order of Add, each stop bounded by
// shutdownTimeout, cancels the run contexts (which stay alive until then,
// even though ctx is already cancelled), and waits up to shutdownTimeout
// for the run funcs to return.
//
// It returns the first real error: the run error that caused the shutdown,
// else the first stop error, else a timeout waiting for run funcs. A
// shutdown caused by cancelling ctx returns nil, and errors that only say
// a component was stopped (context.Canceled, http.ErrServerClosed,
// grpc.ErrServerStopped) are not errors.
func (r *Runner) Run(ctx context.Context, shutdownTimeout time.Duration) error {
	base := context.WithoutCancel(ctx)
	var (
		mu       sync.Mutex
		firstErr error
		stopping bool
		trigger  = make(chan struct{})
		once     sync.Once
	)
	record := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}

	var g errgroup.Group
	for _, c := range r.components {
		if c.run == nil {
			continue
		}
		runCtx, cancel := context.WithCancel(base)
		c.cancel, c.done = cancel, make(chan struct{})
		r.logger.Info("starting", "component", c.name)
		g.Go(func() error {
			defer close(c.done)
			err := c.run(runCtx)
			mu.Lock()
			during := stopping
			mu.Unlock()
			switch {
			case err != nil && during && isStopped(err):
				r.logger.Debug("component exited", "component", c.name, "reason", err)
			case err != nil:
				r.logger.Error("component failed", "component", c.name, "err", err)
				record(fmt.Errorf("%s: %w", c.name, err))
			case !during:
				r.logger.Warn("component exited before shutdown", "component", c.name)
			default:
				r.logger.Debug("component exited", "component", c.name)
			}
			once.Do(func() { close(trigger) })
			return nil
		})
	}

	select {
	case <-ctx.Done():
		r.logger.Info("shutdown requested", "cause", context.Cause(ctx))
	case <-trigger:
		r.logger.Info("shutting down after a component exited")
	}
	mu.Lock()
	stopping = true
	mu.Unlock()

	for i := len(r.components) - 1; i >= 0; i-- {
		c := r.components[i]
		if c.stop == nil && c.run == nil {
			continue
		}
		start := time.Now()
		sctx, cancel := context.WithTimeout(base, shutdownTimeout)
		if c.stop != nil {
			r.logger.Info("stopping", "component", c.name)
			if err := c.stop(sctx); err != nil {
				r.logger.Error("stop failed", "component", c.name, "err", err)
				record(fmt.Errorf("stop %s: %w", c.name, err))
			} else {
				r.logger.Info("stopped", "component", c.name, "took", time.Since(start))
			}
		} else {
			r.logger.Info("stopping (cancel)", "component", c.name)
			c.cancel()
			select {
			case <-c.done:
				r.logger.Info("stopped", "component", c.name, "took", time.Since(start))
			case <-sctx.Done():
				r.logger.Error("component did not stop in time", "component", c.name, "timeout", shutdownTimeout)
				record(fmt.Errorf("stop %s: did not return within %s", c.name, shutdownTimeout))
			}
		}
		cancel()
	}

	for _, c := range r.components {
		if c.cancel != nil {
			c.cancel()
		}
	}
	waited := make(chan struct{})
	go func() {
		_ = g.Wait()
		close(waited)
	}()
	t := time.NewTimer(shutdownTimeout)
	defer t.Stop()
	select {
	case <-waited:
	case <-t.C:
		var stuck []string
		for _, c := range r.components {
			if c.done == nil {
				continue
			}
			select {
			case <-c.done:
			default:
				stuck = append(stuck, c.name)
			}
		}
		r.logger.Error("components did not return after cancel", "components", stuck, "timeout", shutdownTimeout)
		record(fmt.Errorf("components did not return within %s: %s", shutdownTimeout, strings.Join(stuck, ", ")))
	}

	mu.Lock()
	defer mu.Unlock()
	if firstErr == nil {
		r.logger.Info("shutdown complete")
	}
	return firstErr
}

// isStopped reports errors that only say a component was told to stop.
func isStopped(err error) bool {
	return errors.Is(err, context.Canceled) ||
		errors.Is(err, http.ErrServerClosed) ||
		errors.Is(err, grpc.ErrServerStopped)
}
