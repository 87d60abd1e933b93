package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	natsjs "github.com/nats-io/nats.go/jetstream"
	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	eventv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/event/v1"
	ingestv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/ingest/v1"
	"github.com/switchyardhq/switchyard/services/ingest/internal/events"
	"github.com/switchyardhq/switchyard/services/ingest/internal/httpapi"
	"github.com/switchyardhq/switchyard/services/ingest/internal/server"
	"github.com/switchyardhq/switchyard/services/ingest/internal/tracking"
	"github.com/switchyardhq/switchyard/services/internal/platform/grpcserver"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/status"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	wk      = "WK_GRPC"
	wkOff   = "WK_GRPC_DISABLED"
	ws, src = "ws-g", "src-g"
)

// fixedNow is the parser's clock: receivedAt of every stored event.
var fixedNow = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

type env struct {
	client ingestv1.IngestServiceClient
	stream natsjs.Stream
	ns     *natsserver.Server
	keys   *httpapi.Keys
}

// loadedKeys is a key map that received its configuration: an enabled and
// a disabled source.
func loadedKeys() *httpapi.Keys {
	keys := &httpapi.Keys{}
	keys.Update([]*catalogv1.ConfigSnapshot{{Sources: []*catalogv1.Source{
		{Id: src, WorkspaceId: ws, Enabled: true, WriteKeys: []string{wk}},
		{Id: "src-off", WorkspaceId: ws, Enabled: false, WriteKeys: []string{wkOff}},
	}}})
	return keys
}

// newEnv serves IngestService on a real TCP listener, built by the
// platform's grpcserver (its status mapping included), over the real parser
// and publisher on an embedded JetStream, with loadedKeys.
func newEnv(t *testing.T, cfg func(*natsjs.StreamConfig)) *env {
	t.Helper()
	return newEnvWithKeys(t, cfg, loadedKeys())
}

// newEnvWithKeys is newEnv over the given key map.
func newEnvWithKeys(t *testing.T, cfg func(*natsjs.StreamConfig), keys *httpapi.Keys) *env {
	t.Helper()
	ns, conn := testenv.NATS(t)
	sc := streams.EventsConfig(streams.DefaultOptions)
	sc.Replicas = 1
	if cfg != nil {
		cfg(&sc)
	}
	stream, err := jetstream.EnsureStream(t.Context(), conn.JS, sc)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	dd, err := events.NewDedupe(t.Context(), conn.JS, events.DedupeOptions{Window: time.Hour, FilterBits: 1 << 16}, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = dd.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	var n atomic.Int64
	parser := &tracking.Parser{Now: func() time.Time { return fixedNow }, NewID: func() string { return "gen-" + strconv.FormatInt(n.Add(1), 10) }}
	srv, _ := grpcserver.New(grpcserver.Options{Logger: logger})
	ingestv1.RegisterIngestServiceServer(srv, &server.Server{
		Keys: keys, Parser: parser, Logger: logger,
		Publisher: &events.Publisher{JS: conn.JS, Dedupe: dd, Timeout: 2 * time.Second},
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return &env{client: ingestv1.NewIngestServiceClient(cc), stream: stream, ns: ns, keys: keys}
}

// stored returns the events on EVENTS by messageId, checking each
// message's subject and Nats-Msg-Id.
func (e *env) stored(t *testing.T) map[string]map[string]any {
	t.Helper()
	info, err := e.stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := e.stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		packed, err := jetstream.UnpackData(m.Header, m.Data)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		if m.Subject != "events."+ws+"."+src || (!jetstream.IsPack(m.Header) && m.Header.Get(natsjs.MsgIDHeader) != ws+"/"+packed[0].MessageID) {
			t.Errorf("message %d: subject %s, Nats-Msg-Id %q", seq, m.Subject, m.Header.Get(natsjs.MsgIDHeader))
		}
		for _, p := range packed {
			var ev map[string]any
			if err := json.Unmarshal(p.JSON, &ev); err != nil {
				t.Fatalf("message %d event %d is not JSON: %v", seq, p.Index, err)
			}
			id, _ := ev["messageId"].(string)
			if id != p.MessageID {
				t.Errorf("message %d event %d: messageId %q, index says %q", seq, p.Index, id, p.MessageID)
			}
			if _, dup := out[id]; dup {
				t.Errorf("messageId %s stored twice", id)
			}
			out[id] = ev
		}
	}
	return out
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// call runs the RPC of typ with one event and returns its messageId.
func call(ctx context.Context, c ingestv1.IngestServiceClient, typ, key string, ev *eventv1.Event) (string, error) {
	switch typ {
	case "identify":
		r, err := c.Identify(ctx, &ingestv1.IdentifyRequest{WriteKey: key, Event: ev})
		return r.GetMessageId(), err
	case "track":
		r, err := c.Track(ctx, &ingestv1.TrackRequest{WriteKey: key, Event: ev})
		return r.GetMessageId(), err
	case "page":
		r, err := c.Page(ctx, &ingestv1.PageRequest{WriteKey: key, Event: ev})
		return r.GetMessageId(), err
	case "screen":
		r, err := c.Screen(ctx, &ingestv1.ScreenRequest{WriteKey: key, Event: ev})
		return r.GetMessageId(), err
	case "group":
		r, err := c.Group(ctx, &ingestv1.GroupRequest{WriteKey: key, Event: ev})
		return r.GetMessageId(), err
	case "alias":
		r, err := c.Alias(ctx, &ingestv1.AliasRequest{WriteKey: key, Event: ev})
		return r.GetMessageId(), err
	}
	panic("unknown type " + typ)
}

// wantStatus checks err's code, ErrorInfo reason, field and message.
func wantStatus(t *testing.T, err error, code codes.Code, reason, field, msg string) {
	t.Helper()
	st, _ := grpcstatus.FromError(err)
	if st.Code() != code || status.Reason(err) != reason || status.Field(err) != field || st.Message() != msg {
		t.Errorf("got %s %s field %q %q\nwant %s %s field %q %q", st.Code(), status.Reason(err), status.Field(err), st.Message(), code, reason, field, msg)
	}
}

func TestSingleCallsStoreTheSegmentJSON(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		typ  string
		ev   *eventv1.Event
		want map[string]any // exact stored JSON
	}{
		{"identify", &eventv1.Event{MessageId: "g-identify", UserId: "u-1", Traits: mustStruct(t, map[string]any{"plan": "pro", "seats": 3})},
			map[string]any{"type": "identify", "messageId": "g-identify", "userId": "u-1", "traits": map[string]any{"plan": "pro", "seats": 3.0}}},
		{"track", &eventv1.Event{MessageId: "g-track", UserId: "u-1", Event: "Order Completed", Properties: mustStruct(t, map[string]any{"total": 12.5, "tags": []any{"a", "b"}}),
			Context: mustStruct(t, map[string]any{"library": map[string]any{"name": "grpc-test"}}), Integrations: mustStruct(t, map[string]any{"All": false})},
			map[string]any{"type": "track", "messageId": "g-track", "userId": "u-1", "event": "Order Completed", "properties": map[string]any{"total": 12.5, "tags": []any{"a", "b"}},
				"context": map[string]any{"library": map[string]any{"name": "grpc-test"}}, "integrations": map[string]any{"All": false}}},
		{"page", &eventv1.Event{MessageId: "g-page", AnonymousId: "anon-1", Name: "Pricing", Category: "Docs", Properties: mustStruct(t, map[string]any{"path": "/pricing"})},
			map[string]any{"type": "page", "messageId": "g-page", "anonymousId": "anon-1", "name": "Pricing", "category": "Docs", "properties": map[string]any{"path": "/pricing"}}},
		{"screen", &eventv1.Event{MessageId: "g-screen", UserId: "u-1", Name: "Home"},
			map[string]any{"type": "screen", "messageId": "g-screen", "userId": "u-1", "name": "Home"}},
		{"group", &eventv1.Event{MessageId: "g-group", UserId: "u-1", GroupId: "acme", Traits: mustStruct(t, map[string]any{"industry": "rail"})},
			map[string]any{"type": "group", "messageId": "g-group", "userId": "u-1", "groupId": "acme", "traits": map[string]any{"industry": "rail"}}},
		{"alias", &eventv1.Event{MessageId: "g-alias", UserId: "u-1", PreviousId: "anon-1"},
			map[string]any{"type": "alias", "messageId": "g-alias", "userId": "u-1", "previousId": "anon-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" stores the event with the server fields", func(t *testing.T) {
			id, err := call(t.Context(), e.client, tt.typ, wk, tt.ev)
			if err != nil || id != tt.ev.MessageId {
				t.Fatalf("messageId %q, err %v; want %q", id, err, tt.ev.MessageId)
			}
			want := map[string]any{"receivedAt": "2026-12-03T12:00:00.000Z", "timestamp": "2026-12-03T12:00:00.000Z"}
			for k, v := range tt.want {
				want[k] = v
			}
			got := e.stored(t)[id]
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("stored\n %s\nwant\n %s", gotJSON, wantJSON)
			}
		})
	}
	t.Run("the type may be set on the event when it matches the call", func(t *testing.T) {
		id, err := call(t.Context(), e.client, "track", wk, &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, MessageId: "g-typed", UserId: "u", Event: "E"})
		if err != nil || id != "g-typed" || e.stored(t)["g-typed"]["type"] != "track" {
			t.Errorf("messageId %q err %v", id, err)
		}
	})
	t.Run("a missing messageId is generated and returned", func(t *testing.T) {
		id, err := call(t.Context(), e.client, "track", wk, &eventv1.Event{UserId: "u", Event: "E"})
		if err != nil || !strings.HasPrefix(id, "gen-") || e.stored(t)[id] == nil {
			t.Errorf("messageId %q err %v", id, err)
		}
	})
	t.Run("client times are corrected with sentAt", func(t *testing.T) {
		// The device clock is 10 s ahead: sent at 12:00:10 by its clock, the event 5 s before.
		ev := &eventv1.Event{MessageId: "g-times", UserId: "u", Event: "E",
			Timestamp: timestamppb.New(time.Date(2026, 12, 3, 12, 0, 5, 0, time.UTC)), SentAt: timestamppb.New(time.Date(2026, 12, 3, 12, 0, 10, 0, time.UTC))}
		if _, err := call(t.Context(), e.client, "track", wk, ev); err != nil {
			t.Fatal(err)
		}
		got := e.stored(t)["g-times"]
		if got["timestamp"] != "2026-12-03T11:59:55.000Z" || got["originalTimestamp"] != "2026-12-03T12:00:05Z" || got["receivedAt"] != "2026-12-03T12:00:00.000Z" {
			t.Errorf("timestamp %v originalTimestamp %v receivedAt %v", got["timestamp"], got["originalTimestamp"], got["receivedAt"])
		}
	})
	t.Run("a repeated messageId is stored once and answered with its id", func(t *testing.T) {
		for range 2 {
			if id, err := call(t.Context(), e.client, "track", wk, &eventv1.Event{MessageId: "g-dup", UserId: "u", Event: "E"}); err != nil || id != "g-dup" {
				t.Fatalf("messageId %q err %v", id, err)
			}
		}
		e.stored(t) // fails on a messageId stored twice
	})
}

func TestValidationErrors(t *testing.T) {
	e := newEnv(t, nil)
	big := strings.Repeat("x", tracking.MaxEventBytes)
	tests := []struct {
		name, typ string
		ev        *eventv1.Event
		reason    string
		msg       string
	}{
		{"no event", "track", nil, "INGEST_MISSING_EVENT_OBJECT", "the request has no event"},
		{"no userId or anonymousId", "identify", &eventv1.Event{Traits: mustStruct(t, map[string]any{"a": 1})}, "INGEST_MISSING_USER_ID", "userId or anonymousId is required"},
		{"blank userId", "identify", &eventv1.Event{UserId: "  "}, "INGEST_MISSING_USER_ID", "userId or anonymousId is required"},
		{"track without event", "track", &eventv1.Event{UserId: "u"}, "INGEST_MISSING_EVENT", "track needs a non-blank event name"},
		{"track with a blank event", "track", &eventv1.Event{UserId: "u", Event: " "}, "INGEST_MISSING_EVENT", "track needs a non-blank event name"},
		{"group without groupId", "group", &eventv1.Event{UserId: "u"}, "INGEST_MISSING_GROUP_ID", "group needs groupId"},
		{"alias without previousId", "alias", &eventv1.Event{UserId: "u"}, "INGEST_MISSING_PREVIOUS_ID", "alias needs previousId and userId"},
		{"alias without userId", "alias", &eventv1.Event{AnonymousId: "a", PreviousId: "p"}, "INGEST_MISSING_PREVIOUS_ID", "alias needs previousId and userId"},
		{"messageId over 100 characters", "track", &eventv1.Event{UserId: "u", Event: "E", MessageId: strings.Repeat("m", 101)}, "INGEST_MESSAGE_ID_TOO_LONG", "messageId has 101 characters; the limit is 100"},
		{"event over 32 KB", "track", &eventv1.Event{MessageId: "big-1", UserId: "u", Event: "E", Properties: mustStruct(t, map[string]any{"blob": big})}, "INGEST_EVENT_TOO_LARGE", "event is 32854 bytes; the limit is 32768"},
		{"a type that is not the call's", "track", &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_IDENTIFY, UserId: "u", Event: "E"}, "INGEST_TYPE_MISMATCH", "event type identify does not match the track call"},
		{"a type number outside the enum", "track", &eventv1.Event{Type: eventv1.EventType(42), UserId: "u", Event: "E"}, "INGEST_INVALID_TYPE", "type 42 is not one of identify, track, page, screen, group, alias"},
		{"a NaN number", "track", &eventv1.Event{UserId: "u", Event: "E", Properties: &structpb.Struct{Fields: map[string]*structpb.Value{"x": structpb.NewNumberValue(math.NaN())}}},
			"INGEST_INVALID_EVENT", "event holds a value JSON cannot carry (a NaN or infinite number, or a timestamp outside years 1 to 9999)"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is InvalidArgument "+tt.reason, func(t *testing.T) {
			_, err := call(t.Context(), e.client, tt.typ, wk, tt.ev)
			wantStatus(t, err, codes.InvalidArgument, tt.reason, "event", tt.msg)
		})
	}
	if n := len(e.stored(t)); n != 0 {
		t.Errorf("%d events stored by refused calls", n)
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t, nil)
	ev := &eventv1.Event{UserId: "u", Event: "E", Name: "N", GroupId: "g", PreviousId: "p"}
	tests := []struct {
		name, key   string
		code        codes.Code
		reason, msg string
	}{
		{"no write key", "", codes.Unauthenticated, "INGEST_MISSING_WRITE_KEY", "write_key is required"},
		{"unknown write key", "WK_NOPE", codes.Unauthenticated, "INGEST_INVALID_WRITE_KEY", "unknown write key"},
		{"disabled source", wkOff, codes.PermissionDenied, "INGEST_SOURCE_DISABLED", "the source of this write key is disabled"},
	}
	for _, tt := range tests {
		for _, typ := range []string{"identify", "track", "page", "screen", "group", "alias"} {
			t.Run(typ+": "+tt.name, func(t *testing.T) {
				_, err := call(t.Context(), e.client, typ, tt.key, ev)
				wantStatus(t, err, tt.code, tt.reason, "", tt.msg)
			})
		}
		t.Run("batch: "+tt.name, func(t *testing.T) {
			_, err := e.client.Batch(t.Context(), &ingestv1.BatchRequest{WriteKey: tt.key, Events: []*eventv1.Event{{Type: eventv1.EventType_EVENT_TYPE_TRACK, UserId: "u", Event: "E"}}})
			wantStatus(t, err, tt.code, tt.reason, "", tt.msg)
		})
	}
	if n := len(e.stored(t)); n != 0 {
		t.Errorf("%d events stored by refused calls", n)
	}
}

