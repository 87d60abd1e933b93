// Package server implements the gRPC IngestService over the same parser,
// key map and publisher as the HTTP Tracking API.
package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	eventv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/event/v1"
	ingestv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/ingest/v1"
	"github.com/switchyardhq/switchyard/services/ingest/internal/httpapi"
	"github.com/switchyardhq/switchyard/services/ingest/internal/tracking"
	"github.com/switchyardhq/switchyard/services/internal/platform/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
)

// Server implements ingestv1.IngestServiceServer.
type Server struct {
	ingestv1.UnimplementedIngestServiceServer
	Keys      *httpapi.Keys
	Parser    *tracking.Parser
	Publisher httpapi.Publisher
	Logger    *slog.Logger
}

// resolve finds the source of a call's write key. Before the key map
// received its first configuration no key can be judged: Unavailable (a
// client retries it) with a retry-after header of 1 s, as the HTTP API's
// 503 — never Unauthenticated for a key that may be valid.
func (s *Server) resolve(ctx context.Context, writeKey string) (httpapi.SourceRef, error) {
	if !s.Keys.Loaded() {
		_ = grpc.SetHeader(ctx, metadata.Pairs("retry-after", "1"))
		return httpapi.SourceRef{}, status.Error(codes.Unavailable, "INGEST_CONFIG_UNAVAILABLE", httpapi.ConfigUnavailableMessage, nil)
	}
	if writeKey == "" {
		return httpapi.SourceRef{}, status.Error(codes.Unauthenticated, "INGEST_MISSING_WRITE_KEY", "write_key is required", nil)
	}
	ref, ok := s.Keys.Lookup(writeKey)
	if !ok {
		return ref, status.Error(codes.Unauthenticated, "INGEST_INVALID_WRITE_KEY", "unknown write key", nil)
	}
	if !ref.Enabled {
		return ref, status.Error(codes.PermissionDenied, "INGEST_SOURCE_DISABLED", "the source of this write key is disabled", nil)
	}
	return ref, nil
}

// eventTypes maps the proto enum to the Tracking API's type names.
var eventTypes = map[eventv1.EventType]string{
	eventv1.EventType_EVENT_TYPE_IDENTIFY: "identify",
	eventv1.EventType_EVENT_TYPE_TRACK:    "track",
	eventv1.EventType_EVENT_TYPE_PAGE:     "page",
	eventv1.EventType_EVENT_TYPE_SCREEN:   "screen",
	eventv1.EventType_EVENT_TYPE_GROUP:    "group",
	eventv1.EventType_EVENT_TYPE_ALIAS:    "alias",
}

