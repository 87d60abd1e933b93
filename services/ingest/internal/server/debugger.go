package server

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/switchyardhq/switchyard/services/internal/platform/catalogwatch"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	ingestv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/ingest/v1"
	"github.com/switchyardhq/switchyard/services/ingest/internal/debugger"
	"github.com/switchyardhq/switchyard/services/ingest/internal/httpapi"
	"github.com/switchyardhq/switchyard/services/internal/platform/auth"
	"github.com/switchyardhq/switchyard/services/internal/platform/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Debugger limits.
const (
	DefaultEventsLimit = 50
	MaxEventsLimit     = 200
)

// WithDebugger is the IngestService with the live event debugger's RPC:
// Server's RPCs plus ListSourceEvents.
type WithDebugger struct {
	*Server
	Debugger *debugger.Debugger
	// Snapshots returns the current configuration (to check that a source
	// belongs to the caller's workspace).
	Snapshots func() []*catalogv1.ConfigSnapshot
}

// ListSourceEvents implements the RPC.
func (s *WithDebugger) ListSourceEvents(ctx context.Context, req *ingestv1.ListSourceEventsRequest) (*ingestv1.ListSourceEventsResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetSourceId() == "" {
		return nil, status.InvalidField("INGEST_SOURCE_ID_REQUIRED", "sourceId", "sourceId is required")
	}
	if !s.Keys.Loaded() {
		// Not NotFound: the source may well exist.
		return nil, status.Error(codes.Unavailable, "INGEST_CONFIG_UNAVAILABLE", httpapi.ConfigUnavailableMessage, nil)
	}
	if catalogwatch.FindSource(s.Snapshots(), p.GetWorkspaceId(), req.GetSourceId()) == nil {
		return nil, status.Error(codes.NotFound, "INGEST_SOURCE_NOT_FOUND", fmt.Sprintf("source %q not found", req.GetSourceId()), nil)
	}
	limit := int(req.GetLimit())
	switch {
	case limit == 0:
		limit = DefaultEventsLimit
	case limit < 0 || limit > MaxEventsLimit:
		return nil, status.InvalidField("INGEST_LIMIT_RANGE", "limit", fmt.Sprintf("limit must be between 1 and %d", MaxEventsLimit))
	}
	after := req.GetAfter()
	if after > s.Debugger.LastSeq() {
		// A cursor from before a restart (seqs start again at 1): start over
		// rather than hide every new event.
		after = 0
	}
	resp := &ingestv1.ListSourceEventsResponse{LastSeq: after}
	for _, e := range s.Debugger.Since(req.GetSourceId(), after, limit) {
		resp.Events = append(resp.Events, &ingestv1.SourceEvent{
			Seq: e.Seq, ReceivedAt: timestamppb.New(e.ReceivedAt), MessageId: e.MessageID, Type: e.Type,
			Event: eventName(e), Status: e.Status, Code: e.Code, Reason: e.Reason, Payload: e.Payload,
		})
		resp.LastSeq = max(resp.LastSeq, e.Seq)
	}
	return resp, nil
}

// eventName reads the track event or page/screen name from a stored
// payload; the debugger keeps only bytes, so the name is decoded when read.
func eventName(e debugger.Entry) string {
	if e.Status == debugger.Rejected {
		return ""
	}
	var v struct {
		Event string `json:"event"`
		Name  string `json:"name"`
	}
	if json.Unmarshal([]byte(e.Payload), &v) != nil {
		return ""
	}
	if v.Event != "" {
		return v.Event
	}
	return v.Name
}
