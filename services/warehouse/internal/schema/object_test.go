package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
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
	if v.Kind != NodeObject {
		return nil, errors.New("not a JSON object")
	}
	return v.Members, nil
}

func referenceValue(dec *json.Decoder) (Node, error) {
	tok, err := dec.Token()
	if err != nil {
		return Node{}, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			var o Object
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return Node{}, err
				}
				key, ok := kt.(string)
				if !ok {
					return Node{}, fmt.Errorf("object key is %T", kt)
				}
				v, err := referenceValue(dec)
				if err != nil {
					return Node{}, err
				}
				o = append(o, Member{Key: key, Value: v})
			}
			_, err := dec.Token()
			return Node{Kind: NodeObject, Members: o}, err
		case '[':
			var a []Member
			for dec.More() {
				v, err := referenceValue(dec)
				if err != nil {
					return Node{}, err
				}
				a = append(a, Member{Value: v})
			}
			_, err := dec.Token()
			return Node{Kind: NodeArray, Members: a}, err
		}
		return Node{}, fmt.Errorf("unexpected delimiter %v", t)
	case json.Number:
		return Node{Kind: NodeNumber, Text: string(t)}, nil
	case string:
		return Node{Kind: NodeString, Text: t}, nil
	case bool:
		if t {
			return Node{Kind: NodeTrue}, nil
		}
		return Node{Kind: NodeFalse}, nil
	case nil:
		return Node{Kind: NodeNull}, nil
	}
	return Node{}, fmt.Errorf("unexpected token %T", tok)
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
		gotRows, cerr := asRefRows(rows)
		if cerr != nil {
			t.Fatalf("Build(%q…): %v", show, cerr)
		}
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(gotRows, wantRows) || !reflect.DeepEqual(notices, wantNotices) {
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
			built, notices, err := Build(ev, loadTime)
			wantRows, wantNotices, wantErr := refBuild(ev, loadTime)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Fatalf("err = %v, want %v", err, wantErr)
			}
			rows, err := asRefRows(built)
			if err != nil {
				t.Fatal(err)
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
	for _, v := range []string{"plain", `q"uote`, `back\slash`, "tab\t", "ctl\x01", "é中😀", "\u2028\u2029", "<&>", "\x7f", ""} {
		var fast, want bytes.Buffer
		writeString(&fast, v)
		writeEncoded(&want, v)
		if fast.String() != want.String() {
			t.Errorf("writeString(%q) = %s, encoding/json gives %s", v, fast.String(), want.String())
		}
	}
	// Arrays: what encoding/json writes for the decoded value (numbers kept as written; objects
	// keep document order, so the members here are in sorted order, as encoding/json sorts maps).
	for _, in := range []string{`[]`, `["a",1.5e3,-0,true,false,null]`, `[[],[{}],{"a":1,"b":"<\u2028>"}]`, `["é\u0000x", 12345678901234567890]`} {
		ev, err := ParseObject([]byte(`{"v":` + in + `}`))
		if err != nil {
			t.Fatal(err)
		}
		var decoded any
		dec := json.NewDecoder(strings.NewReader(in))
		dec.UseNumber()
		if err := dec.Decode(&decoded); err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		writeEncoded(&want, decoded)
		if got := jsonText(ev[0].Value); got != want.String() {
			t.Errorf("jsonText(%s) = %s, encoding/json gives %s", in, got, want.String())
		}
	}
}

func TestInferShortcuts(t *testing.T) {
	t.Parallel()
	num := func(s string) Node { return Node{Kind: NodeNumber, Text: s} }
	text := func(s string) Node { return Node{Kind: NodeString, Text: s} }
	tests := []struct {
		in   Node
		want Value
	}{
		{num("42"), IntValue(42)},
		{num("-0"), IntValue(0)},
		{num("1e3"), FloatValue(1000)},
		{num("2.5"), FloatValue(2.5)},
		{num("1E2"), FloatValue(100)},
		{num("99999999999999999999"), FloatValue(1e20)},
		{num("1e400"), StringValue("1e400")},
		{text("2024-01-01T00:00:00Z"), TimeValue(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))},
		{text("https://example.com/checkout"), StringValue("https://example.com/checkout")},
		{text("x024-01-01T00:00:00Z"), StringValue("x024-01-01T00:00:00Z")},
		{text("2024/01/01T00:00:00Z"), StringValue("2024/01/01T00:00:00Z")},
		{Node{Kind: NodeTrue}, BoolValue(true)},
		{Node{Kind: NodeArray}, StringValue("[]")},
	}
	for _, tt := range tests {
		got, ok := infer(tt.in)
		if !ok || got != tt.want {
			t.Errorf("infer(%+v) = %v, %v; want %v", tt.in, got, ok, tt.want)
		}
	}
	if _, ok := infer(Node{Kind: NodeNull}); ok {
		t.Error("infer(null) gave a value")
	}
}

func TestValueRoundTrips(t *testing.T) {
	t.Parallel()
	ts := time.Date(1969, 12, 31, 23, 59, 59, 123456789, time.UTC)
	for _, tt := range []struct {
		v    Value
		want any
	}{
		{StringValue("x"), "x"},
		{IntValue(-1 << 63), int64(-1 << 63)},
		{FloatValue(-0.5), -0.5},
		{BoolValue(true), true},
		{BoolValue(false), false},
		{TimeValue(ts.In(time.FixedZone("X", 3600))), ts},
		{Value{}, nil},
	} {
		if got := tt.v.Any(); got != tt.want {
			t.Errorf("%v.Any() = %#v, want %#v", tt.v, got, tt.want)
		}
	}
}

