package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
)

// referenceParse is the encoding/json token-based decoder ParseObject replaced; it is the oracle
// the fast parser must agree with on every input.
func referenceParse(raw []byte) (Object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := referenceValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the object")
	}
	o, ok := v.(Object)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return o, nil
}

func referenceValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := Object{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key is %T", kt)
				}
				v, err := referenceValue(dec)
				if err != nil {
					return nil, err
				}
				o = append(o, Member{Key: key, Value: v})
			}
			_, err := dec.Token()
			return o, err
		case '[':
			a := []any{}
			for dec.More() {
				v, err := referenceValue(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		}
		return nil, fmt.Errorf("unexpected delimiter %v", t)
	default:
		return t, nil
	}
}

// parseCases are inputs where a hand-written JSON parser typically goes wrong.
var parseCases = []string{
	`{}`, ` { } `, "\t{\"a\":1}\r\n", `{"a":1,"a":2}`, `{"b":1,"a":{"c":[1,"x",null,true,false,{}]}}`,
	`{"n":-0,"m":0.5,"e":1e10,"E":-1.5E-3,"p":1e+2,"big":123456789012345678901234567890}`,
	`{"s":"plain","esc":"a\"b\\c\/d\b\f\n\r\t","u":"\u00e9\u4e2d","pair":"\ud83d\ude00"}`,
	`{"lone":"\ud800","lone2":"\ud800x","lowfirst":"\udc00\ud800","half":"\ud83d\u0041"}`,
	"{\"bad utf8\":\"a\xffb\",\"\xfe\":1,\"ok\":\"é中😀\"}", "{\"surr\":\"\xed\xa0\x80\"}",
	`{"arr":[],"arr2":[[],[[]]],"o":{"o":{"o":{}}}}`, `{"empty":""}`, `{"":""}`,
	// Invalid: every one must be refused.
	``, ` `, `{`, `{"a"`, `{"a":`, `{"a":1`, `{"a":1,}`, `{,}`, `{"a" 1}`, `{a:1}`, `{'a':1}`,
	`{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":1e+}`, `{"a":+1}`, `{"a":0x1}`,
	`{"a":tru}`, `{"a":nul}`, `{"a":True}`, `{"a":NaN}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12g4"}`,
	"{\"a\":\"tab\there\"}", "{\"a\":\"nl\nhere\"}", `{"a":"unterminated}`, `{"a":[1,]}`, `{"a":[1 2]}`,
	`{"a":1}{"b":2}`, `{"a":1} x`, `{"a":1}]`, `[1]`, `"s"`, `1`, `null`, `true`, `[`, `{"a":[}`,
	strings.Repeat(`{"a":`, 20000) + `1` + strings.Repeat(`}`, 20000),
	strings.Repeat(`{"a":`, 9999) + `1` + strings.Repeat(`}`, 9999),
	strings.Repeat(`{"a":[`, 6000) + strings.Repeat(`]}`, 6000),
}

func TestParseObjectMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	inputs := parseCases
	files, err := filepath.Glob(filepath.Join("testdata", "*.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
			inputs = append(inputs, line)
		}
	}
	for i, in := range inputs {
		name := in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(fmt.Sprintf("%d %q", i, name), func(t *testing.T) {
			checkParse(t, []byte(in))
		})
	}
}

// FuzzParseObject compares ParseObject with the encoding/json decoder; `go test` runs the seeds,
// `go test -fuzz FuzzParseObject` explores.
func FuzzParseObject(f *testing.F) {
	for _, in := range parseCases[:len(parseCases)-3] {
		f.Add([]byte(in))
	}
	for _, in := range buildCases {
		f.Add([]byte(in))
	}
	f.Fuzz(checkParse)
}

func checkParse(t *testing.T, in []byte) {
	want, werr := referenceParse(in)
	got, gerr := ParseObject(in)
	show := in[:min(len(in), 80)]
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("ParseObject(%q…) err = %v, encoding/json err = %v", show, gerr, werr)
	}
	if werr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseObject(%q…) differs from encoding/json", show)
	}
	if werr == nil {
		rows, notices, err := Build(got, loadTime)
		wantRows, wantNotices, wantErr := refBuild(want, loadTime)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(rows, wantRows) || !reflect.DeepEqual(notices, wantNotices) {
			t.Fatalf("Build(%q…) differs from the reference", show)
		}
	}
}

