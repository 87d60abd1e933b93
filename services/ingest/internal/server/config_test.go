package server_test

import (
	"testing"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	eventv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/event/v1"
	ingestv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/ingest/v1"
	"github.com/switchyardhq/switchyard/services/ingest/internal/debugger"
	"github.com/switchyardhq/switchyard/services/ingest/internal/httpapi"
	"github.com/switchyardhq/switchyard/services/ingest/internal/server"
	"github.com/switchyardhq/switchyard/services/internal/platform/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// Before the key map received its first configuration (`switchyard
// ingest` waiting for Catalog, dev starting up) no write key can be
// judged: every call is Unavailable with a retry hint, never
// Unauthenticated — clients retry Unavailable, and drop what a 4xx refused.
func TestBeforeTheFirstConfiguration(t *testing.T) {
	keys := &httpapi.Keys{}
	e := newEnvWithKeys(t, nil, keys)
	const msg = "Switchyard is starting: the source configuration is not loaded yet; retry"
	ev := &eventv1.Event{MessageId: "early-1", UserId: "u", Event: "E", Name: "N", GroupId: "g", PreviousId: "p"}
	for _, key := range []string{wk, "WK_NOPE", ""} {
		for _, typ := range []string{"identify", "track", "page", "screen", "group", "alias"} {
			t.Run(typ+" with key "+key+" is Unavailable", func(t *testing.T) {
				_, err := call(t.Context(), e.client, typ, key, ev)
				wantStatus(t, err, codes.Unavailable, "INGEST_CONFIG_UNAVAILABLE", "", msg)
			})
		}
		t.Run("batch with key "+key+" is Unavailable", func(t *testing.T) {
			_, err := e.client.Batch(t.Context(), &ingestv1.BatchRequest{WriteKey: key, Events: []*eventv1.Event{{Type: eventv1.EventType_EVENT_TYPE_TRACK, MessageId: "early-2", UserId: "u", Event: "E"}}})
			wantStatus(t, err, codes.Unavailable, "INGEST_CONFIG_UNAVAILABLE", "", msg)
		})
	}
	t.Run("the answer carries retry-after: 1", func(t *testing.T) {
		var hdr metadata.MD
		_, err := e.client.Track(t.Context(), &ingestv1.TrackRequest{WriteKey: wk, Event: ev}, grpc.Header(&hdr))
		if got := hdr.Get("retry-after"); len(got) != 1 || got[0] != "1" {
			t.Errorf("retry-after %v (err %v)", got, err)
		}
	})
	t.Run("the event debugger is Unavailable, not NotFound", func(t *testing.T) {
		dbg := &server.WithDebugger{Server: &server.Server{Keys: keys}, Debugger: &debugger.Debugger{},
			Snapshots: func() []*catalogv1.ConfigSnapshot { return nil }}
		ctx := auth.WithPrincipal(t.Context(), &catalogv1.Principal{WorkspaceId: ws})
		_, err := dbg.ListSourceEvents(ctx, &ingestv1.ListSourceEventsRequest{SourceId: src})
		wantStatus(t, err, codes.Unavailable, "INGEST_CONFIG_UNAVAILABLE", "", msg)
	})
	if n := len(e.stored(t)); n != 0 {
		t.Fatalf("%d events stored before the configuration", n)
	}
	t.Run("an empty configuration is a configuration: unknown keys are Unauthenticated", func(t *testing.T) {
		keys.Update(nil)
		_, err := call(t.Context(), e.client, "track", wk, ev)
		wantStatus(t, err, codes.Unauthenticated, "INGEST_INVALID_WRITE_KEY", "", "unknown write key")
	})
	t.Run("once the source is configured its key is accepted", func(t *testing.T) {
		keys.Update([]*catalogv1.ConfigSnapshot{{Sources: []*catalogv1.Source{{Id: src, WorkspaceId: ws, Enabled: true, WriteKeys: []string{wk}}}}})
		if id, err := call(t.Context(), e.client, "track", wk, ev); err != nil || id != "early-1" || e.stored(t)["early-1"] == nil {
			t.Errorf("messageId %q, err %v", id, err)
		}
		_, err := call(t.Context(), e.client, "track", "WK_NOPE", ev)
		wantStatus(t, err, codes.Unauthenticated, "INGEST_INVALID_WRITE_KEY", "", "unknown write key")
	})
}
