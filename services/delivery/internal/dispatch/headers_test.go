package dispatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations"
	"github.com/switchyardhq/switchyard/services/delivery/internal/pipeline"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
)

// sha256Key is the safe form of a messageId, computed here independently
// of the code under test.
func sha256Key(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestMessageIDNotAHeaderValue checks that an event whose messageId cannot
// be a header value as it is (a control character, a line break, leading
// space, non-ASCII; Ingest accepts any string of up to 100 characters, as
// Segment does) is delivered at the first attempt with the key
// "sha256:<hex>", and that on an orderByUserId destination it does not
// hold up the same user's next event. Before the fix Go's client refused
// the request ("invalid header field value"), which counted as a network
// error and was retried for 4 hours.
func TestMessageIDNotAHeaderValue(t *testing.T) {
	t.Parallel()
	singles := []map[string]any{
		{"type": "track", "event": "Ctl", "userId": "u-1", "messageId": "one-ctl-\u0007"},
		{"type": "track", "event": "Next", "userId": "u-1", "messageId": "u1-next"},
		{"type": "track", "event": "Utf8", "userId": "u-2", "messageId": "é-unicode"},
	}
	// A pack's messageIds travel in its JSON index, so they reach Delivery
	// exactly as sent, line breaks and surrounding spaces included.
	packed := []map[string]any{
		{"type": "track", "event": "Crlf", "userId": "u-3", "messageId": "pack-crlf\r\nX-Injected: 1"},
		{"type": "track", "event": "Space", "userId": "u-4", "messageId": " lead-space"},
		{"type": "track", "event": "Plain", "userId": "u-3", "messageId": "pack-ok"},
	}
	wantKey := map[string]string{
		"one-ctl-\u0007":             sha256Key("one-ctl-\u0007"),
		"u1-next":                    "u1-next",
		"é-unicode":                  sha256Key("é-unicode"),
		"pack-crlf\r\nX-Injected: 1": sha256Key("pack-crlf\r\nX-Injected: 1"),
		" lead-space":                sha256Key(" lead-space"),
		"pack-ok":                    "pack-ok",
	}
	e := newEnv(t)
	unordered := newIDStub(t, nil)
	ordered := newIDStub(t, nil)
	r := e.start(t, Options{},
		hookSpec("unordered", unordered.srv.URL, nil),
		hookSpec("ordered", ordered.srv.URL, map[string]any{"orderByUserId": true}))
	e.publish(t, singles...)
	e.publishPack(t, packed...)

	all := append(append([]map[string]any(nil), singles...), packed...)
	for _, tc := range []struct {
		name string
		hook *idStub
	}{{"unordered", unordered}, {"ordered", ordered}} {
		got := tc.hook.waitAccepted(t, len(all), 10*time.Second)
		t.Run(tc.name+": every event delivered once, at the first attempt", func(t *testing.T) {
			wantOnce(t, got, all)
			if n := len(tc.hook.requests()); n != len(all) {
				t.Errorf("%d requests, want %d (one per event)", n, len(all))
			}
			waitDelivered(t, r, tc.name, uint64(len(all)), 10*time.Second)
			if tot := r.d.Metrics().Total(tc.name); tot.Retried != 0 || len(tot.NotDelivered) != 0 {
				t.Errorf("metrics = %+v, want nothing retried or dead-lettered", tot)
			}
		})
		t.Run(tc.name+": Idempotency-Key is the messageId, or sha256:<hex> when it is not a safe header value", func(t *testing.T) {
			for _, req := range tc.hook.requests() {
				if want := wantKey[req.ids[0]]; req.key != want {
					t.Errorf("messageId %q: Idempotency-Key = %q, want %q", req.ids[0], req.key, want)
				}
			}
		})
	}
	t.Run("ordered: the user's next event follows the odd one", func(t *testing.T) {
		first, next := ordered.attemptsOf("one-ctl-\u0007"), ordered.attemptsOf("u1-next")
		if len(first) != 1 || len(next) != 1 || next[0].at.Before(first[0].at) {
			t.Errorf("u-1's requests: %d of one-ctl, %d of u1-next; want one each, in order", len(first), len(next))
		}
	})
}

// echoType is a destination type used only by these tests: it copies the
// event's properties.echo into a request header without checking it, as a
// type that derives a header from event data might.
const echoType = "test-echo-header"

func init() {
	destinations.Register(&destinations.Type{
		Metadata: destinations.Metadata{Slug: echoType, Name: "Echo Header", Category: "Test", Description: "Test only.",
			Settings:        []destinations.Setting{{Name: "url", Type: destinations.SettingURL, Required: true, Description: "Endpoint."}},
			SupportedEvents: []string{"track"}},
		Actions: []destinations.Action{{Name: "send", Description: "POST the event.", DefaultTrigger: "all"}},
		New: func(cfg destinations.Config) (destinations.Instance, error) {
			return &echoInstance{client: cfg.HTTP, url: cfg.Settings.String("url")}, nil
		},
	})
}

type echoInstance struct {
	client *http.Client
	url    string
}

func (in *echoInstance) BatchSize() int { return 1 }
func (in *echoInstance) Close() error   { return nil }

func (in *echoInstance) Send(ctx context.Context, _ string, ps []destinations.Payload) error {
	req, err := http.NewRequest(http.MethodPost, in.url, nil)
	if err != nil {
		return destinations.Permanent(err)
	}
	req.Header.Set("X-Echo", destinations.GetString(ps[0].Event, "properties.echo"))
	_, err = destinations.DoHTTP(ctx, in.client, req, ps[0].Raw)
	return err
}

// TestRequestBuildErrorIsFinal checks that a request the HTTP client
// would refuse before connecting (here a header value with a NUL byte) is
// dead-lettered at once with reason invalid_payload and a clear error,
// without any request, while the destination's other events are
// delivered. Before the fix the client's refusal counted as a network
// error and was retried for 4 hours.
func TestRequestBuildErrorIsFinal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hook := newIDStub(t, nil)
	spec := pipeline.Spec{ID: "echo", WorkspaceID: testWorkspace, SourceID: testSource, Name: "echo", Type: echoType,
		Settings: map[string]any{"url": hook.srv.URL}, CreatedAt: time.Now().Add(-time.Minute)}
	r := e.start(t, Options{}, spec)
	e.publish(t,
		map[string]any{"type": "track", "event": "Bad", "userId": "u-1", "messageId": "echo-bad", "properties": map[string]any{"echo": "a\x00b"}},
		map[string]any{"type": "track", "event": "Good", "userId": "u-1", "messageId": "echo-ok", "properties": map[string]any{"echo": "fine"}})

	ls := e.waitLetters(t, "echo", 1, 10*time.Second)
	hook.waitAccepted(t, 1, 10*time.Second)
	e.waitSettled(t, streams.Events, "delivery-echo", 10*time.Second)
	t.Run("dead-lettered at the first attempt as invalid_payload, naming the header", func(t *testing.T) {
		l := ls[0]
		if l.MessageID != "echo-bad" || l.Reason != destinations.ReasonInvalid || l.Status != 0 || l.Attempts != 1 {
			t.Errorf("dead letter = messageId %q reason %q status %d attempts %d, want echo-bad invalid_payload 0 1", l.MessageID, l.Reason, l.Status, l.Attempts)
		}
		if !strings.Contains(l.Error, "build request") || !strings.Contains(l.Error, `"X-Echo"`) {
			t.Errorf("dead letter error = %q, want it to say the request could not be built because of X-Echo", l.Error)
		}
	})
	t.Run("no request for it, the other event delivered, nothing retried", func(t *testing.T) {
		if n := len(hook.attemptsOf("echo-bad")); n != 0 {
			t.Errorf("the receiver got %d requests of echo-bad, want 0", n)
		}
		if got := hook.accepted(); len(got) != 1 || got["echo-ok"] != 1 {
			t.Errorf("accepted %v, want echo-ok once", got)
		}
		tot := r.d.Metrics().Total("echo")
		if tot.Retried != 0 || tot.NotDelivered[destinations.ReasonInvalid] != 1 || tot.Delivered != 1 {
			t.Errorf("metrics = %+v, want 1 delivered, 1 invalid_payload, nothing retried", tot)
		}
	})
}
