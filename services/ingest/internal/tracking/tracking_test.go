package tracking

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

var fixedNow = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func newTestParser() *Parser {
	return &Parser{Now: func() time.Time { return fixedNow }, NewID: func() string { return "generated-id" }}
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("stored event is not JSON: %v", err)
	}
	return m
}

func TestParseSingle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		body     string
		typ      string
		wantCode string // request error code; "" = accepted
		check    func(t *testing.T, ev map[string]any)
	}{
		{
			name: "server fields are added",
			body: `{"userId":"u1","event":"Signed Up","properties":{"plan":"pro"},"writeKey":"wk"}`, typ: "track",
			check: func(t *testing.T, ev map[string]any) {
				want := map[string]any{"type": "track", "messageId": "generated-id", "receivedAt": "2026-12-03T12:00:00.000Z", "timestamp": "2026-12-03T12:00:00.000Z"}
				for k, v := range want {
					if ev[k] != v {
						t.Errorf("%s = %v, want %v", k, ev[k], v)
					}
				}
				if _, ok := ev["writeKey"]; ok {
					t.Error("writeKey must not be stored with the event")
				}
			},
		},
		{
			name: "timestamp is corrected for clock skew",
			// The device clock is 10 s ahead: sent 12:00:10 by its clock, event 5 s earlier.
			body: `{"userId":"u1","event":"e","timestamp":"2026-12-03T12:00:05.000Z","sentAt":"2026-12-03T12:00:10.000Z"}`, typ: "track",
			check: func(t *testing.T, ev map[string]any) {
				if ev["timestamp"] != "2026-12-03T11:59:55.000Z" || ev["originalTimestamp"] != "2026-12-03T12:00:05.000Z" {
					t.Errorf("timestamp=%v originalTimestamp=%v", ev["timestamp"], ev["originalTimestamp"])
				}
			},
		},
		{
			name: "a timestamp without sentAt is kept (historical import)",
			body: `{"userId":"u1","event":"e","timestamp":"2020-01-01T00:00:00Z"}`, typ: "track",
			check: func(t *testing.T, ev map[string]any) {
				if ev["timestamp"] != "2020-01-01T00:00:00.000Z" {
					t.Errorf("timestamp = %v", ev["timestamp"])
				}
			},
		},
		{
			name: "numeric ids become exact strings",
			body: `{"userId":12345678901234567890,"event":"e"}`, typ: "track",
			check: func(t *testing.T, ev map[string]any) {
				if ev["userId"] != "12345678901234567890" {
					t.Errorf("userId = %#v", ev["userId"])
				}
			},
		},
		{
			name: "unknown fields pass through untouched",
			body: `{"anonymousId":"a","event":"e","email":"x@example.com","_metadata":{"bundled":["X"]}}`, typ: "track",
			check: func(t *testing.T, ev map[string]any) {
				if ev["email"] != "x@example.com" || ev["_metadata"] == nil {
					t.Errorf("unknown fields lost: %v", ev)
				}
			},
		},
		{
			name: "NUL characters are removed from strings and keys",
			body: `{"userId":"u\u00001","event":"e","properties":{"k\u0000ey":"v\u0000"}}`, typ: "track",
			check: func(t *testing.T, ev map[string]any) {
				props := ev["properties"].(map[string]any)
				if ev["userId"] != "u1" || props["key"] != "v" {
					t.Errorf("userId=%q properties=%v", ev["userId"], props)
				}
			},
		},
		{name: "invalid JSON", body: `{"userId":`, typ: "track", wantCode: "invalid_json"},
		{name: "JSON that is not an object", body: `[1,2]`, typ: "track", wantCode: "invalid_json"},
		{name: "missing user and anonymous id", body: `{"event":"e"}`, typ: "track", wantCode: "missing_user_id"},
		{name: "blank user id counts as missing", body: `{"userId":"  ","event":"e"}`, typ: "track", wantCode: "missing_user_id"},
		{name: "object user id", body: `{"userId":{"a":1},"event":"e"}`, typ: "track", wantCode: "invalid_userId"},
		{name: "track without event", body: `{"userId":"u"}`, typ: "track", wantCode: "missing_event"},
		{name: "track with blank event", body: `{"userId":"u","event":"   "}`, typ: "track", wantCode: "missing_event"},
		{name: "group without groupId", body: `{"userId":"u"}`, typ: "group", wantCode: "missing_group_id"},
		{name: "alias without previousId", body: `{"userId":"u"}`, typ: "alias", wantCode: "missing_previous_id"},
		{name: "properties must be an object", body: `{"userId":"u","event":"e","properties":[1]}`, typ: "track", wantCode: "invalid_properties"},
		{name: "body type must match the endpoint", body: `{"type":"identify","userId":"u"}`, typ: "track", wantCode: "type_mismatch"},
		{name: "messageId over 100 characters", body: `{"userId":"u","event":"e","messageId":"` + strings.Repeat("m", 101) + `"}`, typ: "track", wantCode: "message_id_too_long"},
		{name: "event over 32 KB", body: `{"userId":"u","event":"e","properties":{"x":"` + strings.Repeat("x", 33*1024) + `"}}`, typ: "track", wantCode: "event_too_large"},
		{name: "invalid UTF-8", body: "{\"userId\":\"u\xff\",\"event\":\"e\"}", typ: "track", wantCode: "invalid_utf8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := newTestParser().ParseSingle([]byte(tt.body), tt.typ, Meta{})
			if tt.wantCode != "" {
				var re *RequestError
				if !errors.As(err, &re) || re.Code != tt.wantCode {
					t.Fatalf("err = %v, want request error %q", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSingle: %v", err)
			}
			if len(req.Events) != 1 {
				t.Fatalf("events = %d, want 1", len(req.Events))
			}
			tt.check(t, decode(t, req.Events[0].JSON))
		})
	}
}