// TestTimestampMatchesTimeParse checks the fast timestamp reader against time.Parse (parseTime)
// on edge cases and random date-times, valid or not.
func TestTimestampMatchesTimeParse(t *testing.T) {
	t.Parallel()
	inputs := []string{
		"2024-05-01T10:00:00.000Z", "2024-05-01T10:00:00Z", "2024-02-29T23:59:59.999999999Z", "2023-02-29T00:00:00Z",
		"2024-05-01T10:00:00.1234567891234Z", "2024-05-01T10:00:00+02:00", "2024-05-01T10:00:00.5-07:30",
		"0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999-23:59", "1969-12-31T23:59:59.5Z", "1900-03-01T00:00:00Z",
		"2024-13-01T00:00:00Z", "2024-04-31T00:00:00Z", "2024-05-01t10:00:00Z", "2024-05-01T24:00:00Z",
		"2024-05-01T10:60:00Z", "2024-05-01T10:00:60Z", "2024-05-01T10:00:00", "2024-05-01T10:00:00+2:00",
		"2024-05-01T10:00:00+24:00", "2024-05-01T10:00:00+02:60", "2024-05-01T10:00:00,5Z", "2024-05-01T10:00:00.Z",
		"2024-05-01T1:00:00Z", "2024-05-01 10:00:00Z", "2024-05-01T10:00:00z", "+024-05-01T10:00:00Z", "2024-05-01",
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := []byte(fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02d", r.IntN(10000), r.IntN(14), r.IntN(33), r.IntN(25), r.IntN(61), r.IntN(61)))
		if r.IntN(2) == 0 {
			b = fmt.Appendf(b, ".%0*d", 1+r.IntN(12), r.IntN(1000000))
		}
		switch r.IntN(3) {
		case 0:
			b = append(b, 'Z')
		case 1:
			b = fmt.Appendf(b, "%c%02d:%02d", "+-"[r.IntN(2)], r.IntN(25), r.IntN(61))
		}
		if r.IntN(10) == 0 {
			b[r.IntN(len(b))] = "0T:-.Z+x"[r.IntN(8)]
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		want, wok := parseTime(in)
		got, gok := timestamp(in)
		if gok != wok || (wok && got != TimeValue(want)) {
			t.Errorf("timestamp(%q) = %v, %v; time.Parse gives %v, %v", in, got, gok, want, wok)
		}
	}
}

// TestBuilderReuseMatchesReference runs every case through one Builder, twice in a row and with
// its column memory recycled between the rounds: the caches (names, key memos), the parser's
// buffers and recycled chunks must never leak from one event into another.
func TestBuilderReuseMatchesReference(t *testing.T) {
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
	var many []string // enough events to fill full-size chunks, which are recycled
	for range 8 {
		many = append(many, inputs...)
	}
	b := NewBuilder()
	for round := range 3 {
		var kept [][]Row
		for _, in := range many {
			rows, notices, err := b.Rows([]byte(in), loadTime)
			ev, perr := ParseObject([]byte(in))
			if perr != nil {
				t.Fatal(perr)
			}
			wantRows, wantNotices, wantErr := refBuild(ev, loadTime)
			got, cerr := asRefRows(rows)
			if cerr != nil {
				t.Fatal(cerr)
			}
			if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, wantRows) || !reflect.DeepEqual(notices, wantNotices) {
				t.Fatalf("round %d: Rows(%.60s…) differs from the reference:\n got %v %v %v\nwant %v %v %v", round, in, got, notices, err, wantRows, wantNotices, wantErr)
			}
			kept = append(kept, rows)
		}
		// Rows stay valid until their chunks are recycled.
		for i, in := range many {
			ev, _ := ParseObject([]byte(in))
			want, _, _ := refBuild(ev, loadTime)
			if got, _ := asRefRows(kept[i]); !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d: rows of %.60s… changed after later events", round, in)
			}
		}
		chunks := b.TakeChunks()
		if len(chunks) == 0 {
			t.Fatal("no full-size chunk was used: the test does not exercise recycling")
		}
		chunks.Recycle()
	}
}

// TestShortDecimalMatchesParseFloat checks the decimal fast path against strconv.ParseFloat.
func TestShortDecimalMatchesParseFloat(t *testing.T) {
	t.Parallel()
	inputs := []string{"4.99", "-0.5", "0.1", "12.5", "123456789012.345", "999999999999999.", "0.00000000000001", "-0.0", "1.0"}
	r := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		digits := fmt.Sprintf("%015d", r.Uint64N(1_000_000_000_000_000))[:1+r.IntN(15)]
		at := r.IntN(len(digits) + 1)
		in := digits[:at] + "." + digits[at:]
		if r.IntN(2) == 0 {
			in = "-" + in
		}
		inputs = append(inputs, in)
	}
	for _, in := range inputs {
		got, ok := shortDecimal(in)
		want, err := strconv.ParseFloat(in, 64)
		if !ok || err != nil || got != want || math.Signbit(got) != math.Signbit(want) {
			t.Errorf("shortDecimal(%q) = %v, %v; strconv gives %v, %v", in, got, ok, want, err)
		}
	}
	for _, in := range []string{"1", "1e5", "1.5e3", "1234567890123456.7", "0.000000000000001", "--1.5", "1..5", ".", "-"} {
		if _, ok := shortDecimal(in); ok {
			t.Errorf("shortDecimal(%q) took a literal it must leave to strconv", in)
		}
	}
}
