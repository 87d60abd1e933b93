package dispatch

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	reverseetlv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/reverseetl/v1"
	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations"
	"github.com/switchyardhq/switchyard/services/delivery/internal/pipeline"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const testSync = "sync-1"

// record is a RETL record of the test workspace's sync-1.
func record(destID, recordID string, op reverseetlv1.RecordOperation, fields map[string]any) *reverseetlv1.Record {
	f, err := structpb.NewStruct(fields)
	if err != nil {
		panic(err)
	}
	return &reverseetlv1.Record{WorkspaceId: testWorkspace, DestinationId: destID, SyncId: testSync, RunId: "run-1", ModelId: "model-1",
		RecordId: recordID, Operation: op, Fields: f, Action: "send", ExtractedAt: timestamppb.New(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)), Attempt: 1}
}

// recordMsgID is the Nats-Msg-Id Reverse ETL gives a record.
func recordMsgID(r *reverseetlv1.Record) string {
	op := strings.ToLower(strings.TrimPrefix(r.GetOperation().String(), "RECORD_OPERATION_"))
	return r.GetSyncId() + ":" + r.GetRunId() + ":" + r.GetRecordId() + ":" + op
}

// publishRecord stores a record in RETL as Reverse ETL does.
func (e *env) publishRecord(t *testing.T, r *reverseetlv1.Record) {
	t.Helper()
	data, err := protojson.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	msg := jetstream.NewMsg(t.Context(), streams.RETLRecordSubject(r.GetWorkspaceId(), r.GetDestinationId(), r.GetSyncId()), data,
		jetstream.Headers{MsgID: recordMsgID(r), Workspace: r.GetWorkspaceId()})
	msg.Header.Del(jetstream.HeaderMessageID)
	if _, err := e.js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
}

// result is one RecordResult with its Nats-Msg-Id.
type result struct {
	msgID string
	res   *reverseetlv1.RecordResult
}

// waitResults reads the results of sync-1 until n arrived.
func (e *env) waitResults(t *testing.T, n int, timeout time.Duration) []result {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var out []result
		cons, err := e.js.OrderedConsumer(t.Context(), streams.RETL, natsjs.OrderedConsumerConfig{FilterSubjects: []string{streams.RETLResultSubject(testWorkspace, testSync)}})
		if err != nil {
			t.Fatal(err)
		}
		for {
			m, err := cons.Next(natsjs.FetchMaxWait(200 * time.Millisecond))
			if err != nil {
				break
			}
			r := &reverseetlv1.RecordResult{}
			if err := protojson.Unmarshal(m.Data(), r); err != nil {
				t.Fatal(err)
			}
			out = append(out, result{msgID: m.Headers().Get(jetstream.HeaderMsgID), res: r})
		}
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d record results after %v, want %d", len(out), timeout, n)
		}
	}
}

