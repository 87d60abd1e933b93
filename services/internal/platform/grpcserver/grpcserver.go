// Package grpcserver builds the gRPC server every Switchyard service runs:
// OpenTelemetry tracing, panic recovery, an optional auth hook, one error
// mapping (package status), the standard health service and reflection.
package grpcserver

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/switchyardhq/switchyard/services/internal/platform/status"
)

// AuthFunc authenticates one call. It returns the context the handler
// runs with (e.g. carrying the caller's identity) or an error, which is
// returned to the client; return a status error (codes.Unauthenticated,
// codes.PermissionDenied) so the client sees the right code.
type AuthFunc func(ctx context.Context, fullMethod string) (context.Context, error)

// Options configures New.
type Options struct {
	// Logger receives panics and internal errors. Nil means slog.Default().
	Logger *slog.Logger
	// Auth, when non-nil, is called for every unary and streaming call,
	// including health and reflection; skip those by fullMethod if they
	// must stay open.
	Auth func(ctx context.Context, fullMethod string) (context.Context, error)
	// ServerOptions are appended to the options New builds.
	ServerOptions []grpc.ServerOption
}

// ReasonPanic is the ErrorInfo reason of the Internal status a recovered
// panic becomes.
const ReasonPanic = "INTERNAL_PANIC"

// MaxMessageBytes is the largest gRPC message a server receives or sends
// (gRPC's default is 4 MiB).
const MaxMessageBytes = 64 << 20

// New returns a gRPC server and its health server. Interceptors run, from
// outermost to innermost: status mapping (so every error leaving the
// server is a proper status, including auth errors), panic recovery, the
// auth hook. The health service starts NOT_SERVING for the overall
// service (""); call SetServingStatus("", SERVING) once ready and
// Shutdown on stop.
func New(opts Options) (*grpc.Server, *health.Server) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	unary := []grpc.UnaryServerInterceptor{
		status.UnaryServerInterceptor(logger),
		recoverUnary(logger),
	}
	stream := []grpc.StreamServerInterceptor{
		status.StreamServerInterceptor(logger),
		recoverStream(logger),
	}
	if opts.Auth != nil {
		unary = append(unary, authUnary(opts.Auth))
		stream = append(stream, authStream(opts.Auth))
	}
	serverOpts := append([]grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}, opts.ServerOptions...)
	srv := grpc.NewServer(serverOpts...)

	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	return srv, hs
}

func panicError(logger *slog.Logger, method string, p any) error {
	logger.Error("panic in gRPC handler", "method", method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return status.Error(codes.Internal, ReasonPanic, "internal error", nil)
}

func recoverUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				resp, err = nil, panicError(logger, info.FullMethod, p)
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = panicError(logger, info.FullMethod, p)
			}
		}()
		return handler(srv, ss)
	}
}

func authUnary(auth AuthFunc) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := auth(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

func authStream(auth AuthFunc) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := auth(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
	}
}

// contextStream replaces a stream's context with the one auth returned.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }
