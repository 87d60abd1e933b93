package tracking

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// countingParser is a test parser that counts the events its full path
// parses.
func countingParser(fullOnly bool) (*Parser, *int) {
	p := pathParser(fullOnly)
	n := new(int)
	p.onFull = func() { *n++ }
	return p, n
}

// A request whose events take both paths stores each in the order the
// client sent its keys, at every level, so that of keys differing only in
// case the one sent last stays last (the warehouse's rule, case wh-08).
func TestKeyOrderIsKeptWhicheverPathParses(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile(filepath.Join("testdata", "seeds", "key_order.json"))
	if err != nil {
		t.Fatal(err)
	}
	meta := Meta{IP: "192.0.2.1"}
	const tail = `"sentAt":"2026-12-03T12:00:05.000Z","originalTimestamp":"2026-12-03T12:00:00.000Z","timestamp":"2026-12-03T11:59:55.000Z","receivedAt":"2026-12-03T12:00:00.000Z"`
	track := func(id string) string {
		return `{"userId":"u-1","event":"Order Completed","properties":{"b":1,"B":2,"a":3,"nested":{"z":{"y":1,"x":2}}},"context":{"ip":"192.0.2.1","Locale":"de","locale":"fr"},"type":"track",` + tail + `,"messageId":"` + id + `"}`
	}
	identify := `{"userId":"u-1","traits":{"Total":1,"total":2,"TOTAL":3,"address":{"Street":"a","street":"b"}},"context":{"ip":"192.0.2.1","Locale":"de","locale":"fr"},"type":"identify",` + tail + `,"messageId":"m-é-2"}`

	t.Run("a batch mixing the fast and the full path", func(t *testing.T) {
		p, full := countingParser(false)
		req, err := p.ParseBatch(body, meta)
		if err != nil {
			t.Fatal(err)
		}
		// The first item takes the fast path; the escaped é of the others'
		// messageIds sends them through the full path.
		if *full != 2 {
			t.Errorf("%d events took the full path, want 2", *full)
		}
		wantEvents(t, req, track("m-fast"), track("m-café"), identify)
	})

	t.Run("a batch on the full path for a NUL", func(t *testing.T) {
		// A \u0000 anywhere sends the whole request through the full path.
		nul := bytes.Replace(body, []byte(`m-caf\u00e9`), []byte(`m-nul\u0000`), 1)
		p, full := countingParser(false)
		req, err := p.ParseBatch(nul, meta)
		if err != nil {
			t.Fatal(err)
		}
		if *full != 3 {
			t.Errorf("%d events took the full path, want 3", *full)
		}
		wantEvents(t, req, track("m-fast"), track("m-nul"), identify)
	})

	t.Run("a batch-level context merged into each item", func(t *testing.T) {
		// The batch's members the item does not set come first, in the
		// batch's order, then the item's: its Locale wins over the batch's,
		// and its locale, sent last, stays last.
		withContext := append([]byte(`{"context":{"Locale":"en","app":{"b":1,"a":2},"LOCALE":"it"},`), body[1:]...)
		req, err := pathParser(false).ParseBatch(withContext, meta)
		if err != nil {
			t.Fatal(err)
		}
		merged := `"context":{"ip":"192.0.2.1","app":{"b":1,"a":2},"LOCALE":"it","Locale":"de","locale":"fr"}`
		own := `"context":{"ip":"192.0.2.1","Locale":"de","locale":"fr"}`
		wantEvents(t, req,
			strings.Replace(track("m-fast"), own, merged, 1),
			strings.Replace(track("m-café"), own, merged, 1),
			strings.Replace(identify, own, merged, 1))
	})

	t.Run("a single call on the full path stores what the fast path stores", func(t *testing.T) {
		item := func(id string) []byte {
			return []byte(`{"type":"track","userId":"u-1","event":"Order Completed","messageId":"` + id + `","properties":{"b":1,"B":2,"a":3,"nested":{"z":{"y":1,"x":2}}},"sentAt":"2026-12-03T12:00:05.000Z","context":{"Locale":"de","locale":"fr"},"timestamp":"2026-12-03T12:00:00.000Z"}`)
		}
		p, full := countingParser(false)
		fast, err := p.ParseSingle(item("m-1"), "track", meta)
		if err != nil || *full != 0 {
			t.Fatalf("fast path: %v, %d full", err, *full)
		}
		slow, err := p.ParseSingle(item(`m-1\u0000`), "track", meta)
		if err != nil || *full != 1 {
			t.Fatalf("full path: %v, %d full", err, *full)
		}
		want := `{"userId":"u-1","event":"Order Completed","properties":{"b":1,"B":2,"a":3,"nested":{"z":{"y":1,"x":2}}},"sentAt":"2026-12-03T12:00:05.000Z","context":{"ip":"192.0.2.1","Locale":"de","locale":"fr"},"type":"track","originalTimestamp":"2026-12-03T12:00:00.000Z","timestamp":"2026-12-03T11:59:55.000Z","receivedAt":"2026-12-03T12:00:00.000Z","messageId":"m-1"}`
		wantEvents(t, fast, want)
		wantEvents(t, slow, want)
	})

	t.Run("a key sent twice keeps its last value at its last place", func(t *testing.T) {
		// Also after NULs are removed: "a\u0000" and "a" are one key.
		b := []byte(`{"type":"track","userId":"u","event":"E","messageId":"m","properties":{"k":1,"j":2,"k":3,"a\u0000":4,"A":5,"a":6}}`)
		req, err := pathParser(false).ParseSingle(b, "track", Meta{})
		if err != nil {
			t.Fatal(err)
		}
		wantEvents(t, req, `{"userId":"u","event":"E","properties":{"j":2,"k":3,"A":5,"a":6},"type":"track","timestamp":"2026-12-03T12:00:00.000Z","receivedAt":"2026-12-03T12:00:00.000Z","messageId":"m"}`)
	})

	t.Run("context.ip replaces a null or empty one in place", func(t *testing.T) {
		b := []byte(`{"type":"track","userId":"u","event":"E","messageId":"m","context":{"z":1,"ip":null,"a":2}}`)
		req, err := pathParser(false).ParseSingle(b, "track", meta)
		if err != nil {
			t.Fatal(err)
		}
		wantEvents(t, req, `{"userId":"u","event":"E","context":{"z":1,"ip":"192.0.2.1","a":2},"type":"track","timestamp":"2026-12-03T12:00:00.000Z","receivedAt":"2026-12-03T12:00:00.000Z","messageId":"m"}`)
	})
}