func TestParseBatch(t *testing.T) {
	t.Parallel()
	body := `{"writeKey":"wk","sentAt":"2026-12-03T12:00:00.000Z",
		"context":{"library":{"name":"lib"},"ip":"1.2.3.4"},
		"integrations":{"All":false},
		"batch":[
			{"type":"track","userId":"u","event":"A","messageId":"m0","context":{"ip":"9.9.9.9"}},
			{"type":"track","userId":"u"},
			{"type":"Track","userId":"u","event":"B"},
			{"type":"identify","anonymousId":"a","traits":{"x":1},"messageId":"m3"},
			"not an object"
		]}`
	req, err := newTestParser().ParseBatch([]byte(body), Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if req.WriteKey != "wk" {
		t.Errorf("writeKey = %q", req.WriteKey)
	}
	var ids []string
	for _, ev := range req.Events {
		ids = append(ids, ev.MessageID)
	}
	if strings.Join(ids, ",") != "m0,generated-id,m3" {
		t.Fatalf("accepted = %v, want m0,generated-id,m3 (type Track matches case-insensitively)", ids)
	}
	var rej []string
	for _, r := range req.Rejected {
		rej = append(rej, string(rune('0'+r.Index))+":"+r.Code)
	}
	if got := strings.Join(rej, ","); got != "1:missing_event,4:invalid_event" {
		t.Errorf("rejected = %s", got)
	}
	first := decode(t, req.Events[0].JSON)
	ctx := first["context"].(map[string]any)
	if ctx["ip"] != "9.9.9.9" || ctx["library"].(map[string]any)["name"] != "lib" {
		t.Errorf("context not merged with the event's own keys winning: %v", ctx)
	}
	if first["integrations"].(map[string]any)["All"] != false {
		t.Errorf("integrations not merged: %v", first["integrations"])
	}
	if first["sentAt"] != "2026-12-03T12:00:00.000Z" {
		t.Errorf("top-level sentAt not applied: %v", first["sentAt"])
	}
}

func TestParseBatchLimits(t *testing.T) {
	t.Parallel()
	items := make([]string, MaxBatchEvents+1)
	for i := range items {
		items[i] = `{"type":"track","userId":"u","event":"e"}`
	}
	_, err := newTestParser().ParseBatch([]byte(`{"batch":[`+strings.Join(items, ",")+`]}`), Meta{})
	var re *RequestError
	if !errors.As(err, &re) || re.Code != "batch_too_many_events" {
		t.Errorf("2501 events: err = %v, want batch_too_many_events", err)
	}
	_, err = newTestParser().ParseBatch([]byte(`{"writeKey":"x"}`), Meta{})
	if !errors.As(err, &re) || re.Code != "missing_batch" {
		t.Errorf("no batch: err = %v, want missing_batch", err)
	}
	big := `{"batch":[{"type":"track","userId":"u","event":"e","properties":{"x":"` + strings.Repeat("x", MaxRequestBytes) + `"}}]}`
	_, err = newTestParser().ParseBatch([]byte(big), Meta{})
	if !errors.As(err, &re) || re.Code != "request_too_large" {
		t.Errorf("over 500 KB: err = %v, want request_too_large", err)
	}
}

func TestParseBatchTopLevelFields(t *testing.T) {
	t.Parallel()
	// The device clock is 10 s ahead; the batch's sentAt is epoch
	// milliseconds (kept exact), the item's timestamp 5 s before it.
	sent := fixedNow.Add(10 * time.Second).UnixMilli()
	body := `{"writeKey":"wk-body","sentAt":` + strconv.FormatInt(sent, 10) + `,"context":{"app":"x"},"integrations":{"All":false},` +
		`"batch":[{"type":"track","userId":"u","event":"E","timestamp":"2026-12-03T12:00:05.000Z","context":{"ip":"1.2.3.4"}}]}`
	req, err := newTestParser().ParseBatch([]byte(body), Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if req.WriteKey != "wk-body" || len(req.Events) != 1 || len(req.Warnings) != 0 {
		t.Fatalf("writeKey %q, %d events, warnings %v", req.WriteKey, len(req.Events), req.Warnings)
	}
	ev := decode(t, req.Events[0].JSON)
	ctx, _ := ev["context"].(map[string]any)
	integ, _ := ev["integrations"].(map[string]any)
	if ev["timestamp"] != "2026-12-03T11:59:55.000Z" || ev["sentAt"] != "2026-12-03T12:00:10.000Z" ||
		ctx["app"] != "x" || ctx["ip"] != "1.2.3.4" || integ["All"] != false {
		t.Errorf("stored %s", req.Events[0].JSON)
	}
}
