package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, " ")
}

// blockingRun runs until its context is cancelled and exits with err (or
// ctx.Err() when err is nil).
func blockingRun(rec *recorder, name string, started *sync.WaitGroup, err error) func(ctx context.Context) error {
	started.Add(1)
	return func(ctx context.Context) error {
		started.Done()
		<-ctx.Done()
		rec.add("exit:" + name)
		if err != nil {
			return err
		}
		return ctx.Err()
	}
}

// stopper records its call and whether the run contexts were still alive.
func stopper(rec *recorder, name string, err error) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		rec.add("stop:" + name)
		return err
	}
}

func TestRunner(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name string
		// build adds components; cancelAfterStart says whether the test
		// cancels the parent context once every run func has started.
		build            func(r *Runner, rec *recorder, started *sync.WaitGroup)
		cancelAfterStart bool
		timeout          time.Duration
		wantErr          string
		wantEvents       string
	}{
		{
			name: "ctx cancel stops in reverse order and returns nil",
			build: func(r *Runner, rec *recorder, started *sync.WaitGroup) {
				r.Add("nats", nil, stopper(rec, "nats", nil))
				r.Add("grpc", blockingRun(rec, "grpc", started, http.ErrServerClosed), stopper(rec, "grpc", nil))
				r.Add("http", blockingRun(rec, "http", started, nil), stopper(rec, "http", nil))
			},
			cancelAfterStart: true,
			// Runs exit only after all stops: their contexts are cancelled last.
			wantEvents: "stop:http stop:grpc stop:nats exit:",
		},
		{
			name: "nil stop cancels that run at its place in the order",
			build: func(r *Runner, rec *recorder, started *sync.WaitGroup) {
				r.Add("nats", nil, stopper(rec, "nats", nil))
				r.Add("consumer", blockingRun(rec, "consumer", started, nil), nil)
				r.Add("grpc", nil, stopper(rec, "grpc", nil))
			},
			cancelAfterStart: true,
			wantEvents:       "stop:grpc exit:consumer stop:nats",
		},
		{
			name: "run error triggers shutdown and is returned",
			build: func(r *Runner, rec *recorder, started *sync.WaitGroup) {
				r.Add("nats", nil, stopper(rec, "nats", nil))
				r.Add("broken", func(context.Context) error { return boom }, nil)
				r.Add("grpc", blockingRun(rec, "grpc", started, nil), stopper(rec, "grpc", nil))
			},
			wantErr:    "broken: boom",
			wantEvents: "stop:grpc stop:nats exit:grpc",
		},
		{
			name: "stop error is returned",
			build: func(r *Runner, rec *recorder, started *sync.WaitGroup) {
				r.Add("nats", nil, stopper(rec, "nats", boom))
				r.Add("grpc", nil, stopper(rec, "grpc", nil))
			},
			cancelAfterStart: true,
			wantErr:          "stop nats: boom",
			wantEvents:       "stop:grpc stop:nats",
		},
		{
			name: "run that ignores cancel is reported after the timeout",
			build: func(r *Runner, rec *recorder, started *sync.WaitGroup) {
				// The run ignores its context; it is released well after Run gave up.
				release := make(chan struct{})
				time.AfterFunc(time.Second, func() { close(release) })
				r.Add("stuck", func(context.Context) error { <-release; return nil }, stopper(rec, "stuck", nil))
			},
			cancelAfterStart: true,
			timeout:          50 * time.Millisecond,
			wantErr:          "did not return within 50ms: stuck",
			wantEvents:       "stop:stuck",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			var started sync.WaitGroup
			r := NewRunner(slog.New(slog.DiscardHandler))
			tt.build(r, rec, &started)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.cancelAfterStart {
				go func() {
					started.Wait()
					cancel()
				}()
			}
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			err := r.Run(ctx, timeout)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Run = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Run = %v, want an error containing %q", err, tt.wantErr)
			}
			if got := rec.String(); !strings.HasPrefix(got, tt.wantEvents) {
				t.Errorf("events = %q, want prefix %q", got, tt.wantEvents)
			}
		})
	}
}