// wantEvents checks the stored JSON of req's events, byte for byte.
func wantEvents(t *testing.T, req *Request, want ...string) {
	t.Helper()
	if len(req.Events) != len(want) || len(req.Rejected) != 0 {
		t.Fatalf("%d events, rejected %v; want %d events", len(req.Events), req.Rejected, len(want))
	}
	for i, ev := range req.Events {
		if string(ev.JSON) != want[i] {
			t.Errorf("event %d stored\n %s\nwant\n %s", i, ev.JSON, want[i])
		}
	}
}

// option is one way to write an event's member: its text, and whether it
// is in the form the full path writes (compact, no escape it would write
// otherwise), so that both paths must store the same bytes.
type option struct {
	text      string
	canonical bool
}

func canon(texts ...string) []option {
	o := make([]option, len(texts))
	for i, s := range texts {
		o[i] = option{s, true}
	}
	return o
}

// eventMembers are the members a generated event draws from, each with
// the ways to write it, all of them taken by the fast path.
var eventMembers = []struct {
	key      string
	required bool
	opts     []option
}{
	{"anonymousId", true, canon(`"a-1"`, `7`)},
	{"userId", false, canon(`"u-1"`, `12345678901234567890`, `null`, `"  "`)},
	{"groupId", false, canon(`"g-1"`, `0`)},
	{"event", false, canon(`"Order Completed"`)},
	{"messageId", false, canon(`"m-1"`, `""`, `12.5`, `"Mé€ 😀"`)},
	{"properties", false, append(canon(
		`{"b":1,"B":2,"a":3,"nested":{"z":{"y":1,"x":2}},"list":[{"q":1,"p":2},[]],"e":{}}`,
		`{"Total":1.50,"total":2e3,"TOTAL":-0,"s":"é € 😀 `+"\u2028\u2029"+` \"q\" \\ \n\t\u001f","n":null,"t":true}`),
		option{`{ "b" : 1 ,"B":2, "a":[ 3 ,{"y" :1,"x":2} ] }`, false},
		option{`{"s":"caf\u00e9 \/ \u2028","S":"\u0041"}`, false})},
	{"traits", false, canon(`{"Name":"x","name":"y","address":{"Street":"a","street":"b"}}`)},
	{"context", false, append(canon(
		`{"Locale":"de","locale":"fr","library":{"version":"1","name":"x"}}`,
		`{"ip":"10.0.0.1","z":1,"a":2}`, `{}`, `null`),
		option{`{"page":{"path":"\/a","url":"https:\/\/x"} , "locale":"fr"}`, false})},
	{"integrations", false, canon(`{"Z":true,"A":false,"All":{"b":1,"a":2}}`)},
	{"timestamp", false, canon(`"2026-12-03T11:59:00.000Z"`, `1764763140000`, `"2026-12-03T12:59:00.5+01:00"`, `null`, `""`)},
	{"originalTimestamp", false, canon(`"2026-12-03T11:58:00Z"`, `null`)},
	{"sentAt", false, canon(`"2026-12-03T12:00:01.000Z"`, `1764763201000`, `null`)},
	{"receivedAt", false, canon(`"2000-01-01T00:00:00Z"`)},
	{"writeKey", false, canon(`"wk"`)},
	{"zeta", false, canon(`{"b":[1,{"d":1,"c":2}],"a":"x"}`, `"z"`)},
	{"Alpha", false, canon(`true`, `[3,2,1]`)},
	{"TYPE", false, canon(`"not the type"`)},
}

