package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	reverseetlv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/reverseetl/v1"
	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"google.golang.org/protobuf/encoding/protojson"
)

// recordSubjectPrefix starts the subject of every Reverse ETL record
// (streams.RETLRecordSubject).
const recordSubjectPrefix = "retl.record."

// publishResult tells Reverse ETL what became of a record: delivered when
// f is nil, else failed with f's text. It publishes one RecordResult to
// retl.result.<ws>.<syncId> with Nats-Msg-Id "<record's Nats-Msg-Id>:result"
// (a duplicate after a crash before the ack is stored once). Events and
// records that could not be decoded publish nothing.
func (s *session) publishResult(t *tracked, f *destinations.Failure) error {
	if !t.isRecord || t.record == nil {
		return nil
	}
	rec := t.record
	res := &reverseetlv1.RecordResult{
		WorkspaceId: rec.GetWorkspaceId(), SyncId: rec.GetSyncId(), RunId: rec.GetRunId(), RecordId: rec.GetRecordId(),
		Operation: rec.GetOperation(), Delivered: f == nil, DestinationId: s.plan.Spec.ID, Attempt: max(rec.GetAttempt(), 1),
	}
	if f != nil {
		res.Error = f.Error()
	}
	data, err := protojson.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode record result: %w", err)
	}
	ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
	defer cancel()
	msg := jetstream.NewMsg(ctx, streams.RETLResultSubject(rec.GetWorkspaceId(), rec.GetSyncId()), data,
		jetstream.Headers{MsgID: t.resultID, Workspace: rec.GetWorkspaceId()})
	if _, err := s.d.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish record result %s: %w", t.resultID, err)
	}
	return nil
}

// orderKey is the key ordered delivery serialises on: the event's userId
// (else its anonymousId), or a record's fields.userId (else its record
// id). "" (neither) is delivered unordered.
func orderKey(raw []byte, record bool) string {
	if record {
		var r struct {
			RecordID string `json:"recordId"`
			Fields   struct {
				UserID any `json:"userId"`
			} `json:"fields"`
		}
		if json.Unmarshal(raw, &r) != nil {
			return ""
		}
		if u, ok := r.Fields.UserID.(string); ok && u != "" {
			return "u:" + u
		}
		if r.RecordID != "" {
			return "u:" + r.RecordID
		}
		return ""
	}
	var ev struct {
		UserID      any `json:"userId"`
		AnonymousID any `json:"anonymousId"`
	}
	if json.Unmarshal(raw, &ev) != nil {
		return ""
	}
	if u, ok := ev.UserID.(string); ok && strings.TrimSpace(u) != "" {
		return "u:" + u
	}
	if a, ok := ev.AnonymousID.(string); ok && strings.TrimSpace(a) != "" {
		return "a:" + a
	}
	return ""
}