// buildCases are events that exercise every branch of Build: collisions between nested and flat
// keys, keys without letters, reserved names at any depth, traits named like call columns.
var buildCases = []string{
	`{"type":"track","messageId":"m1","userId":"u","event":"Order Completed","properties":{"a":{"b":1},"a_b":2,"A B":3,"":{"id":4,"x":5},"!!":6,"context":{"ip":1},"event":"e","name":"n","tags":[1,{"k":"v"}],"n":null,"o":{}}}`,
	`{"type":"track","messageId":"m2","event":"!!!","context":{"ip":"1","Ip":"2","library":{"name":"x"},"library_name":"y","":"z"}}`,
	`{"type":"track","messageId":"m3","anonymousId":"a","event":"tracks","receivedAt":"2024-01-01T00:00:00Z","sentAt":"bad","timestamp":"2024-01-01T00:00:00.5+01:00","originalTimestamp":"2024-01-01"}`,
	`{"type":"identify","messageId":"m4","userId":"u1","traits":{"name":"N","previous_id":"p","group_id":"g","id":"x","email":"e","Email":"E","nested":{"a":1}},"context":{"traits":{"x":1}}}`,
	`{"type":"identify","messageId":"m5","anonymousId":"a","traits":{"name":"N","plan":"pro"}}`,
	`{"type":"group","messageId":"m6","userId":"u","groupId":"g1","traits":{"name":"Acme","group_id":"no","employees":12,"Employees":13}}`,
	`{"type":"group","messageId":"m7","userId":"u","traits":{"name":"Acme"}}`,
	`{"type":"page","messageId":"m8","userId":"u","name":"Home","properties":{"name":"x","title":"T","Title":"U","url":{"full":"f"},"url_full":"g"}}`,
	`{"type":"screen","messageId":"m9","userId":"u","properties":{"name":"x"}}`,
	`{"type":"alias","messageId":"m10","userId":123,"previousId":"p","properties":{"ignored":1}}`,
	`{"type":"track","messageId":"m11","userId":true,"event":"E","properties":{"` + strings.Repeat("long", 20) + `":1,"` + strings.Repeat("long", 20) + `x":2,"9lives":3}}`,
	`{"type":"track","messageId":"m12","event":"E","properties":{"a":{"b":{"c":1}},"a":{"b_c":2},"a_b_c":3}}`,
	`{"type":"track","messageId":"m13","event":"E","properties":{"":{"":{"user_id":1,"ok":2}}}}`,
}

func TestBuildMatchesReference(t *testing.T) {
	t.Parallel()
	inputs := slices.Clone(buildCases)
	files, err := filepath.Glob(filepath.Join("testdata", "*.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, strings.Split(strings.TrimSpace(string(data)), "\n")...)
	}
	for i, in := range inputs {
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			ev, err := ParseObject([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			rows, notices, err := Build(ev, loadTime)
			wantRows, wantNotices, wantErr := refBuild(ev, loadTime)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Fatalf("err = %v, want %v", err, wantErr)
			}
			if !reflect.DeepEqual(rows, wantRows) {
				t.Errorf("rows\n got %v\nwant %v", rows, wantRows)
			}
			if !reflect.DeepEqual(notices, wantNotices) {
				t.Errorf("notices\n got %v\nwant %v", notices, wantNotices)
			}
		})
	}
}

func TestJSONTextMatchesEncoder(t *testing.T) {
	t.Parallel()
	values := []any{"plain", `q"uote`, `back\slash`, "tab\t", "ctl\x01", "é中😀", "\u2028\u2029", "<&>", "\x7f", "",
		true, false, nil, json.Number("1.5e3"), json.Number("-0"), 2.5, int64(7)}
	for _, v := range values {
		var fast, want bytes.Buffer
		writeJSON(&fast, v)
		writeEncoded(&want, v)
		if fast.String() != want.String() {
			t.Errorf("writeJSON(%#v) = %s, encoding/json gives %s", v, fast.String(), want.String())
		}
	}
}

func TestInferShortcuts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   any
		want Value
	}{
		{json.Number("42"), Value{sqlengine.KindInt, int64(42)}},
		{json.Number("-0"), Value{sqlengine.KindInt, int64(0)}},
		{json.Number("1e3"), Value{sqlengine.KindFloat, 1000.0}},
		{json.Number("2.5"), Value{sqlengine.KindFloat, 2.5}},
		{json.Number("1E2"), Value{sqlengine.KindFloat, 100.0}},
		{json.Number("99999999999999999999"), Value{sqlengine.KindFloat, 1e20}},
		{"2024-01-01T00:00:00Z", Value{sqlengine.KindTimestamp, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"https://example.com/checkout", Value{sqlengine.KindString, "https://example.com/checkout"}},
		{"x024-01-01T00:00:00Z", Value{sqlengine.KindString, "x024-01-01T00:00:00Z"}},
		{"2024/01/01T00:00:00Z", Value{sqlengine.KindString, "2024/01/01T00:00:00Z"}},
	}
	for _, tt := range tests {
		got, ok := infer(tt.in)
		if !ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("infer(%#v) = %#v, %v; want %#v", tt.in, got, ok, tt.want)
		}
	}
}
