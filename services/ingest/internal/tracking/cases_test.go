package tracking

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The ingest cases of ../shared/cases/cases.jsonl at the parser level: each
// asserts the exact value the case expects. services/e2e/ingest_cases_test.go
// checks the same cases through the binary down to the warehouse.

func batchOf(items ...string) []byte {
	return []byte(`{"batch":[` + strings.Join(items, ",") + `]}`)
}

func requestCode(err error) string {
	var re *RequestError
	if errors.As(err, &re) {
		return re.Code
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return ""
}

func TestCaseIng01PerEventLimitInSerializedBytes(t *testing.T) {
	t.Parallel()
	// 33,000 x's: over the limit.
	over := `{"type":"track","userId":"u-1001","event":"Report Exported","properties":{"blob":"` + strings.Repeat("x", 33000) + `"}}`
	if _, err := newTestParser().ParseSingle([]byte(over), "track", Meta{}); requestCode(err) != "event_too_large" {
		t.Errorf("33,000-byte blob: %v, want event_too_large", err)
	}
	// Exactly 32,000 serialized bytes: accepted.
	head := `{"type":"track","userId":"u-1001","event":"Report Exported","properties":{"blob":"`
	under := head + strings.Repeat("x", 32000-len(head)-3) + `"}}`
	if len(under) != 32000 {
		t.Fatalf("fixture is %d bytes", len(under))
	}
	if _, err := newTestParser().ParseSingle([]byte(under), "track", Meta{}); err != nil {
		t.Errorf("32,000-byte event: %v, want accepted", err)
	}
	// Bytes, not characters: 11,000 three-byte characters are 33,000 bytes.
	wide := head + strings.Repeat("€", 11000) + `"}}`
	if _, err := newTestParser().ParseSingle([]byte(wide), "track", Meta{}); requestCode(err) != "event_too_large" {
		t.Errorf("11,000 × '€': %v, want event_too_large", err)
	}
	// The same rule for a batch item (rejected alone, the request answers no_valid_events).
	_, err := newTestParser().ParseBatch(batchOf(over), Meta{})
	var re *RequestError
	if !errors.As(err, &re) || re.Code != "no_valid_events" || len(re.Rejected) != 1 || re.Rejected[0].Code != "event_too_large" {
		t.Errorf("batch with one oversize item: %v %+v", err, re)
	}
}

func TestCaseIng02BatchLimitIsAllOrNothing(t *testing.T) {
	t.Parallel()
	item := `{"type":"track","userId":"u-1002","event":"Row Synced","properties":{"payload":"` + strings.Repeat("y", 30000) + `"}}`
	items := make([]string, 18)
	for i := range items {
		items[i] = item
	}
	req, err := newTestParser().ParseBatch(batchOf(items...), Meta{})
	if requestCode(err) != "request_too_large" || req != nil {
		t.Errorf("18 × 30 KB: %v, want request_too_large and nothing accepted", err)
	}
	for half := range 2 {
		req, err := newTestParser().ParseBatch(batchOf(items[half*9:half*9+9]...), Meta{})
		if err != nil || len(req.Events) != 9 {
			t.Errorf("half %d: err %v", half, err)
		}
	}
}

func TestCaseIng03ItemWithoutIdentityIsRejected(t *testing.T) {
	t.Parallel()
	req, err := newTestParser().ParseBatch(batchOf(
		`{"type":"track","event":"Button Clicked","properties":{"label":"buy"}}`,
		`{"type":"track","anonymousId":"anon-5001","event":"Button Clicked","properties":{"label":"buy"}}`,
	), Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Rejected) != 1 || req.Rejected[0] != (Rejection{Index: 0, Code: "missing_user_id", Message: "userId or anonymousId is required"}) {
		t.Errorf("rejected = %+v", req.Rejected)
	}
	if len(req.Events) != 1 || decode(t, req.Events[0].JSON)["anonymousId"] != "anon-5001" {
		t.Errorf("accepted = %d events", len(req.Events))
	}
}

func TestCaseIng05NumericIDsAreExactText(t *testing.T) {
	t.Parallel()
	req, err := newTestParser().ParseBatch(batchOf(
		`{"type":"identify","userId":55520,"traits":{"plan":"pro"}}`,
		`{"type":"identify","userId":"55520","traits":{"plan":"pro"}}`,
		`{"type":"identify","userId":9007199254740993,"traits":{"plan":"team"}}`,
	), Meta{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range req.Events {
		got = append(got, decode(t, ev.JSON)["userId"].(string))
	}
	if strings.Join(got, ",") != "55520,55520,9007199254740993" {
		t.Errorf("userIds = %v", got)
	}
	// Objects, arrays and booleans are rejected per item.
	for _, bad := range []string{`{"a":1}`, `[1]`, `true`} {
		_, err := newTestParser().ParseBatch(batchOf(`{"type":"identify","userId":`+bad+`}`), Meta{})
		var re *RequestError
		if !errors.As(err, &re) || re.Rejected[0].Code != "invalid_userId" {
			t.Errorf("userId %s: %v", bad, err)
		}
	}
}

func TestCaseIng09NULIsStrippedEverywhere(t *testing.T) {
	t.Parallel()
	req, err := newTestParser().ParseSingle([]byte(`{"type":"track","userId":"u-1009","event":"Note Saved","properties":{"note":"abc\u0000def","k\u0000ey":"v","nested":{"t":"x\u0000"}}}`), "track", Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(req.Events[0].JSON), `\u0000`) {
		t.Errorf("stored event still holds NUL: %s", req.Events[0].JSON)
	}
	props := decode(t, req.Events[0].JSON)["properties"].(map[string]any)
	if props["note"] != "abcdef" || props["key"] != "v" || props["nested"].(map[string]any)["t"] != "x" {
		t.Errorf("properties = %v", props)
	}
}

func TestCaseIng11EmojiAndLoneSurrogates(t *testing.T) {
	t.Parallel()
	req, err := newTestParser().ParseSingle([]byte(`{"type":"track","userId":"u-1011","event":"Purchased \ud83c\udf89","properties":{"title":"Sale \ud83d\ude06","family":"\ud83d\udc68\u200d\ud83d\udc69\u200d\ud83d\udc67\u200d\ud83d\udc66","broken":"\ud83d"}}`), "track", Meta{})
	if err != nil {
		t.Fatal(err)
	}
	ev := decode(t, req.Events[0].JSON)
	props := ev["properties"].(map[string]any)
	want := map[string]string{"title": "Sale 😆", "family": "👨\u200d👩\u200d👧\u200d👦", "broken": "\uFFFD"}
	for k, v := range want {
		if props[k] != v {
			t.Errorf("%s = %q, want %q", k, props[k], v)
		}
	}
	if ev["event"] != "Purchased 🎉" {
		t.Errorf("event = %q", ev["event"])
	}
	// Raw invalid UTF-8 bytes are a request error, never stored.
	if _, err := newTestParser().ParseSingle([]byte("{\"userId\":\"u\xed\xa0\xbd\",\"event\":\"e\"}"), "track", Meta{}); requestCode(err) != "invalid_utf8" {
		t.Errorf("CESU-8 surrogate bytes: %v, want invalid_utf8", err)
	}
}

func TestCaseIng12TimestampCorrectionFromOriginalTimestamp(t *testing.T) {
	t.Parallel()
	req, err := newTestParser().ParseSingle([]byte(`{"type":"track","userId":"u-1012","event":"App Opened","originalTimestamp":"2031-01-01T00:00:00.000Z","sentAt":"2031-01-01T00:00:05.000Z"}`), "track", Meta{})
	if err != nil {
		t.Fatal(err)
	}
	ev := decode(t, req.Events[0].JSON)
	want := map[string]string{
		"receivedAt":        "2026-12-03T12:00:00.000Z",
		"timestamp":         "2026-12-03T11:59:55.000Z", // R − 5 s
		"originalTimestamp": "2031-01-01T00:00:00.000Z",
		"sentAt":            "2031-01-01T00:00:05.000Z",
	}
	for k, v := range want {
		if ev[k] != v {
			t.Errorf("%s = %v, want %s", k, ev[k], v)
		}
	}
}

func TestCaseIng15TimestampFormats(t *testing.T) {
	t.Parallel()
	req, err := newTestParser().ParseBatch(batchOf(
		`{"type":"track","userId":"u-1015","event":"Tap","originalTimestamp":"2021-10-16T16:00:27.029:Z","sentAt":"2021-10-16T16:00:27.957:Z"}`,
		`{"type":"track","userId":"u-1015","event":"Tap","timestamp":"2024-07-16T12:07:15+05:30"}`,
		`{"type":"track","userId":"u-1015","event":"Tap","timestamp":1436569200000}`,
	), Meta{})
	if err != nil || len(req.Events) != 3 {
		t.Fatalf("err %v, %d accepted, want 3", err, len(req.Events))
	}
	got := make([][2]any, 3)
	for i, e := range req.Events {
		ev := decode(t, e.JSON)
		got[i] = [2]any{ev["timestamp"], ev["originalTimestamp"]}
	}
	want := [][2]any{
		{"2026-12-03T12:00:00.000Z", "2021-10-16T16:00:27.029:Z"}, // unreadable: receivedAt, kept as sent
		{"2024-07-16T06:37:15.000Z", "2024-07-16T12:07:15+05:30"},
		{"2015-07-10T23:00:00.000Z", "2015-07-10T23:00:00.000Z"}, // epoch milliseconds
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("timestamp, originalTimestamp = %v\nwant %v", got, want)
	}
	if len(req.Warnings) != 1 || req.Warnings[0].Index != 0 || req.Warnings[0].Code != "invalid_timestamp" {
		t.Errorf("warnings = %+v, want item 0 invalid_timestamp", req.Warnings)
	}
}

func TestCaseIng17TypeCaseRule(t *testing.T) {
	t.Parallel()
	req, err := newTestParser().ParseBatch(batchOf(
		`{"type":"TRACK","userId":"u-1017","event":"Ok"}`,
		`{"type":"pAge","userId":"u-1017","name":"Home"}`,
		`{"type":"purchase","userId":"u-1017"}`,
		`{"type":{},"userId":"u-1017"}`,
		`{"userId":"u-1017","event":"NoType"}`,
	), Meta{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range req.Events {
		types = append(types, e.Type+"/"+decode(t, e.JSON)["type"].(string))
	}
	if strings.Join(types, ",") != "track/track,page/page" {
		t.Errorf("accepted types = %v", types)
	}
	var rej []string
	for _, r := range req.Rejected {
		rej = append(rej, fmt.Sprintf("%d:%s", r.Index, r.Code))
	}
	if strings.Join(rej, ",") != "2:invalid_type,3:invalid_type,4:invalid_type" {
		t.Errorf("rejected = %v", rej)
	}
	// On /v1/track the path supplies a missing type.
	single, err := newTestParser().ParseSingle([]byte(`{"userId":"u-1017","event":"NoType"}`), "track", Meta{})
	if err != nil || single.Events[0].Type != "track" {
		t.Errorf("path type: %v", err)
	}
}

func TestCaseIng18DistinctRequestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body, code string }{
		{"no identifiable event", `{"batch":[{"data":"x"}]}`, "no_valid_events"},
		{"invalid JSON", `not-json`, "invalid_json"},
		{"empty body", ``, "empty_body"},
		{"empty batch", `{"batch":[]}`, "empty_batch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := newTestParser().ParseBatch([]byte(tt.body), Meta{}); requestCode(err) != tt.code {
				t.Errorf("err = %v, want %s", err, tt.code)
			}
		})
	}
}

func TestContextIPFromTheConnection(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body, want string }{
		{"set when absent", `{"userId":"u","event":"e"}`, "203.0.113.7"},
		{"the event's own ip wins", `{"userId":"u","event":"e","context":{"ip":"198.51.100.1"}}`, "198.51.100.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := newTestParser().ParseSingle([]byte(tt.body), "track", Meta{IP: "203.0.113.7"})
			if err != nil {
				t.Fatal(err)
			}
			var ev struct {
				Context struct {
					IP string `json:"ip"`
				} `json:"context"`
			}
			if err := json.Unmarshal(req.Events[0].JSON, &ev); err != nil || ev.Context.IP != tt.want {
				t.Errorf("context.ip = %q, want %q (%v)", ev.Context.IP, tt.want, err)
			}
		})
	}
}
