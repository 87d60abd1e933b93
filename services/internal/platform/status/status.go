// Package status is the one place where Switchyard errors become gRPC
// statuses. Services build domain-aware statuses with Error and
// InvalidField; everything else goes through Convert (installed as the
// last server interceptor), which hides unknown errors behind a generic
// Internal status and logs their detail.
package status

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// Domain is the google.rpc.ErrorInfo domain of every Switchyard error.
const Domain = "switchyard.dev"

// Reasons used by the platform itself. Services define their own, prefixed
// with the service name (e.g. CATALOG_SOURCE_NOT_FOUND).
const (
	// ReasonInternal marks an unexpected error whose detail was logged.
	ReasonInternal = "INTERNAL"
	// ReasonUnauthenticated marks a request without valid credentials.
	ReasonUnauthenticated = "UNAUTHENTICATED"
	// ReasonPermissionDenied marks a request the caller may not make.
	ReasonPermissionDenied = "PERMISSION_DENIED"
)

// internalMessage is the only message a client sees for unexpected errors.
const internalMessage = "internal error"

// Error returns an error carrying a gRPC status with the given code and
// message and a google.rpc.ErrorInfo detail (Domain, reason, meta). reason
// is a stable UPPER_SNAKE identifier clients may switch on.
func Error(code codes.Code, reason, msg string, meta map[string]string) error {
	st := grpcstatus.New(code, msg)
	if reason == "" {
		return st.Err()
	}
	withDetails, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: Domain, Metadata: meta})
	if err != nil {
		// Only fails for unmarshalable details, which ErrorInfo never is.
		return st.Err()
	}
	return withDetails.Err()
}

// InvalidField returns an InvalidArgument error with an ErrorInfo (reason)
// and a google.rpc.BadRequest naming the offending field. field uses the
// request's JSON (camelCase) or dotted path, e.g. "source.name".
func InvalidField(reason, field, msg string) error {
	st := grpcstatus.New(codes.InvalidArgument, msg)
	details := []protoadapt.MessageV1{
		&errdetails.ErrorInfo{Reason: reason, Domain: Domain, Metadata: map[string]string{"field": field}},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: msg}}},
	}
	withDetails, err := st.WithDetails(details...)
	if err != nil {
		return st.Err()
	}
	return withDetails.Err()
}

// Reason returns the ErrorInfo reason carried by err, or "" if none.
func Reason(err error) string {
	st, ok := fromError(err)
	if !ok {
		return ""
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// Field returns the field of the first google.rpc.BadRequest field
// violation carried by err, or "" if none.
func Field(err error) string {
	st, ok := fromError(err)
	if !ok {
		return ""
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
			return br.GetFieldViolations()[0].GetField()
		}
	}
	return ""
}

// Convert maps any error to one carrying a gRPC status:
//   - nil stays nil;
//   - an error that already carries a status (anywhere in its chain, via
//     GRPCStatus) passes through unchanged;
//   - context.Canceled becomes Canceled, context.DeadlineExceeded becomes
//     DeadlineExceeded;
//   - anything else becomes Internal with the generic message "internal
//     error"; the original error is logged at error level.
func Convert(logger *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := fromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return grpcstatus.Error(codes.Canceled, context.Canceled.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return grpcstatus.Error(codes.DeadlineExceeded, context.DeadlineExceeded.Error())
	}
	if logger != nil {
		logger.Error("internal error", "err", err)
	}
	return Error(codes.Internal, ReasonInternal, internalMessage, nil)
}

// UnaryServerInterceptor applies Convert to every error a unary handler
// returns. Install it last (innermost) so it sees the handler's own errors.
func UnaryServerInterceptor(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil {
			return resp, convertLogged(logger, info.FullMethod, err)
		}
		return resp, nil
	}
}

// StreamServerInterceptor applies Convert to every error a streaming
// handler returns.
func StreamServerInterceptor(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := handler(srv, ss); err != nil {
			return convertLogged(logger, info.FullMethod, err)
		}
		return nil
	}
}

func convertLogged(logger *slog.Logger, method string, err error) error {
	if logger != nil {
		logger = logger.With("method", method)
	}
	return Convert(logger, err)
}

// fromError finds a gRPC status in err's chain without inventing one.
func fromError(err error) (*grpcstatus.Status, bool) {
	var gs interface{ GRPCStatus() *grpcstatus.Status }
	if errors.As(err, &gs) {
		st := gs.GRPCStatus()
		if st != nil {
			return st, true
		}
	}
	return nil, false
}