func TestBatch(t *testing.T) {
	e := newEnv(t, nil)
	track := func(id string) *eventv1.Event {
		return &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, MessageId: id, UserId: "u", Event: "E"}
	}
	t.Run("valid events are stored, invalid ones listed with their index", func(t *testing.T) {
		resp, err := e.client.Batch(t.Context(), &ingestv1.BatchRequest{WriteKey: wk, Events: []*eventv1.Event{
			track("b-1"),
			{Type: eventv1.EventType_EVENT_TYPE_TRACK, MessageId: "b-bad-1", Event: "No Identity"},
			{Type: eventv1.EventType_EVENT_TYPE_IDENTIFY, MessageId: "b-2", UserId: "u", Traits: mustStruct(t, map[string]any{"plan": "pro"})},
			{MessageId: "b-bad-2", UserId: "u", Event: "No Type"},
			{Type: eventv1.EventType_EVENT_TYPE_GROUP, MessageId: "b-bad-3", UserId: "u"},
			{Type: eventv1.EventType_EVENT_TYPE_ALIAS, MessageId: "b-3", UserId: "u", PreviousId: "anon"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(map[string]any{"accepted": resp.GetAccepted(), "ids": resp.GetMessageIds(), "rejected": resp.GetRejected()})
		want := `{"accepted":3,"ids":["b-1","b-2","b-3"],"rejected":[` +
			`{"index":1,"code":"missing_user_id","message":"userId or anonymousId is required"},` +
			`{"index":3,"code":"invalid_type","message":"type is required: one of identify, track, page, screen, group, alias"},` +
			`{"index":4,"code":"missing_group_id","message":"group needs groupId"}]}`
		if string(got) != want {
			t.Errorf("response\n %s\nwant\n %s", got, want)
		}
		stored := e.stored(t)
		if len(stored) != 3 || stored["b-1"]["type"] != "track" || stored["b-2"]["type"] != "identify" || stored["b-3"]["previousId"] != "anon" {
			t.Errorf("stored %v", stored)
		}
	})
	items := func(n int) []*eventv1.Event {
		evs := make([]*eventv1.Event, n)
		for i := range evs {
			evs[i] = &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, UserId: "u", Event: "E"}
		}
		return evs
	}
	blob := strings.Repeat("y", 30000)
	large := make([]*eventv1.Event, 18)
	for i := range large {
		large[i] = &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, MessageId: fmt.Sprintf("large-%02d", i), UserId: "u", Event: "E", Properties: mustStruct(t, map[string]any{"blob": blob})}
	}
	tests := []struct {
		name   string
		events []*eventv1.Event
		reason string
		msg    string
	}{
		{"an empty batch", nil, "INGEST_EMPTY_BATCH", "batch has no events"},
		{"a batch without a valid event", []*eventv1.Event{{Type: eventv1.EventType_EVENT_TYPE_TRACK, UserId: "u"}}, "INGEST_NO_VALID_EVENTS", "none of the events is valid; first: track needs a non-blank event name"},
		{"over 2,500 events", items(2501), "INGEST_BATCH_TOO_MANY_EVENTS", "batch has 2501 events; the limit is 2500"},
		{"over 500 KB of events", large, "INGEST_REQUEST_TOO_LARGE", "the events are over 512000 bytes of JSON (541602 bytes by event 17); send fewer events per request"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is InvalidArgument "+tt.reason, func(t *testing.T) {
			before := len(e.stored(t))
			_, err := e.client.Batch(t.Context(), &ingestv1.BatchRequest{WriteKey: wk, Events: tt.events})
			wantStatus(t, err, codes.InvalidArgument, tt.reason, "events", tt.msg)
			if n := len(e.stored(t)); n != before {
				t.Errorf("%d events stored by a refused batch", n-before)
			}
		})
	}
}

