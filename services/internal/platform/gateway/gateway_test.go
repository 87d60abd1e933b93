package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/switchyardhq/switchyard/services/internal/platform/grpcserver"
	"github.com/switchyardhq/switchyard/services/internal/platform/status"
)

// newGateway starts a real gRPC server on 127.0.0.1:0 whose auth hook
// requires "authorization: Bearer good", dials it and exposes the health
// check as GET /healthz on a mux from NewMux.
func newGateway(t *testing.T) http.Handler {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	srv, hs := grpcserver.New(grpcserver.Options{
		Logger: logger,
		Auth: func(ctx context.Context, _ string) (context.Context, error) {
			md, _ := metadata.FromIncomingContext(ctx)
			if v := md.Get("authorization"); len(v) == 0 || v[0] != "Bearer good" {
				return nil, status.Error(codes.Unauthenticated, status.ReasonUnauthenticated, "missing or bad token", nil)
			}
			return ctx, nil
		},
	})
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	conn, err := Dial(t.Context(), lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := healthpb.NewHealthClient(conn)

	mux := NewMux(logger)
	err = mux.HandlePath(http.MethodGet, "/healthz", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		_, m := runtime.MarshalerForRequest(mux, r)
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, "/grpc.health.v1.Health/Check", runtime.WithHTTPPathPattern("/healthz"))
		if err != nil {
			runtime.HTTPError(r.Context(), mux, m, w, r, err)
			return
		}
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			runtime.HTTPError(ctx, mux, m, w, r, err)
			return
		}
		runtime.ForwardResponseMessage(ctx, mux, m, w, r, resp)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = mux.HandlePath(http.MethodPost, "/invalid", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		_, m := runtime.MarshalerForRequest(mux, r)
		runtime.HTTPError(r.Context(), mux, m, w, r, status.InvalidField("CATALOG_INVALID_NAME", "source.name", "name is required"))
	})
	if err != nil {
		t.Fatal(err)
	}
	err = mux.HandlePath(http.MethodPost, "/plain", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		_, m := runtime.MarshalerForRequest(mux, r)
		runtime.HTTPError(r.Context(), mux, m, w, r, errors.New("boom"))
	})
	if err != nil {
		t.Fatal(err)
	}
	return mux
}

func TestMux(t *testing.T) {
	t.Parallel()
	h := newGateway(t)
	tests := []struct {
		name       string
		method     string
		path       string
		auth       string
		wantStatus int
		wantBody   map[string]string
	}{
		{name: "authorization header reaches gRPC", method: http.MethodGet, path: "/healthz", auth: "Bearer good", wantStatus: http.StatusOK, wantBody: map[string]string{"status": "SERVING"}},
		{name: "missing token is 401 with reason", method: http.MethodGet, path: "/healthz", wantStatus: http.StatusUnauthorized, wantBody: map[string]string{"code": "UNAUTHENTICATED", "reason": status.ReasonUnauthenticated, "message": "missing or bad token", "field": ""}},
		{name: "invalid field is 400 with field", method: http.MethodPost, path: "/invalid", wantStatus: http.StatusBadRequest, wantBody: map[string]string{"code": "INVALID_ARGUMENT", "reason": "CATALOG_INVALID_NAME", "field": "source.name"}},
		{name: "plain error is 500", method: http.MethodPost, path: "/plain", wantStatus: http.StatusInternalServerError, wantBody: map[string]string{"code": "UNKNOWN", "reason": ""}},
		{name: "unknown route is 404", method: http.MethodGet, path: "/nope", wantStatus: http.StatusNotFound, wantBody: map[string]string{"code": "NOT_FOUND"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequestWithContext(t.Context(), tt.method, tt.path, strings.NewReader("{}"))
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d (body %s)", rec.Code, tt.wantStatus, rec.Body)
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q is not JSON: %v", rec.Body, err)
			}
			for k, want := range tt.wantBody {
				v, ok := got[k]
				if !ok {
					t.Errorf("body %s has no key %q", rec.Body, k)
					continue
				}
				if v != want {
					t.Errorf("body[%q] = %v, want %q", k, v, want)
				}
			}
		})
	}
}

func TestCodeName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code codes.Code
		want string
	}{
		{codes.OK, "OK"},
		{codes.NotFound, "NOT_FOUND"},
		{codes.FailedPrecondition, "FAILED_PRECONDITION"},
		{codes.Code(99), "UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := CodeName(tt.code); got != tt.want {
				t.Errorf("CodeName(%v) = %q, want %q", tt.code, got, tt.want)
			}
		})
	}
}
