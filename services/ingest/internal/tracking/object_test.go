package tracking

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

// refMember is a member of an object decoded by refDecode.
type refMember struct {
	key string
	val any // nil, bool, string, json.Number, []any or []refMember
}

// refDecode decodes one JSON value with encoding/json's tokenizer, keeping
// each object's members in order; a key present twice keeps its last value
// at the place of its last occurrence (the rule object documents).
func refDecode(d *json.Decoder) (any, error) {
	t, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t {
	case json.Delim('{'):
		ms := []refMember{}
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return nil, err
			}
			v, err := refDecode(d)
			if err != nil {
				return nil, err
			}
			ms = slices.DeleteFunc(ms, func(m refMember) bool { return m.key == k })
			ms = append(ms, refMember{k.(string), v})
		}
		_, err := d.Token()
		return ms, err
	case json.Delim('['):
		a := []any{}
		for d.More() {
			v, err := refDecode(d)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := d.Token()
		return a, err
	}
	return t, nil
}

// refTokens is v's token stream (as tokens returns it).
func refTokens(v any, out []any) []any {
	switch t := v.(type) {
	case []refMember:
		out = append(out, json.Delim('{'))
		for _, m := range t {
			out = refTokens(m.val, append(out, m.key))
		}
		return append(out, json.Delim('}'))
	case []any:
		out = append(out, json.Delim('['))
		for _, x := range t {
			out = refTokens(x, out)
		}
		return append(out, json.Delim(']'))
	}
	return append(out, v)
}

// sortedKeys is a copy of v whose objects have their keys sorted, as
// encoding/json writes a map.
func sortedKeys(v any) any {
	switch t := v.(type) {
	case *object:
		o := &object{}
		for _, f := range t.fields {
			o.fields = append(o.fields, field{f.key, sortedKeys(f.val)})
		}
		slices.SortFunc(o.fields, func(a, b field) int { return strings.Compare(a.key, b.key) })
		return o
	case []any:
		a := make([]any, len(t))
		for i, x := range t {
			a[i] = sortedKeys(x)
		}
		return a
	}
	return v
}

// stringSizeMismatch checks stringSize on every key and string of v.
func stringSizeMismatch(v any) string {
	check := func(s string) string {
		if n, w := stringSize(s), len(appendString(nil, s)); n != w {
			return fmt.Sprintf("stringSize(%q) = %d, appendString writes %d bytes", s, n, w)
		}
		return ""
	}
	switch t := v.(type) {
	case string:
		return check(t)
	case *object:
		for _, f := range t.fields {
			if d := check(f.key); d != "" {
				return d
			}
			if d := stringSizeMismatch(f.val); d != "" {
				return d
			}
		}
	case []any:
		for _, x := range t {
			if d := stringSizeMismatch(x); d != "" {
				return d
			}
		}
	}
	return ""
}

// decoderMismatch compares decodeObject and appendJSON with encoding/json
// on b and describes the first difference ("" when none): b is refused by
// both or by neither; the object holds the values and the key order
// refDecode reads (duplicate keys: the last, at its place); with its keys
// sorted, appendJSON writes the bytes marshal writes for encoding/json's
// map; stringSize is the length of each string appendString writes.
func decoderMismatch(b []byte) string {
	obj, err := decodeObject(b)
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m any
	refErr := d.Decode(&m)
	if _, isMap := m.(map[string]any); refErr == nil && !isMap {
		refErr = fmt.Errorf("not an object")
	}
	if _, err := d.Token(); refErr == nil && err != io.EOF {
		refErr = fmt.Errorf("data after the object")
	}
	if (err == nil) != (refErr == nil) {
		return fmt.Sprintf("decodeObject: %v; encoding/json: %v", err, refErr)
	}
	if err != nil {
		return ""
	}
	d = json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	ref, err := refDecode(d)
	if err != nil {
		return fmt.Sprintf("refDecode: %v", err)
	}
	got, err := tokens(appendJSON(nil, obj))
	if err != nil {
		return fmt.Sprintf("appendJSON wrote invalid JSON %s: %v", appendJSON(nil, obj), err)
	}
	if want := refTokens(ref, nil); !slices.Equal(got, want) {
		return fmt.Sprintf("decoded %s\n want tokens %v", appendJSON(nil, obj), want)
	}
	want, _ := marshal(m)
	if got := appendJSON(nil, sortedKeys(obj)); !bytes.Equal(got, want) {
		return fmt.Sprintf("appendJSON wrote %s\n encoding/json writes %s", got, want)
	}
	return stringSizeMismatch(obj)
}