func TestStoreFailures(t *testing.T) {
	const msg = "events may not have been stored; retry with the same messageIds (duplicates are dropped)"
	t.Run("JetStream down is Unavailable", func(t *testing.T) {
		e := newEnv(t, nil)
		e.ns.Shutdown()
		e.ns.WaitForShutdown()
		_, err := call(t.Context(), e.client, "track", wk, &eventv1.Event{MessageId: "down-1", UserId: "u", Event: "E"})
		wantStatus(t, err, codes.Unavailable, "INGEST_STORE_UNAVAILABLE", "", msg)
		_, err = e.client.Batch(t.Context(), &ingestv1.BatchRequest{WriteKey: wk, Events: []*eventv1.Event{{Type: eventv1.EventType_EVENT_TYPE_TRACK, UserId: "u", Event: "E"}}})
		wantStatus(t, err, codes.Unavailable, "INGEST_STORE_UNAVAILABLE", "", msg)
	})
	t.Run("a full stream is Unavailable", func(t *testing.T) {
		e := newEnv(t, func(c *natsjs.StreamConfig) { c.MaxBytes = 4096; c.Discard = natsjs.DiscardNew })
		var err error
		for i := 0; i < 50 && err == nil; i++ {
			_, err = call(t.Context(), e.client, "track", wk, &eventv1.Event{UserId: "u", Event: "E", Properties: mustStruct(t, map[string]any{"pad": strings.Repeat("p", 400)})})
		}
		wantStatus(t, err, codes.Unavailable, "INGEST_STORE_UNAVAILABLE", "", msg)
	})
}
