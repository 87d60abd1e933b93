// Package gateway serves a service's public RPCs as REST with grpc-gateway.
// The gateway runs in-process but calls the service through a gRPC client
// connection (Dial), so REST requests pass the same interceptors (auth,
// tracing, error mapping) as gRPC ones.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// MaxMessageBytes is the largest gRPC message the gateway sends or receives.
const MaxMessageBytes = 64 << 20

// Dial returns a client connection to target (host:port, or any gRPC
// target) with insecure transport credentials and OpenTelemetry client
// instrumentation, so the trace continues from the HTTP request into the
// service. The connection is lazy: it does not block or fail when the
// server is not up yet.
func Dial(ctx context.Context, target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
		// REST answers (e.g. a 10,000-row query result) may exceed gRPC's
		// 4 MiB default; MaxMessageBytes bounds them instead.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
	}, opts...)
	return grpc.NewClient(target, opts...)
}

// ErrorBody is the JSON body of every REST error response.
type ErrorBody struct {
	// Code is the gRPC code name, e.g. "NOT_FOUND".
	Code string `json:"code"`
	// Message is the status message.
	Message string `json:"message"`
	// Reason is the google.rpc.ErrorInfo reason, e.g.
	// "CATALOG_SOURCE_NOT_FOUND", or "" when the status has none.
	Reason string `json:"reason"`
	// Field is the first google.rpc.BadRequest field violation, or "".
	Field string `json:"field"`
}

// NewMux returns a grpc-gateway mux that:
//   - forwards the Authorization header as gRPC metadata "authorization"
//     (grpc-gateway always does this) plus the permanent HTTP headers the
//     default matcher forwards with the "grpcgateway-" prefix;
//   - marshals JSON with protojson, camelCase field names and unpopulated
//     fields emitted, and ignores unknown fields on input;
//   - writes errors as ErrorBody with the HTTP status grpc-gateway maps
//     from the gRPC code.
func NewMux(logger *slog.Logger, opts ...runtime.ServeMuxOption) *runtime.ServeMux {
	if logger == nil {
		logger = slog.Default()
	}
	base := []runtime.ServeMuxOption{
		runtime.WithIncomingHeaderMatcher(runtime.DefaultHeaderMatcher),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: false, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		}),
		runtime.WithErrorHandler(ErrorHandler(logger)),
	}
	return runtime.NewServeMux(append(base, opts...)...)
}

// ErrorHandler returns the runtime.ErrorHandlerFunc NewMux installs.
func ErrorHandler(logger *slog.Logger) runtime.ErrorHandlerFunc {
	return func(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
		httpStatus := 0
		var custom *runtime.HTTPStatusError
		if errors.As(err, &custom) {
			httpStatus = custom.HTTPStatus
			err = custom.Err
		}
		st := grpcstatus.Convert(err)
		if httpStatus == 0 {
			httpStatus = runtime.HTTPStatusFromCode(st.Code())
		}
		body := BodyFromStatus(st)

		w.Header().Del("Trailer")
		w.Header().Del("Transfer-Encoding")
		w.Header().Set("Content-Type", "application/json")
		if st.Code() == codes.Unauthenticated {
			w.Header().Set("Www-Authenticate", "Bearer")
		}
		w.WriteHeader(httpStatus)
		if err := json.NewEncoder(w).Encode(body); err != nil {
			logger.DebugContext(ctx, "write error response", "path", r.URL.Path, "err", err)
		}
	}
}

// BodyFromStatus builds the REST error body for a gRPC status.
func BodyFromStatus(st *grpcstatus.Status) ErrorBody {
	body := ErrorBody{Code: CodeName(st.Code()), Message: st.Message()}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if body.Reason == "" {
				body.Reason = d.GetReason()
			}
		case *errdetails.BadRequest:
			if body.Field == "" && len(d.GetFieldViolations()) > 0 {
				body.Field = d.GetFieldViolations()[0].GetField()
			}
		}
	}
	return body
}

// CodeName returns the canonical UPPER_SNAKE name of a gRPC code, e.g.
// "NOT_FOUND", as google.rpc.Code spells it.
func CodeName(c codes.Code) string {
	if name, ok := code.Code_name[int32(c)]; ok {
		return name
	}
	return code.Code_UNKNOWN.String()
}
