// Package events is the only place in Reverse ETL that knows the RETL
// stream's subjects, headers and message format.
//
// A record message: subject retl.record.<workspaceId>.<destinationId>.<syncId>,
// data = protojson of switchyard.reverseetl.v1.Record, headers
// Nats-Msg-Id = <syncId>:<runId>:<recordId>:<op> (a re-publish within the
// stream's duplicate window is stored once), Switchyard-Workspace,
// Switchyard-Destination, Switchyard-Sync, Switchyard-Run,
// Switchyard-Record-Id, Switchyard-Record-Op and traceparent.
//
// A result message (written by Delivery): subject
// retl.result.<workspaceId>.<syncId>, data = protojson of
// switchyard.reverseetl.v1.RecordResult.
package events

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	reverseetlv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/reverseetl/v1"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"google.golang.org/protobuf/encoding/protojson"
)

// Header names of record messages (besides Nats-Msg-Id and traceparent).
const (
	HeaderWorkspace   = jetstream.HeaderWorkspace
	HeaderDestination = "Switchyard-Destination"
	HeaderSync        = "Switchyard-Sync"
	HeaderRun         = "Switchyard-Run"
	HeaderRecordID    = "Switchyard-Record-Id"
	HeaderRecordOp    = "Switchyard-Record-Op"
)

// MaxRecordBytes is the largest record message (Segment: 512 KiB of record
// JSON). A larger record fails alone.
const MaxRecordBytes = 512 << 10

// publishAttempts bounds the publishes of one message that JetStream did
// not confirm.
const publishAttempts = 3

// OpName is the lowercase name of an operation, used in Nats-Msg-Id and
// Switchyard-Record-Op.
func OpName(op reverseetlv1.RecordOperation) string {
	switch op {
	case reverseetlv1.RecordOperation_RECORD_OPERATION_ADDED:
		return "added"
	case reverseetlv1.RecordOperation_RECORD_OPERATION_UPDATED:
		return "updated"
	case reverseetlv1.RecordOperation_RECORD_OPERATION_DELETED:
		return "deleted"
	}
	return "unspecified"
}

// MsgID is the Nats-Msg-Id of a record.
func MsgID(r *reverseetlv1.Record) string {
	return r.GetSyncId() + ":" + r.GetRunId() + ":" + r.GetRecordId() + ":" + OpName(r.GetOperation())
}

// Encode renders a record as its message.
func Encode(ctx context.Context, r *reverseetlv1.Record) (*nats.Msg, error) {
	data, err := protojson.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode record %q: %w", r.GetRecordId(), err)
	}
	msg := jetstream.NewMsg(ctx, streams.RETLRecordSubject(r.GetWorkspaceId(), r.GetDestinationId(), r.GetSyncId()), data,
		jetstream.Headers{MsgID: MsgID(r), Workspace: r.GetWorkspaceId()})
	msg.Header.Del(jetstream.HeaderMessageID)
	msg.Header.Set(HeaderDestination, r.GetDestinationId())
	msg.Header.Set(HeaderSync, r.GetSyncId())
	msg.Header.Set(HeaderRun, r.GetRunId())
	msg.Header.Set(HeaderRecordID, r.GetRecordId())
	msg.Header.Set(HeaderRecordOp, OpName(r.GetOperation()))
	return msg, nil
}

// DecodeRecord reads a record message.
func DecodeRecord(data []byte) (*reverseetlv1.Record, error) {
	r := &reverseetlv1.Record{}
	if err := protojson.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	return r, nil
}

// EncodeResult renders a result as Delivery publishes it.
func EncodeResult(ctx context.Context, r *reverseetlv1.RecordResult) (*nats.Msg, error) {
	data, err := protojson.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode result: %w", err)
	}
	id := r.GetSyncId() + ":" + r.GetRunId() + ":" + r.GetRecordId() + ":" + OpName(r.GetOperation()) + ":result"
	return jetstream.NewMsg(ctx, streams.RETLResultSubject(r.GetWorkspaceId(), r.GetSyncId()), data, jetstream.Headers{MsgID: id, Workspace: r.GetWorkspaceId()}), nil
}

// DecodeResult reads a result message.
func DecodeResult(data []byte) (*reverseetlv1.RecordResult, error) {
	r := &reverseetlv1.RecordResult{}
	if err := protojson.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("decode result: %w", err)
	}
	return r, nil
}

// Publisher publishes pages of record messages.
type Publisher struct {
	JS natsjs.JetStream
}

// Publish stores every message in RETL, re-publishing the unconfirmed ones
// (same Nats-Msg-Id, so never twice) up to 3 times. It returns nil only
// when JetStream confirmed every message.
func (p *Publisher) Publish(ctx context.Context, msgs []*nats.Msg) error {
	pending := msgs
	var err error
	for attempt := 0; attempt < publishAttempts && len(pending) > 0; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(time.Duration(attempt) * 200 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		var acks []*natsjs.PubAck
		acks, err = jetstream.PublishAsyncBatch(ctx, p.JS, pending)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var next []*nats.Msg
		for i, a := range acks {
			if a == nil {
				next = append(next, pending[i])
			}
		}
		pending = next
	}
	return fmt.Errorf("publish records: %w", err)
}
