package pipeline

import (
	"encoding/json"
	"fmt"
	"strings"

	reverseetlv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/reverseetl/v1"
	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations"
	"google.golang.org/protobuf/encoding/protojson"
)

// RecordEventType is the event type under which a Reverse ETL record is
// dead-lettered (and recognised again when it is redriven).
const RecordEventType = "retl_record"

// DefaultRecordAction is the action a sync names when it names none.
const DefaultRecordAction = "send"

// DecodeRecord reads a RETL record message (protojson of
// switchyard.reverseetl.v1.Record).
func DecodeRecord(data []byte) (*reverseetlv1.Record, error) {
	r := &reverseetlv1.Record{}
	if err := protojson.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	return r, nil
}

// RecordAction resolves a record's action on the plan's type: the action
// of that name; "send" (the sync's default) on a type without a "send"
// action is the type's first action. Another unknown name is an error.
func (p *Plan) RecordAction(name string) (destinations.Action, error) {
	if name == "" {
		name = DefaultRecordAction
	}
	if a, ok := p.Type.Action(name); ok {
		return a, nil
	}
	if name == DefaultRecordAction && len(p.Type.Actions) > 0 {
		return p.Type.Actions[0], nil
	}
	names := make([]string, len(p.Type.Actions))
	for i, a := range p.Type.Actions {
		names[i] = a.Name
	}
	return destinations.Action{}, fmt.Errorf("destination type %s has no action %q (it has: %s)", p.Type.Slug, name, strings.Join(names, ", "))
}

// PrepareRecord turns a RETL record into the one action call it gets. The
// record event handed to the action is the record's own JSON (workspaceId,
// syncId, runId, modelId, recordId, operation, fields, action, extractedAt,
// attempt) plus the keys of a Segment event of the action's RecordType
// (default track): type, messageId, userId (fields.userId, else the record
// id), anonymousId (fields.anonymousId), timestamp (extractedAt), traits
// (identify) or properties (track, page) = fields, event (fields.event,
// else "Record Added|Updated|Deleted") and name (page: fields.name).
// Webhook and RabbitMQ send it as is; the vendor types build their
// requests from the Segment keys. Filters, routing and subscriptions are
// for events and do not apply to records.
func (p *Plan) PrepareRecord(data []byte, messageID string) (*reverseetlv1.Record, Send, error) {
	rec, err := DecodeRecord(data)
	if err != nil {
		return nil, Send{}, err
	}
	action, err := p.RecordAction(rec.GetAction())
	if err != nil {
		return rec, Send{}, err
	}
	// Re-encode rather than use data: protojson's output is the canonical
	// form whatever the producer wrote.
	canonical, err := protojson.Marshal(rec)
	if err != nil {
		return rec, Send{}, fmt.Errorf("encode record: %w", err)
	}
	ev, err := Decode(canonical)
	if err != nil {
		return rec, Send{}, err
	}
	fields, _ := ev["fields"].(map[string]any)
	if fields == nil {
		fields = map[string]any{}
	}
	typ := action.RecordType
	if typ == "" {
		typ = "track"
	}
	ev["type"] = typ
	ev["messageId"] = messageID
	userID, _ := fields["userId"].(string)
	if userID == "" {
		userID = rec.GetRecordId()
	}
	ev["userId"] = userID
	if anon, ok := fields["anonymousId"].(string); ok && anon != "" {
		ev["anonymousId"] = anon
	}
	if ts, ok := ev["extractedAt"]; ok {
		ev["timestamp"] = ts
	}
	switch typ {
	case "identify":
		ev["traits"] = fields
	default:
		ev["properties"] = fields
		name, _ := fields["event"].(string)
		if name == "" {
			name = "Record " + recordOpTitle(rec.GetOperation())
		}
		ev["event"] = name
		if n, ok := fields["name"].(string); ok && typ == "page" {
			ev["name"] = n
		}
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		return rec, Send{}, fmt.Errorf("encode record event: %w", err)
	}
	return rec, Send{Action: action.Name, Payload: destinations.Payload{MessageID: messageID, Event: ev, Raw: raw}}, nil
}

func recordOpTitle(op reverseetlv1.RecordOperation) string {
	switch op {
	case reverseetlv1.RecordOperation_RECORD_OPERATION_ADDED:
		return "Added"
	case reverseetlv1.RecordOperation_RECORD_OPERATION_UPDATED:
		return "Updated"
	case reverseetlv1.RecordOperation_RECORD_OPERATION_DELETED:
		return "Deleted"
	}
	return "Changed"
}