// TestRETLRecords: Delivery sends each Reverse ETL record through the
// destination's action with the usual retries and dead letters, and
// publishes one RecordResult per record before acking it.
func TestRETLRecords(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ok := newStub(t)
	flaky := newStub(t, step{Status: 503, Headers: map[string]string{"Retry-After": "1"}})
	rejects := newStub(t, step{Status: 400, Body: "bad record"})
	amp := newStub(t)
	specs := []pipeline.Spec{
		hookSpec("hook-ok", ok.srv.URL, nil), hookSpec("hook-flaky", flaky.srv.URL, nil), hookSpec("hook-400", rejects.srv.URL, nil),
		{ID: "amp", WorkspaceID: testWorkspace, SourceID: testSource, Name: "amp", Type: "amplitude", CreatedAt: time.Now(),
			Settings: map[string]any{"apiKey": "KEY", "endpoint": amp.srv.URL}},
	}
	added := record("hook-ok", "u-1", reverseetlv1.RecordOperation_RECORD_OPERATION_ADDED, map[string]any{"userId": "u-1", "email": "ada@example.com", "plan": "pro"})
	// Published before Delivery runs: the consumer starts at the first record.
	e.publishRecord(t, added)
	r := e.start(t, Options{}, specs...)
	deleted := record("hook-flaky", "u-2", reverseetlv1.RecordOperation_RECORD_OPERATION_DELETED, map[string]any{"userId": "u-2", "email": nil, "plan": nil})
	e.publishRecord(t, deleted)
	rejected := record("hook-400", "u-3", reverseetlv1.RecordOperation_RECORD_OPERATION_UPDATED, map[string]any{"userId": "u-3", "plan": "free"})
	e.publishRecord(t, rejected)
	identify := record("amp", "u-4", reverseetlv1.RecordOperation_RECORD_OPERATION_ADDED, map[string]any{"email": "cy@example.com"})
	identify.Action = "identifyUser"
	e.publishRecord(t, identify)
	unknown := record("amp", "u-5", reverseetlv1.RecordOperation_RECORD_OPERATION_ADDED, map[string]any{"email": "dee@example.com"})
	unknown.Action = "teleport"
	e.publishRecord(t, unknown)

	results := e.waitResults(t, 5, 20*time.Second)
	byRecord := map[string]result{}
	for _, res := range results {
		byRecord[res.res.GetRecordId()] = res
	}
	t.Run("one result per record, delivered or failed with the reason", func(t *testing.T) {
		if len(results) != 5 {
			t.Errorf("results = %d, want 5", len(results))
		}
		for _, tc := range []struct {
			rec       *reverseetlv1.Record
			delivered bool
			errHas    string
		}{
			{added, true, ""}, {deleted, true, ""}, {rejected, false, "400"}, {identify, true, ""}, {unknown, false, `no action "teleport"`},
		} {
			got, ok := byRecord[tc.rec.GetRecordId()]
			if !ok {
				t.Errorf("no result for %s", tc.rec.GetRecordId())
				continue
			}
			res := got.res
			if res.GetDelivered() != tc.delivered || !strings.Contains(res.GetError(), tc.errHas) || (tc.delivered && res.GetError() != "") {
				t.Errorf("%s: delivered %v error %q, want %v with %q", tc.rec.GetRecordId(), res.GetDelivered(), res.GetError(), tc.delivered, tc.errHas)
			}
			if res.GetWorkspaceId() != testWorkspace || res.GetSyncId() != testSync || res.GetRunId() != "run-1" || res.GetOperation() != tc.rec.GetOperation() ||
				res.GetDestinationId() != tc.rec.GetDestinationId() || res.GetAttempt() != 1 {
				t.Errorf("%s: result = %v, want the record's workspace, sync, run, operation, destination and attempt", tc.rec.GetRecordId(), res)
			}
			if want := recordMsgID(tc.rec) + ":result"; got.msgID != want {
				t.Errorf("%s: result Nats-Msg-Id = %q, want %q", tc.rec.GetRecordId(), got.msgID, want)
			}
		}
	})
	t.Run("webhook gets the record event with the idempotency key", func(t *testing.T) {
		a := ok.waitAttempts(t, 1, 5*time.Second)
		if len(a) != 1 || a[0].Key != recordMsgID(added) {
			t.Fatalf("attempts = %d, key %q; want 1 with %q", len(a), a[0].Key, recordMsgID(added))
		}
		var body map[string]any
		if err := json.Unmarshal(a[0].Body, &body); err != nil {
			t.Fatal(err)
		}
		fields, _ := body["fields"].(map[string]any)
		if body["recordId"] != "u-1" || body["operation"] != "RECORD_OPERATION_ADDED" || body["messageId"] != recordMsgID(added) ||
			body["userId"] != "u-1" || body["type"] != "track" || body["event"] != "Record Added" || fields["plan"] != "pro" || body["syncId"] != testSync {
			t.Errorf("body = %s", a[0].Body)
		}
	})
	t.Run("a 503 is retried after Retry-After; a deleted record carries null fields", func(t *testing.T) {
		a := flaky.waitAttempts(t, 2, 5*time.Second)
		if gap := a[1].At.Sub(a[0].At); gap < time.Second {
			t.Errorf("retry %v after the 503, want >= 1s", gap)
		}
		var body map[string]any
		_ = json.Unmarshal(a[1].Body, &body)
		fields, _ := body["fields"].(map[string]any)
		if body["operation"] != "RECORD_OPERATION_DELETED" || body["event"] != "Record Deleted" || fields["plan"] != nil || len(fields) != 3 {
			t.Errorf("body = %s", a[1].Body)
		}
		if tot := r.d.Metrics().Total("hook-flaky"); tot.Retried != 1 || tot.Delivered != 1 {
			t.Errorf("metrics = %+v, want retried 1, delivered 1", tot)
		}
	})
	t.Run("a rejected record is dead-lettered as retl_record", func(t *testing.T) {
		ls := e.waitLetters(t, "hook-400", 1, 5*time.Second)
		if l := ls[0]; l.Reason != destinations.ReasonRejected || l.Status != 400 || l.EventType != pipeline.RecordEventType || l.MessageID != recordMsgID(rejected) {
			t.Errorf("dead letter = %+v", l)
		}
		if n := len(rejects.attempts()); n != 1 {
			t.Errorf("attempts = %d, want 1", n)
		}
	})
	t.Run("an action of a vendor type builds the vendor's request", func(t *testing.T) {
		a := amp.waitAttempts(t, 1, 5*time.Second)
		var req struct {
			APIKey string `json:"api_key"`
			Events []struct {
				UserID         string         `json:"user_id"`
				EventType      string         `json:"event_type"`
				InsertID       string         `json:"insert_id"`
				UserProperties map[string]any `json:"user_properties"`
			} `json:"events"`
		}
		if err := json.Unmarshal(a[0].Body, &req); err != nil || len(req.Events) != 1 {
			t.Fatalf("amplitude body %s: %v", a[0].Body, err)
		}
		ev := req.Events[0]
		set, _ := ev.UserProperties["$set"].(map[string]any)
		if req.APIKey != "KEY" || ev.UserID != "u-4" || ev.EventType != "$identify" || ev.InsertID != recordMsgID(identify) || set["email"] != "cy@example.com" {
			t.Errorf("amplitude body = %s", a[0].Body)
		}
		if n := len(amp.attempts()); n != 1 {
			t.Errorf("amplitude requests = %d, want 1 (the unknown action sends nothing)", n)
		}
	})
}
