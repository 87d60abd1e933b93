package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	eventv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/event/v1"
	ingestv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/ingest/v1"
	"github.com/switchyardhq/switchyard/services/ingest/internal/tracking"
	"google.golang.org/grpc/codes"
)

// The limits count an event as the client sent it (its JSON before
// enrichment), as the HTTP API does; the server's own fields
// (receivedAt, timestamp, a generated messageId…) add at most
// tracking.EnrichmentAllowance to what is stored.
func TestLimitsCountWhatTheClientSent(t *testing.T) {
	e := newEnv(t, nil)
	// `{"event":"E","messageId":"…","properties":{"blob":"…"},"type":"track","userId":"u"}`
	// is the blob plus 81 bytes and the messageId.
	withBlob := func(id string, size int) *eventv1.Event {
		n := size - 81 - len(id)
		return &eventv1.Event{MessageId: id, UserId: "u", Event: "E", Properties: mustStruct(t, map[string]any{"blob": strings.Repeat("x", n)})}
	}
	t.Run("an event of exactly 32,768 bytes is accepted though it is stored larger", func(t *testing.T) {
		if _, err := call(t.Context(), e.client, "track", wk, withBlob("at-limit", tracking.MaxEventBytes)); err != nil {
			t.Fatal(err)
		}
		stored, _ := json.Marshal(e.stored(t)["at-limit"])
		if len(stored) <= tracking.MaxEventBytes || len(stored) > tracking.MaxEventBytes+tracking.EnrichmentAllowance {
			t.Errorf("stored %d bytes, want over 32,768 (the server's fields) and within the allowance", len(stored))
		}
	})
	t.Run("one byte more is INGEST_EVENT_TOO_LARGE", func(t *testing.T) {
		_, err := call(t.Context(), e.client, "track", wk, withBlob("over-limit", tracking.MaxEventBytes+1))
		wantStatus(t, err, codes.InvalidArgument, "INGEST_EVENT_TOO_LARGE", "event", "event is 32769 bytes; the limit is 32768")
	})
	t.Run("2,500 events within 500 KB as sent are stored though their stored JSON is over", func(t *testing.T) {
		// Each is ~150 bytes as sent (375 KB in all) and ~270 stored.
		evs := make([]*eventv1.Event, tracking.MaxBatchEvents)
		for i := range evs {
			evs[i] = &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, MessageId: fmt.Sprintf("many-%04d", i), UserId: "u", Event: "E",
				Properties: mustStruct(t, map[string]any{"pad": strings.Repeat("p", 60)})}
		}
		resp, err := e.client.Batch(t.Context(), &ingestv1.BatchRequest{WriteKey: wk, Events: evs})
		if err != nil || resp.GetAccepted() != tracking.MaxBatchEvents {
			t.Fatalf("accepted %d, err %v", resp.GetAccepted(), err)
		}
		total := 0
		for id, ev := range e.stored(t) {
			if strings.HasPrefix(id, "many-") {
				b, _ := json.Marshal(ev)
				total += len(b)
			}
		}
		if total <= tracking.MaxRequestBytes || total > tracking.MaxRequestBytes+tracking.MaxBatchEvents*tracking.EnrichmentAllowance {
			t.Errorf("stored %d bytes, want over 500 KB and within 500 KB plus the allowance per event", total)
		}
	})
}
