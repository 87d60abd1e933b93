package jetstream

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

func TestPackRoundTrip(t *testing.T) {
	evs := []PackedEvent{
		{MessageID: "a,\"b\"\n c", Type: "track", JSON: []byte(`{"type":"track","x":[1, 2],"s":"],["}`)},
		{MessageID: "id-2", Type: "identify", JSON: []byte("{\n  \"type\": \"identify\"\n}")},
		{MessageID: "é", Type: "page", JSON: []byte(`{}`)},
	}
	base := nats.Header{"Switchyard-Otel-traceparent": {"00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"}}
	msg := PackMsg("events.ws.src", Headers{Workspace: "ws", Source: "src", MsgID: "ignored", EventType: "ignored"}, base, evs)
	if msg.Subject != "events.ws.src" || msg.Header.Get(HeaderWorkspace) != "ws" || msg.Header.Get(HeaderSource) != "src" {
		t.Fatalf("routing headers: %v", msg.Header)
	}
	if msg.Header.Get(HeaderMessageID) != "" || msg.Header.Get(HeaderEventType) != "" {
		t.Fatalf("a pack has no single messageId or type header: %v", msg.Header)
	}
	if got, want := msg.Header.Get(HeaderMsgID), PackID("ws", []string{evs[0].MessageID, "id-2", "é"}); got != want || !strings.HasPrefix(got, "pack:") {
		t.Fatalf("Nats-Msg-Id = %q, want %q", got, want)
	}
	if msg.Header.Get("Switchyard-Otel-traceparent") == "" || len(base) != 1 {
		t.Fatalf("trace header not copied, or base modified: %v / %v", msg.Header, base)
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(msg.Data, &arr); err != nil || len(arr) != 3 {
		t.Fatalf("body is not a JSON array of 3: %v %s", err, msg.Data)
	}
	got, err := UnpackData(msg.Header, msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range got {
		if ev.Index != i || ev.MessageID != evs[i].MessageID || ev.Type != evs[i].Type || string(ev.JSON) != string(evs[i].JSON) {
			t.Fatalf("event %d = %+v (%s), want %+v (%s)", i, ev, ev.JSON, evs[i], evs[i].JSON)
		}
	}
	ids, err := MessageIDs(msg.Header)
	if err != nil || len(ids) != 3 || ids[0] != evs[0].MessageID || ids[2] != "é" {
		t.Fatalf("MessageIDs = %q, %v", ids, err)
	}
	if el, err := PackElement(msg.Data, 1); err != nil || string(el) != string(evs[1].JSON) {
		t.Fatalf("PackElement = %s, %v", el, err)
	}
}

func TestUnpackSingleEventMessage(t *testing.T) {
	hdr := nats.Header{}
	Headers{MsgID: "m1", Workspace: "ws", Source: "src", EventType: "track"}.apply(hdr)
	got, err := UnpackData(hdr, []byte(`{"type":"track"}`))
	if err != nil || len(got) != 1 || got[0].MessageID != "m1" || got[0].Type != "track" || string(got[0].JSON) != `{"type":"track"}` {
		t.Fatalf("UnpackData = %+v, %v", got, err)
	}
	if ids, err := MessageIDs(hdr); err != nil || len(ids) != 1 || ids[0] != "m1" {
		t.Fatalf("MessageIDs = %q, %v", ids, err)
	}
	if ids, err := MessageIDs(nats.Header{}); err != nil || len(ids) != 0 {
		t.Fatalf("MessageIDs of a message without ids = %q, %v", ids, err)
	}
}

func TestUnpackRefusesMalformedPacks(t *testing.T) {
	good := PackMsg("s", Headers{}, nil, []PackedEvent{{MessageID: "a", Type: "track", JSON: []byte(`{"a":1}`)}, {MessageID: "b", Type: "track", JSON: []byte(`{"b":2}`)}})
	for name, c := range map[string]struct {
		index string
		body  string
	}{
		"index not JSON":      {`[[7,"track"`, string(good.Data)},
		"negative size":       {`[[-1,"track","a"]]`, `[]`},
		"size beyond body":    {`[[7,"track","a"],[70,"track","b"]]`, string(good.Data)},
		"trailing bytes":      {`[[7,"track","a"]]`, string(good.Data)},
		"missing separator":   {`[[7,"track","a"],[6,"track","b"]]`, `[{"a":1}{"b":2}]`},
		"body not an array":   {`[[7,"track","a"]]`, `{"a":1}`},
		"type not a string":   {`[[7,1,"a"]]`, `[{"a":1}]`},
		"messageId not a str": {`[[7,"track",2]]`, `[{"a":1}]`},
	} {
		hdr := nats.Header{HeaderPack: {c.index}}
		if evs, err := UnpackData(hdr, []byte(c.body)); !errors.Is(err, ErrBadPack) {
			t.Errorf("%s: UnpackData = %+v, %v; want ErrBadPack", name, evs, err)
		}
	}
}

func TestIndexScannerAgreesWithJSON(t *testing.T) {
	for _, ids := range [][]string{
		{"a", "b"},
		{"plain-uuid-0e6b7d0c", "with \"quote\"", "tab\there", "ünïcödé", "<&>"},
		{"", "x"},
	} {
		evs := make([]PackedEvent, len(ids))
		for i, id := range ids {
			evs[i] = PackedEvent{MessageID: id, Type: "track", JSON: []byte(`{"i":` + strings.Repeat("1", i+1) + `}`)}
		}
		msg := PackMsg("s", Headers{}, nil, evs)
		got, err := UnpackData(msg.Header, msg.Data)
		if err != nil {
			t.Fatalf("%q: %v", ids, err)
		}
		for i := range ids {
			if got[i].MessageID != ids[i] || string(got[i].JSON) != string(evs[i].JSON) {
				t.Fatalf("%q: event %d = %+v", ids, i, got[i])
			}
		}
	}
	// Inputs the scanner refuses fall back to encoding/json (same answer).
	for _, idx := range []string{`[[1,"t","a"] ]`, `[ [1,"t","a"]]`, `[[1,"t","\u0061"]]`} {
		evs, _, err := packIndex(idx)
		if err != nil || len(evs) != 1 || evs[0].MessageID != "a" {
			t.Errorf("%s: %+v %v", idx, evs, err)
		}
	}
	if _, _, ok := scanIndex(`[[99999999999,"t","a"]]`); ok {
		t.Error("an 11-digit size must not be scanned")
	}
}

func BenchmarkMessageIDs(b *testing.B) {
	evs := make([]PackedEvent, 100)
	for i := range evs {
		evs[i] = PackedEvent{MessageID: "0e6b7d0c-6a4b-4a8e-9a57-0000000000" + strconv.Itoa(10+i), Type: "track", JSON: []byte(`{"type":"track"}`)}
	}
	msg := PackMsg("s", Headers{}, nil, evs)
	b.ReportAllocs()
	for b.Loop() {
		if ids, err := MessageIDs(msg.Header); err != nil || len(ids) != 100 {
			b.Fatal(err)
		}
	}
}

func TestMessageIDsAHeaderCannotCarryAreEncoded(t *testing.T) {
	for _, id := range []string{"a\nb", "a b", " lead", "trail ", "bell\a", "crlf\r\n", "plain-id", "ünï"} {
		msg := NewMsg(t.Context(), "s", []byte(`{}`), Headers{MsgID: id, Workspace: "ws"})
		for _, vals := range msg.Header {
			for _, v := range vals {
				if !HeaderSafe(v) {
					t.Fatalf("%q: header value %q cannot travel unchanged", id, v)
				}
			}
		}
		if HeaderSafe(id) != (msg.Header.Get(HeaderMessageIDEncoding) == "") {
			t.Errorf("%q: encoding header %q", id, msg.Header.Get(HeaderMessageIDEncoding))
		}
		evs, err := UnpackData(msg.Header, msg.Data)
		if err != nil || evs[0].MessageID != id {
			t.Errorf("%q: UnpackData = %+v, %v", id, evs, err)
		}
		if ids, err := MessageIDs(msg.Header); err != nil || len(ids) != 1 || ids[0] != id {
			t.Errorf("%q: MessageIDs = %q, %v", id, ids, err)
		}
	}
	a := NewMsg(t.Context(), "s", nil, Headers{MsgID: "a\nb"})
	b := NewMsg(t.Context(), "s", nil, Headers{MsgID: "a b"})
	if a.Header.Get(HeaderMsgID) == b.Header.Get(HeaderMsgID) {
		t.Fatal("two distinct messageIds share a Nats-Msg-Id")
	}
}
