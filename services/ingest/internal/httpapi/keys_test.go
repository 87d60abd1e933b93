package httpapi_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"github.com/switchyardhq/switchyard/services/ingest/internal/httpapi"
)

// Before the write-key map received its first configuration (`switchyard
// ingest` waiting for Catalog, dev starting up) no key can be judged:
// every Tracking API request answers 503 + Retry-After, which SDKs retry —
// never 401, which they would not, losing the events.
func TestBeforeTheFirstConfiguration(t *testing.T) {
	e := newEnv(t, nil, time.Hour)
	keys := &httpapi.Keys{}
	e.h.Keys = keys
	const msg = "Switchyard is starting: the source configuration is not loaded yet; retry"
	basic := func(k string) map[string]string {
		return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(k+":"))}
	}
	tests := []struct {
		name, method, path, body string
		hdr                      map[string]string
	}{
		{"a valid key on /v1/track", "POST", "/v1/track", track("early-1"), basic(wk)},
		{"a valid key on /v1/t", "POST", "/v1/t", track("early-2"), basic(wk)},
		{"a valid key in the body of /v1/batch", "POST", "/v1/batch", `{"writeKey":"` + wk + `","batch":[` + track("early-3") + `]}`, map[string]string{}},
		{"a key not known yet", "POST", "/v1/identify", `{"userId":"u"}`, basic("WK_LATER")},
		{"no key", "POST", "/v1/page", `{"userId":"u"}`, map[string]string{}},
		{"a body that would be refused", "POST", "/v1/batch", `not-json`, basic(wk)},
		{"the analytics.js settings", "GET", "/v1/projects/" + wk + "/settings", "", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is 503 config_unavailable with Retry-After: 1", func(t *testing.T) {
			r := e.do(tt.method, tt.path, []byte(tt.body), tt.hdr)
			if r.status != 503 || r.header.Get("Retry-After") != "1" || r.body["code"] != "config_unavailable" || r.body["message"] != msg {
				t.Errorf("status %d Retry-After %q %v", r.status, r.header.Get("Retry-After"), r.body)
			}
		})
	}
	t.Run("preflights and /v1/m need no configuration", func(t *testing.T) {
		if r := e.do("OPTIONS", "/v1/t", nil, map[string]string{"Origin": "https://shop.example"}); r.status != 204 {
			t.Errorf("OPTIONS: status %d", r.status)
		}
		if r := e.do("POST", "/v1/m", []byte(`{"series":[]}`), map[string]string{}); r.status != 200 {
			t.Errorf("/v1/m: status %d", r.status)
		}
	})
	if n := len(e.stored()); n != 0 {
		t.Fatalf("%d events stored before the configuration", n)
	}
	t.Run("an empty configuration is a configuration: unknown keys are 401", func(t *testing.T) {
		keys.Update([]*catalogv1.ConfigSnapshot{})
		if r := e.do("POST", "/v1/track", []byte(track("early-1")), basic(wk)); r.status != 401 || r.body["code"] != "invalid_write_key" {
			t.Errorf("status %d %v", r.status, r.body)
		}
	})
	t.Run("once the source is configured, the retried request is stored", func(t *testing.T) {
		keys.Update([]*catalogv1.ConfigSnapshot{{Sources: []*catalogv1.Source{{Id: src, WorkspaceId: ws, Enabled: true, WriteKeys: []string{wk}}}}})
		if r := e.do("POST", "/v1/track", []byte(track("early-1")), basic(wk)); r.status != 200 {
			t.Errorf("status %d %v", r.status, r.body)
		}
		if r := e.do("POST", "/v1/track", []byte(track("early-x")), basic("WK_NOPE")); r.status != 401 || r.body["code"] != "invalid_write_key" {
			t.Errorf("unknown key: status %d %v", r.status, r.body)
		}
		if ids := messageIDs(e.stored()); strings.Join(ids, ",") != "early-1" {
			t.Errorf("stored %v", ids)
		}
	})
}