func TestDecoderAndEncoderAgreeWithEncodingJSON(t *testing.T) {
	t.Parallel()
	bodies := []string{
		`{}`, ` { } `, `{"a":[]}`, `{"a":{}}`, `{"a":[1,2.50,-3e7,1E+2,-0,true,false,null,"x",[],{}],"b":{"c":{}}}`,
		`{"s":"\"\\\/\b\f\n\r\t\u0001\u001f\u007f <>& é € 😀 \u2028\u2029 \ud83d \ude00\ud83d \ud83d\ude00 \ud83d\u0041 \uFFFD"}`,
		"{\"raw\":\"\u2028\u2029 \x7f\"}",
		"{\"bad\":\"\xff\xfe a \xe2\x82\"}",
		"{\"bad\\n\xff\":\"\\u00e9\xc3\"}",
		`{"k\u0000\n":"v\u0000"}`,
		`{"b":1,"B":2,"a":3,"nested":{"z":{"y":1,"x":2}}}`,
		`{"k":1,"j":2,"k":3}`, `{"k":1,"k":{"x":1,"x":2},"k":[{"y":1,"y":2}]}`,
		`{"\u006b":1,"k":2}`,
		`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"a":18,"r":19}`,
		`[1]`, `"s"`, `null`, `{"a":1} x`, `{"a":}`, `{"a":1`, ``, `{"a":01}`,
		strings.Repeat(`{"a":`, 300) + `1` + strings.Repeat(`}`, 300),
	}
	for _, b := range bodies {
		if d := decoderMismatch([]byte(b)); d != "" {
			t.Errorf("%q: %s", b, d)
		}
	}
}

func TestStripNULKeepsTheLastOfKeysThatBecomeOne(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`{"a\u0000":1,"b":2,"a":3}`, `{"b":2,"a":3}`},
		{`{"a":1,"b":2,"a\u0000":3}`, `{"b":2,"a":3}`},
		{`{"x":{"k\u0000":"v\u0000","K":1},"l":["\u0000",{"\u0000":null}]}`, `{"x":{"k":"v","K":1},"l":["",{"":null}]}`},
	}
	for _, tt := range tests {
		o, err := decodeObject([]byte(tt.in))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(appendJSON(nil, stripNUL(o))); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.in, got, tt.want)
		}
	}
}

// NULs are removed before an event is judged: it is validated as it is
// stored, and a key that becomes another (here "ty\u0000pe", sent after
// "type") is that key sent twice: the last wins, for the stored JSON and
// the event's Type alike.
func TestNULIsRemovedBeforeTheEventIsJudged(t *testing.T) {
	t.Parallel()
	if _, err := newTestParser().ParseSingle([]byte(`{"userId":"\u0000","event":"E"}`), "track", Meta{}); requestCode(err) != "missing_user_id" {
		t.Errorf("userId of a NUL: %v, want missing_user_id", err)
	}
	req, err := newTestParser().ParseBatch([]byte(`{"batch":[{"type":"tr\u0000ack","userId":"u","event":"E","message\u0000Id":"x","ty\u0000pe":"page"}]}`), Meta{})
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, req, `{"userId":"u","event":"E","type":"page","timestamp":"2026-12-03T12:00:00.000Z","receivedAt":"2026-12-03T12:00:00.000Z","messageId":"x"}`)
	if req.Events[0].Type != "page" || req.Events[0].MessageID != "x" {
		t.Errorf("type %q, messageId %q", req.Events[0].Type, req.Events[0].MessageID)
	}
	req, err = newTestParser().ParseSingle([]byte(`{"type":"tr\u0000ack","userId":"u","event":"E","writeKey":"k\u0000"}`), "track", Meta{})
	if err != nil || req.WriteKey != "k\x00" {
		t.Errorf("write key %q, err %v; want it as sent", req.WriteKey, err)
	}
}
