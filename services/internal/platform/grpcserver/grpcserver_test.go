package grpcserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/emptypb"
)

// testService is a hand-written service: Do runs the unary behaviour and
// Watch the streaming one, so tests need no generated code.
type testService struct {
	unary  func(ctx context.Context) error
	stream func(ctx context.Context) error
}

var testDesc = grpc.ServiceDesc{
	ServiceName: "switchyard.test.v1.TestService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Do",
		Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			in := new(emptypb.Empty)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, _ any) (any, error) {
				if err := srv.(*testService).unary(ctx); err != nil {
					return nil, err
				}
				return &emptypb.Empty{}, nil
			}
			if icpt == nil {
				return h(ctx, in)
			}
			return icpt(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/switchyard.test.v1.TestService/Do"}, h)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Watch",
		ServerStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error {
			return srv.(*testService).stream(ss.Context())
		},
	}},
}

func start(t *testing.T, opts Options, svc *testService) (*grpc.ClientConn, func(string, healthpb.HealthCheckResponse_ServingStatus)) {
	t.Helper()
	opts.Logger = slog.New(slog.DiscardHandler)
	srv, hs := New(opts)
	srv.RegisterService(&testDesc, svc)
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, hs.SetServingStatus
}

func callUnary(ctx context.Context, conn *grpc.ClientConn) error {
	return conn.Invoke(ctx, "/switchyard.test.v1.TestService/Do", &emptypb.Empty{}, &emptypb.Empty{})
}

func callStream(ctx context.Context, conn *grpc.ClientConn) error {
	s, err := conn.NewStream(ctx, &testDesc.Streams[0], "/switchyard.test.v1.TestService/Watch")
	if err != nil {
		return err
	}
	if err := s.SendMsg(&emptypb.Empty{}); err != nil {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	return s.RecvMsg(&emptypb.Empty{})
}

func TestServerErrors(t *testing.T) {
	t.Parallel()
	deny := func(ctx context.Context, method string) (context.Context, error) {
		return nil, grpcstatus.Error(codes.Unauthenticated, "missing token")
	}
	type ctxKey struct{}
	tag := func(ctx context.Context, method string) (context.Context, error) {
		return context.WithValue(ctx, ctxKey{}, method), nil
	}
	tests := []struct {
		name     string
		auth     AuthFunc
		handler  func(ctx context.Context) error
		wantCode codes.Code
	}{
		{name: "panic becomes Internal", handler: func(context.Context) error { panic("boom") }, wantCode: codes.Internal},
		{name: "plain error becomes Internal", handler: func(context.Context) error { return errors.New("db down") }, wantCode: codes.Internal},
		{name: "auth error is returned", auth: deny, handler: func(context.Context) error { return nil }, wantCode: codes.Unauthenticated},
		{
			name: "auth context reaches handler",
			auth: tag,
			handler: func(ctx context.Context) error {
				if ctx.Value(ctxKey{}) == nil {
					return grpcstatus.Error(codes.FailedPrecondition, "no auth value")
				}
				return nil
			},
			wantCode: codes.OK,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conn, _ := start(t, Options{Auth: tt.auth}, &testService{unary: tt.handler, stream: tt.handler})
			if got := grpcstatus.Code(callUnary(t.Context(), conn)); got != tt.wantCode {
				t.Errorf("unary code = %v, want %v", got, tt.wantCode)
			}
			err := callStream(t.Context(), conn)
			if tt.wantCode == codes.OK {
				// The handler returns without sending: the client sees EOF.
				if !errors.Is(err, io.EOF) {
					t.Errorf("stream err = %v, want io.EOF", err)
				}
				return
			}
			if got := grpcstatus.Code(err); got != tt.wantCode {
				t.Errorf("stream code = %v, want %v", got, tt.wantCode)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		set  bool
		want healthpb.HealthCheckResponse_ServingStatus
	}{
		{name: "not serving until set", want: healthpb.HealthCheckResponse_NOT_SERVING},
		{name: "serving after SetServingStatus", set: true, want: healthpb.HealthCheckResponse_SERVING},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conn, set := start(t, Options{}, &testService{})
			if tt.set {
				set("", healthpb.HealthCheckResponse_SERVING)
			}
			resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetStatus() != tt.want {
				t.Errorf("status = %v, want %v", resp.GetStatus(), tt.want)
			}
		})
	}
}