// genEvent writes an event of type typ (without its type member when
// !withType: a single call whose path gives it) from a random subset of
// eventMembers in a random order.
func genEvent(r *rand.Rand, typ string, withType bool) (body string, canonical bool) {
	var ms []string
	canonical = true
	if withType {
		ms = append(ms, `"type":"`+typ+`"`)
	}
	typ = strings.ToLower(typ)
	for _, m := range eventMembers {
		if !m.required && r.IntN(2) == 0 && !(m.key == "event" && typ == "track") && !(m.key == "groupId" && typ == "group") {
			continue
		}
		o := m.opts[r.IntN(len(m.opts))]
		canonical = canonical && o.canonical
		ms = append(ms, `"`+m.key+`":`+o.text)
	}
	r.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
	return "{" + strings.Join(ms, ",") + "}", canonical
}

// For events the fast path takes, the full path stores the same values
// with every object's keys in the same order — and, for an event written
// in the form the full path writes, the same bytes: where each path puts
// the server's fields is one rule, not two.
func TestFullPathStoresWhatTheFastPathStores(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(8, 2026))
	types := []string{"track", "identify", "page", "screen", "group", "TRACK", "Page"}
	tops := []string{``, `"sentAt":"2026-12-03T12:00:02.000Z",`, `"sentAt":1764763202000,`, `"writeKey":"k","sentAt":"",`}
	metas := []Meta{{}, {IP: "192.0.2.1"}}
	compared, sameBytes := 0, 0
	check := func(name, body string, pathType string, meta Meta, canonical bool) {
		t.Helper()
		run := func(fullOnly bool) (*Request, int, error) {
			p, full := countingParser(fullOnly)
			if pathType == "" {
				req, err := p.ParseBatch([]byte(body), meta)
				return req, *full, err
			}
			req, err := p.ParseSingle([]byte(body), pathType, meta)
			return req, *full, err
		}
		fr, nFull, ferr := run(false)
		sr, _, serr := run(true)
		if ferr != nil || serr != nil || nFull != 0 {
			t.Fatalf("%s %s: fast %v (%d events on the full path), full %v", name, body, ferr, nFull, serr)
		}
		if len(fr.Events) != len(sr.Events) || len(fr.Events) == 0 || fr.WriteKey != sr.WriteKey || !slices.Equal(fr.Warnings, sr.Warnings) {
			t.Fatalf("%s %s: fast %+v, full %+v", name, body, *fr, *sr)
		}
		for i := range fr.Events {
			f, s := fr.Events[i], sr.Events[i]
			compared++
			if f.Type != s.Type || f.MessageID != s.MessageID || f.Size != s.Size {
				t.Errorf("%s %s: event %d: %s/%s/%d vs %s/%s/%d", name, body, i, f.Type, f.MessageID, f.Size, s.Type, s.MessageID, s.Size)
			}
			ft, err1 := tokens(f.JSON)
			st, err2 := tokens(s.JSON)
			if err1 != nil || err2 != nil || !slices.Equal(ft, st) {
				t.Errorf("%s %s: event %d differs in values or key order:\n fast %s\n full %s", name, body, i, f.JSON, s.JSON)
				continue
			}
			if canonical {
				sameBytes++
				if !bytes.Equal(f.JSON, s.JSON) {
					t.Errorf("%s %s: event %d differs in bytes:\n fast %s\n full %s", name, body, i, f.JSON, s.JSON)
				}
			}
		}
	}
	for n := 0; n < 400; n++ {
		typ := types[n%len(types)]
		meta := metas[n%len(metas)]
		ev, canonical := genEvent(r, typ, true)
		check("single", ev, strings.ToLower(typ), meta, canonical)
		if n%3 == 0 {
			bare, canonical := genEvent(r, typ, false)
			check("single without type", bare, strings.ToLower(typ), meta, canonical)
		}
		ev2, canonical2 := genEvent(r, types[r.IntN(len(types))], true)
		top := tops[n%len(tops)]
		check("batch", fmt.Sprintf(`{%s"batch":[%s,%s]}`, top, ev, ev2), "", meta, canonical && canonical2)
	}
	if compared < 1000 || sameBytes < 400 {
		t.Errorf("compared %d events, %d of them byte for byte: the generator lost its reach", compared, sameBytes)
	}
}