// toObject renders a typed event as the Segment JSON object the parser
// takes. rpcType is the type the RPC implies ("" for Batch, where the
// event's own type applies); an event whose own type is set must agree
// with it. The rejection speaks the API's terms.
func toObject(ev *eventv1.Event, rpcType string) (map[string]any, *tracking.Rejection) {
	if ev == nil {
		return nil, &tracking.Rejection{Code: "missing_event_object", Message: "the request has no event"}
	}
	own, known := eventTypes[ev.GetType()]
	if !known && ev.GetType() != eventv1.EventType_EVENT_TYPE_UNSPECIFIED {
		return nil, &tracking.Rejection{Code: "invalid_type", Message: fmt.Sprintf("type %d is not one of identify, track, page, screen, group, alias", int32(ev.GetType()))}
	}
	if rpcType != "" && known && own != rpcType {
		return nil, &tracking.Rejection{Code: "type_mismatch", Message: fmt.Sprintf("event type %s does not match the %s call", own, rpcType)}
	}
	b, err := protojson.MarshalOptions{UseProtoNames: false}.Marshal(ev)
	if err != nil {
		// Only values JSON cannot hold get here: NaN or infinite
		// numbers in a Struct, timestamps outside years 1 to 9999.
		return nil, &tracking.Rejection{Code: "invalid_event", Message: "event holds a value JSON cannot carry (a NaN or infinite number, or a timestamp outside years 1 to 9999)"}
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var obj map[string]any
	if err := d.Decode(&obj); err != nil || obj == nil {
		obj = map[string]any{}
	}
	delete(obj, "type")
	switch {
	case rpcType != "":
		obj["type"] = rpcType
	case known:
		obj["type"] = own
	}
	return obj, nil
}

// parse validates and enriches one event of a call.
func (s *Server) parse(ev *eventv1.Event, rpcType string) (tracking.Event, *tracking.Rejection) {
	obj, rej := toObject(ev, rpcType)
	if rej != nil {
		return tracking.Event{}, rej
	}
	return s.Parser.ParseObject(obj, tracking.Meta{})
}

func (s *Server) one(ctx context.Context, writeKey string, ev *eventv1.Event, typ string) (string, error) {
	ref, err := s.resolve(ctx, writeKey)
	if err != nil {
		return "", err
	}
	out, rej := s.parse(ev, typ)
	if rej != nil {
		return "", status.InvalidField("INGEST_"+strings.ToUpper(rej.Code), "event", rej.Message)
	}
	if err := s.store(ctx, ref, []tracking.Event{out}); err != nil {
		return "", err
	}
	return out.MessageID, nil
}

func (s *Server) store(ctx context.Context, ref httpapi.SourceRef, evs []tracking.Event) error {
	if err := s.Publisher.Publish(ctx, ref.WorkspaceID, ref.SourceID, evs); err != nil {
		s.Logger.ErrorContext(ctx, "ingest: store events", "source", ref.SourceID, "err", err)
		return status.Error(codes.Unavailable, "INGEST_STORE_UNAVAILABLE", httpapi.StoreUnavailableMessage, nil)
	}
	return nil
}

// Identify implements the RPC.
func (s *Server) Identify(ctx context.Context, r *ingestv1.IdentifyRequest) (*ingestv1.IdentifyResponse, error) {
	id, err := s.one(ctx, r.GetWriteKey(), r.GetEvent(), "identify")
	return &ingestv1.IdentifyResponse{MessageId: id}, err
}

// Track implements the RPC.
func (s *Server) Track(ctx context.Context, r *ingestv1.TrackRequest) (*ingestv1.TrackResponse, error) {
	id, err := s.one(ctx, r.GetWriteKey(), r.GetEvent(), "track")
	return &ingestv1.TrackResponse{MessageId: id}, err
}

// Page implements the RPC.
func (s *Server) Page(ctx context.Context, r *ingestv1.PageRequest) (*ingestv1.PageResponse, error) {
	id, err := s.one(ctx, r.GetWriteKey(), r.GetEvent(), "page")
	return &ingestv1.PageResponse{MessageId: id}, err
}

// Screen implements the RPC.
func (s *Server) Screen(ctx context.Context, r *ingestv1.ScreenRequest) (*ingestv1.ScreenResponse, error) {
	id, err := s.one(ctx, r.GetWriteKey(), r.GetEvent(), "screen")
	return &ingestv1.ScreenResponse{MessageId: id}, err
}

// Group implements the RPC.
func (s *Server) Group(ctx context.Context, r *ingestv1.GroupRequest) (*ingestv1.GroupResponse, error) {
	id, err := s.one(ctx, r.GetWriteKey(), r.GetEvent(), "group")
	return &ingestv1.GroupResponse{MessageId: id}, err
}

// Alias implements the RPC.
func (s *Server) Alias(ctx context.Context, r *ingestv1.AliasRequest) (*ingestv1.AliasResponse, error) {
	id, err := s.one(ctx, r.GetWriteKey(), r.GetEvent(), "alias")
	return &ingestv1.AliasResponse{MessageId: id}, err
}

// Batch implements the RPC: valid events are stored, invalid ones listed.
func (s *Server) Batch(ctx context.Context, r *ingestv1.BatchRequest) (*ingestv1.BatchResponse, error) {
	ref, err := s.resolve(ctx, r.GetWriteKey())
	if err != nil {
		return nil, err
	}
	if len(r.GetEvents()) == 0 {
		return nil, status.InvalidField("INGEST_EMPTY_BATCH", "events", "batch has no events")
	}
	if len(r.GetEvents()) > tracking.MaxBatchEvents {
		return nil, status.InvalidField("INGEST_BATCH_TOO_MANY_EVENTS", "events", fmt.Sprintf("batch has %d events; the limit is %d", len(r.GetEvents()), tracking.MaxBatchEvents))
	}
	resp := &ingestv1.BatchResponse{}
	var evs []tracking.Event
	// The HTTP API's 500 KB per request, on the accepted events' Sizes (their
	// JSON before enrichment; the server's fields add at most
	// tracking.EnrichmentAllowance to each), refused as soon as it is over.
	size := 0
	for i, ev := range r.GetEvents() {
		out, rej := s.parse(ev, "")
		if rej != nil {
			resp.Rejected = append(resp.Rejected, &ingestv1.Rejection{Index: int32(i), Code: rej.Code, Message: rej.Message})
			continue
		}
		evs = append(evs, out)
		resp.MessageIds = append(resp.MessageIds, out.MessageID)
		if size += out.Size; size > tracking.MaxRequestBytes {
			return nil, status.InvalidField("INGEST_REQUEST_TOO_LARGE", "events", fmt.Sprintf("the events are over %d bytes of JSON (%d bytes by event %d); send fewer events per request", tracking.MaxRequestBytes, size, i))
		}
	}
	if len(evs) == 0 {
		return nil, status.InvalidField("INGEST_NO_VALID_EVENTS", "events", "none of the events is valid; first: "+resp.Rejected[0].GetMessage())
	}
	if err := s.store(ctx, ref, evs); err != nil {
		return nil, err
	}
	resp.Accepted = int32(len(evs))
	return resp, nil
}
