package status

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
)

func TestConvert(t *testing.T) {
	t.Parallel()
	notFound := Error(codes.NotFound, "CATALOG_SOURCE_NOT_FOUND", "source not found", map[string]string{"id": "s1"})
	tests := []struct {
		name       string
		err        error
		wantNil    bool
		wantCode   codes.Code
		wantMsg    string
		wantReason string
		wantLog    bool
	}{
		{name: "nil stays nil", wantNil: true},
		{name: "status error passes through", err: notFound, wantCode: codes.NotFound, wantMsg: "source not found", wantReason: "CATALOG_SOURCE_NOT_FOUND"},
		{name: "wrapped status error passes through", err: fmt.Errorf("get: %w", notFound), wantCode: codes.NotFound, wantReason: "CATALOG_SOURCE_NOT_FOUND"},
		{name: "canceled maps to Canceled", err: fmt.Errorf("query: %w", context.Canceled), wantCode: codes.Canceled},
		{name: "deadline maps to DeadlineExceeded", err: context.DeadlineExceeded, wantCode: codes.DeadlineExceeded},
		{name: "unknown error is generic Internal and logged", err: errors.New("pq: secret detail"), wantCode: codes.Internal, wantMsg: "internal error", wantReason: ReasonInternal, wantLog: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			got := Convert(logger, tt.err)
			if tt.wantNil {
				if got != nil {
					t.Fatalf("Convert = %v, want nil", got)
				}
				return
			}
			st := grpcstatus.Convert(got)
			if st.Code() != tt.wantCode {
				t.Errorf("code = %v, want %v", st.Code(), tt.wantCode)
			}
			if tt.wantMsg != "" && st.Message() != tt.wantMsg {
				t.Errorf("message = %q, want %q", st.Message(), tt.wantMsg)
			}
			if r := Reason(got); r != tt.wantReason {
				t.Errorf("reason = %q, want %q", r, tt.wantReason)
			}
			if strings.Contains(st.Message(), "secret") {
				t.Errorf("internal detail leaked to client: %q", st.Message())
			}
			logged := strings.Contains(logs.String(), "secret detail")
			if logged != tt.wantLog {
				t.Errorf("logged = %v, want %v (%q)", logged, tt.wantLog, logs.String())
			}
		})
	}
}

func TestErrorDetails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		err       error
		wantCode  codes.Code
		wantInfo  *errdetails.ErrorInfo
		wantField string
	}{
		{
			name:     "Error carries ErrorInfo with domain and metadata",
			err:      Error(codes.NotFound, "CATALOG_SOURCE_NOT_FOUND", "nope", map[string]string{"id": "s1"}),
			wantCode: codes.NotFound,
			wantInfo: &errdetails.ErrorInfo{Reason: "CATALOG_SOURCE_NOT_FOUND", Domain: Domain, Metadata: map[string]string{"id": "s1"}},
		},
		{
			name:      "InvalidField carries ErrorInfo and BadRequest",
			err:       InvalidField("CATALOG_INVALID_NAME", "source.name", "name is required"),
			wantCode:  codes.InvalidArgument,
			wantInfo:  &errdetails.ErrorInfo{Reason: "CATALOG_INVALID_NAME", Domain: Domain},
			wantField: "source.name",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := grpcstatus.Convert(tt.err)
			if st.Code() != tt.wantCode {
				t.Fatalf("code = %v, want %v", st.Code(), tt.wantCode)
			}
			var info *errdetails.ErrorInfo
			for _, d := range st.Details() {
				if i, ok := d.(*errdetails.ErrorInfo); ok {
					info = i
				}
			}
			if info == nil {
				t.Fatal("no ErrorInfo detail")
			}
			if info.GetReason() != tt.wantInfo.GetReason() || info.GetDomain() != tt.wantInfo.GetDomain() {
				t.Errorf("ErrorInfo = %v, want %v", info, tt.wantInfo)
			}
			for k, v := range tt.wantInfo.GetMetadata() {
				if info.GetMetadata()[k] != v {
					t.Errorf("metadata[%q] = %q, want %q", k, info.GetMetadata()[k], v)
				}
			}
			if got := Field(tt.err); got != tt.wantField {
				t.Errorf("Field = %q, want %q", got, tt.wantField)
			}
		})
	}
}

func TestInterceptors(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.DiscardHandler)
	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
	}{
		{name: "success passes", wantCode: codes.OK},
		{name: "plain error becomes Internal", err: errors.New("boom"), wantCode: codes.Internal},
		{name: "status error kept", err: Error(codes.NotFound, "X_NOT_FOUND", "nope", nil), wantCode: codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			unary := UnaryServerInterceptor(logger)
			_, err := unary(t.Context(), nil, &grpc.UnaryServerInfo{FullMethod: "/x.Y/Z"}, func(context.Context, any) (any, error) {
				return nil, tt.err
			})
			if got := grpcstatus.Code(err); got != tt.wantCode {
				t.Errorf("unary code = %v, want %v", got, tt.wantCode)
			}
			stream := StreamServerInterceptor(logger)
			err = stream(nil, nil, &grpc.StreamServerInfo{FullMethod: "/x.Y/Z"}, func(any, grpc.ServerStream) error {
				return tt.err
			})
			if got := grpcstatus.Code(err); got != tt.wantCode {
				t.Errorf("stream code = %v, want %v", got, tt.wantCode)
			}
		})
	}
}
