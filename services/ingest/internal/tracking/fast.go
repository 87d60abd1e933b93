package tracking

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// The fast path: validate with the scanner and splice the server-set fields
// into the client's text instead of decoding every event into a map and
// encoding it again. It handles the common, clean event; anything else —
// an event to reject or warn about, a key present twice, an escape the
// full path rewrites, a batch-level context or integrations to merge —
// goes through the full path (enrich), so answers and stored events do not
// depend on which path ran. Both store the same members and values with
// every object's keys in the client's order, the server's fields placed by
// one rule (enrich); the full path writes compact text, so an event sent
// compact is stored byte for byte the same. TestMain compares both paths on
// every body the package's tests parse, the fuzz seeds included.

// fastState is the per-request scratch of the fast path.
type fastState struct {
	sc      scanner
	top     []member
	members []member
	items   []item
}

var fastPool = sync.Pool{New: func() any { return &fastState{} }}

func getFast() *fastState { return fastPool.Get().(*fastState) }

func putFast(f *fastState) {
	if cap(f.members) > 64*1024 || cap(f.sc.keys) > 64*1024 {
		return // an unusually large request: let its scratch go
	}
	f.sc.b = nil
	f.top, f.members, f.items, f.sc.keys = f.top[:0], f.members[:0], f.items[:0], f.sc.keys[:0]
	fastPool.Put(f)
}

// reqCtx is what every event of a request shares.
type reqCtx struct {
	now     time.Time
	nowText string // receivedAt
	ipJSON  []byte // context.ip as a JSON string; nil when unknown
	// A batch's top-level sentAt, applied to items without one: its text
	// in body (sentKind is kindNone when absent) and its reading.
	body       []byte
	sentAt     span
	sentKind   kind
	sentEsc    bool
	sentTime   time.Time
	sentOK     bool // readable
	sentFastOK bool // readable by the fast path
	// sentBytes is what the batch's sentAt adds to the Size of an item
	// without one (batchShared.sentAt).
	sentBytes int
}

func newReqCtx(p *Parser, meta Meta) *reqCtx {
	rc := &reqCtx{now: p.now()}
	rc.nowText = rc.now.Format(TimeFormat)
	if meta.IP != "" {
		rc.ipJSON, _ = json.Marshal(meta.IP)
	}
	return rc
}

func (f *fastState) text(v span) []byte { return f.sc.b[v.s:v.e] }

// str is the content of a string value (no quotes; the caller checked it
// has no escapes).
func (f *fastState) str(m *member) []byte { return f.sc.b[m.val.s+1 : m.val.e-1] }

// isEmptyString reports whether m is the string "".
func (f *fastState) isEmptyString(m *member) bool {
	return m.kind == kindString && m.val.e-m.val.s == 2
}

// absent reports whether m counts as not set: missing, null or "".
func (f *fastState) absent(m *member) bool {
	return m == nil || m.kind == kindNull || f.isEmptyString(m)
}

// fastTypes are the known types, for an ASCII case-insensitive match
// (strings.ToLower on ASCII text).
var fastTypes = []string{"identify", "track", "page", "screen", "group", "alias"}

func asciiType(b []byte) string {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return ""
		}
	}
	for _, t := range fastTypes {
		if len(t) == len(b) && bytes.EqualFold(b, []byte(t)) {
			return t
		}
	}
	return ""
}

// fields of an event the fast path reads or rewrites; the others are
// copied as they are.
const (
	fType = iota
	fUserID
	fAnonymousID
	fGroupID
	fPreviousID
	fEvent
	fProperties
	fTraits
	fContext
	fIntegrations
	fMessageID
	fTimestamp
	fOriginalTimestamp
	fSentAt
	fReceivedAt
	fWriteKey
	nFields
)

func fieldOf(k []byte) int {
	switch string(k) {
	case "type":
		return fType
	case "userId":
		return fUserID
	case "anonymousId":
		return fAnonymousID
	case "groupId":
		return fGroupID
	case "previousId":
		return fPreviousID
	case "event":
		return fEvent
	case "properties":
		return fProperties
	case "traits":
		return fTraits
	case "context":
		return fContext
	case "integrations":
		return fIntegrations
	case "messageId":
		return fMessageID
	case "timestamp":
		return fTimestamp
	case "originalTimestamp":
		return fOriginalTimestamp
	case "sentAt":
		return fSentAt
	case "receivedAt":
		return fReceivedAt
	case "writeKey":
		return fWriteKey
	}
	return -1
}

// fastTime reads a client time as parseTime does; ok is false when the
// text must go through the full path (escapes).
func (f *fastState) fastTime(m *member) (t time.Time, readable, ok bool) {
	switch m.kind {
	case kindString:
		if m.esc {
			return time.Time{}, false, false
		}
		ts, err := time.Parse(time.RFC3339Nano, string(f.str(m)))
		return ts.UTC(), err == nil, true
	case kindNumber:
		ms, err := strconv.ParseInt(string(f.text(m.val)), 10, 64)
		if err != nil || ms < 0 {
			return time.Time{}, false, true
		}
		return time.UnixMilli(ms).UTC(), true, true
	}
	return time.Time{}, false, true
}

// event builds one event from members ms of an object of size bytes,
// appending its JSON to out. single: a single-event call whose path implies
// pathType (and whose writeKey is taken out). ok is false when the event
// must take the full path; then out is returned unchanged.
func (f *fastState) event(p *Parser, rc *reqCtx, ms []member, single bool, pathType string, size int, out []byte) (ev Event, writeKey string, _ []byte, ok bool) {
	var fld [nFields]*member
	for i := range ms {
		if k := fieldOf(f.text(ms[i].key)); k >= 0 {
			fld[k] = &ms[i]
		}
	}
	// type
	var typ string
	switch t := fld[fType]; {
	case single && f.absent(t):
		typ = pathType
	case t == nil || t.kind != kindString || t.esc:
		return Event{}, "", out, false
	default:
		typ = asciiType(f.str(t))
		if typ == "" || (single && typ != pathType) {
			return Event{}, "", out, false
		}
	}
	// ids: strings without escapes, numbers (become strings), or absent
	// (missing, null, blank).
	var idSet [nFields]bool
	for _, k := range []int{fUserID, fAnonymousID, fGroupID, fPreviousID} {
		m := fld[k]
		if m == nil || m.kind == kindNull {
			continue
		}
		switch {
		case m.kind == kindNumber:
			idSet[k] = true
		case m.kind == kindString && !m.esc:
			idSet[k] = len(bytes.TrimSpace(f.str(m))) > 0
		default:
			return Event{}, "", out, false
		}
	}
	if !idSet[fUserID] && !idSet[fAnonymousID] {
		return Event{}, "", out, false
	}
	switch typ {
	case "track":
		m := fld[fEvent]
		if m == nil || m.kind != kindString || m.esc || len(bytes.TrimSpace(f.str(m))) == 0 {
			return Event{}, "", out, false
		}
	case "group":
		if !idSet[fGroupID] {
			return Event{}, "", out, false
		}
	case "alias":
		if !idSet[fPreviousID] || !idSet[fUserID] {
			return Event{}, "", out, false
		}
	}
	for _, k := range []int{fProperties, fTraits, fContext, fIntegrations} {
		if m := fld[k]; m != nil && m.kind != kindNull && m.kind != kindObject {
			return Event{}, "", out, false
		}
	}
	// messageId: "" or absent gets a new id (below, once nothing can fail).
	var msgID []byte
	genID := false
	switch m := fld[fMessageID]; {
	case f.absent(m):
		genID = true
	case m.kind == kindString && !m.esc:
		msgID = f.str(m)
	case m.kind == kindNumber:
		msgID = f.text(m.val)
	default:
		return Event{}, "", out, false
	}
	if utf8.RuneCount(msgID) > MaxMessageIDLen {
		return Event{}, "", out, false
	}
	// context.ip: added when the event has none.
	var ctxMembers []member
	addIP := false
	if rc.ipJSON != nil {
		if m := fld[fContext]; m != nil && m.kind == kindObject {
			ctxMembers = f.objectMembers(m.val)
			var ip *member
			for i := range ctxMembers {
				if string(f.text(ctxMembers[i].key)) == "ip" {
					ip = &ctxMembers[i]
				}
			}
			if ip != nil && f.absent(ip) {
				return Event{}, "", out, false // null or "": replaced on the full path
			}
			addIP = ip == nil
		} else {
			addIP = true
		}
	}
	// Times (setTimestamps); unreadable ones take the full path (warning).
	key := fTimestamp
	if f.absent(fld[fTimestamp]) {
		key = fOriginalTimestamp
	}
	raw := fld[key]
	hasRaw := !f.absent(raw)
	var ts time.Time
	if hasRaw {
		var readable, fine bool
		ts, readable, fine = f.fastTime(raw)
		if !fine || !readable {
			return Event{}, "", out, false
		}
	}
	sentM := fld[fSentAt]
	var shared member
	if sentM == nil && rc.sentKind != kindNone {
		shared = member{val: rc.sentAt, kind: rc.sentKind, esc: rc.sentEsc}
		sentM = &shared
	}
	var sent time.Time
	hasSent := false
	if !f.absent(sentM) {
		var fine bool
		if sentM == &shared {
			sent, hasSent, fine = rc.sentTime, rc.sentOK, rc.sentFastOK
		} else {
			sent, hasSent, fine = f.fastTime(sentM)
		}
		if !fine || !hasSent {
			return Event{}, "", out, false
		}
	}
	if single {
		if m := fld[fWriteKey]; m != nil && m.kind == kindString {
			if m.esc {
				return Event{}, "", out, false
			}
			writeKey = string(f.str(m))
		}
	}

	// Nothing can fail from here on.
	start := len(out)
	out = append(out, '{')
	for i := range ms {
		m := &ms[i]
		k := fieldOf(f.text(m.key))
		switch k {
		case fType, fMessageID, fReceivedAt, fTimestamp:
			continue // written below
		case fWriteKey:
			if single {
				continue
			}
		case fOriginalTimestamp:
			if hasRaw {
				continue
			}
		case fSentAt:
			if hasSent && sentM.kind == kindNumber {
				continue
			}
		case fUserID, fAnonymousID, fGroupID, fPreviousID:
			if !idSet[k] {
				continue // null or blank: dropped
			}
			if m.kind == kindNumber {
				out = appendKey(out, f.text(m.key))
				out = append(out, '"')
				out = append(out, f.text(m.val)...)
				out = append(out, '"')
				continue
			}
		case fContext:
			if addIP {
				out = appendKey(out, f.text(m.key))
				out = append(out, `{"ip":`...)
				out = append(out, rc.ipJSON...)
				if m.kind == kindObject && len(ctxMembers) > 0 {
					out = append(out, ',')
					out = append(out, f.sc.b[ctxMembers[0].key.s-1:m.val.e-1]...)
				}
				out = append(out, '}')
				continue
			}
		}
		out = appendKey(out, f.text(m.key))
		out = append(out, f.text(m.val)...)
	}
	out = appendKey(out, []byte("type"))
	out = strconv.AppendQuote(out, typ)
	if addIP && fld[fContext] == nil {
		out = appendKey(out, []byte("context"))
		out = append(out, `{"ip":`...)
		out = append(out, rc.ipJSON...)
		out = append(out, '}')
	}
	if sentM == &shared {
		out = appendKey(out, []byte("sentAt"))
		if hasSent && shared.kind == kindNumber {
			out = appendTime(out, sent)
		} else {
			out = append(out, rc.body[shared.val.s:shared.val.e]...)
		}
	} else if hasSent && sentM.kind == kindNumber {
		out = appendKey(out, []byte("sentAt"))
		out = appendTime(out, sent)
	}
	if hasRaw {
		out = appendKey(out, []byte("originalTimestamp"))
		if raw.kind == kindNumber {
			out = appendTime(out, ts)
		} else {
			out = append(out, f.text(raw.val)...)
		}
	}
	out = appendKey(out, []byte("timestamp"))
	switch {
	case hasRaw && hasSent:
		out = appendTime(out, rc.now.Add(-sent.Sub(ts)))
	case hasRaw:
		out = appendTime(out, ts)
	default:
		out = append(out, '"')
		out = append(out, rc.nowText...)
		out = append(out, '"')
	}
	out = appendKey(out, []byte("receivedAt"))
	out = append(out, '"')
	out = append(out, rc.nowText...)
	out = append(out, '"')
	var id string
	if genID {
		id = p.NewID()
	} else {
		id = string(msgID)
	}
	out = appendKey(out, []byte("messageId"))
	out = appendJSONString(out, id)
	out = append(out, '}')
	if sentM == &shared {
		size += rc.sentBytes
	}
	return Event{Type: typ, MessageID: id, JSON: out[start:len(out):len(out)], Size: size}, writeKey, out, true
}

// objectMembers lists the members of the (already validated) object at v.
func (f *fastState) objectMembers(v span) []member {
	var ms []member
	depth := f.sc.depth
	_, _ = f.sc.object(v.s, &ms)
	f.sc.depth = depth
	return ms
}

// appendKey writes `,"k":` (without the comma right after '{').
func appendKey(out, k []byte) []byte {
	if out[len(out)-1] != '{' {
		out = append(out, ',')
	}
	out = append(out, '"')
	out = append(out, k...)
	return append(out, '"', ':')
}

func appendTime(out []byte, t time.Time) []byte {
	out = append(out, '"')
	out = t.AppendFormat(out, TimeFormat)
	return append(out, '"')
}

// appendJSONString writes s as a JSON string (s is valid UTF-8 without
// NUL: a client's escape-free messageId or a generated one).
func appendJSONString(out []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			b, _ := json.Marshal(s)
			return append(out, b...)
		}
	}
	out = append(out, '"')
	out = append(out, s...)
	return append(out, '"')
}

// fastSingle is ParseSingle's fast path; ok is false when the body must
// take the full path.
func (p *Parser) fastSingle(body []byte, pathType string, meta Meta) (*Request, bool) {
	f := getFast()
	defer putFast(f)
	ms, ok := f.sc.topObject(body, f.top[:0])
	if !ok {
		return nil, false
	}
	f.top = ms
	rc := newReqCtx(p, meta)
	ev, wk, _, ok := f.event(p, rc, ms, true, pathType, len(body), make([]byte, 0, len(body)+eventOverhead+len(rc.ipJSON)))
	if !ok {
		return nil, false
	}
	return &Request{WriteKey: wk, Events: []Event{ev}}, true
}

// eventOverhead is room for the fields the server adds to an event.
const eventOverhead = 256

// fastBatch is ParseBatch's fast path. ok is false when the request must
// take the full path (request-level errors, a top-level context or
// integrations to merge, keys present twice…); items the fast path cannot
// take go through the full path one by one.
func (p *Parser) fastBatch(body []byte, meta Meta) (_ *Request, _ error, ok bool) {
	f := getFast()
	defer putFast(f)
	top, ok := f.sc.batchBody(body, f.top[:0], &f.items, &f.members)
	if !ok {
		return nil, nil, false
	}
	f.top = top
	var batch, wk, sentAt *member
	for i := range top {
		m := &top[i]
		switch k := f.text(m.key); string(k) {
		case "batch":
			batch = m
		case "writeKey":
			wk = m
		case "sentAt":
			sentAt = m
		case "context", "integrations":
			if m.kind != kindNull {
				return nil, nil, false
			}
		default:
			// encoding/json matches struct fields case-insensitively.
			for _, name := range []string{"batch", "writeKey", "sentAt", "context", "integrations"} {
				if bytes.EqualFold(k, []byte(name)) {
					return nil, nil, false
				}
			}
		}
	}
	if batch == nil || batch.kind != kindArray || len(f.items) == 0 || len(f.items) > MaxBatchEvents {
		return nil, nil, false
	}
	req := &Request{Events: make([]Event, 0, len(f.items))}
	if wk != nil && wk.kind == kindString {
		if wk.esc {
			return nil, nil, false
		}
		req.WriteKey = string(f.str(wk))
	}
	rc := newReqCtx(p, meta)
	rc.body = body
	var sh *batchShared // the full path's view, built when an item needs it
	if sentAt != nil && sentAt.kind != kindNull {
		rc.sentAt, rc.sentKind, rc.sentEsc = sentAt.val, sentAt.kind, sentAt.esc
		rc.sentTime, rc.sentOK, rc.sentFastOK = f.fastTime(sentAt)
		rc.sentBytes = len(`"sentAt":`) + sentAt.val.e - sentAt.val.s + 1
	}
	out := make([]byte, 0, len(body)+len(f.items)*(eventOverhead+len(rc.ipJSON)))
	total := 0
	for i, it := range f.items {
		raw := body[it.val.s:it.val.e]
		if len(raw) > MaxEventBytes {
			req.Rejected = append(req.Rejected, Rejection{Index: i, Code: "event_too_large", Message: fmt.Sprintf("event is %d bytes; the limit is %d", len(raw), MaxEventBytes)})
			continue
		}
		// An item that could be over the limit with the batch's sentAt
		// takes the full path, which rejects it when it is.
		if it.kind == kindObject && len(raw)+rc.sentBytes <= MaxEventBytes {
			if ev, _, o, ok := f.event(p, rc, f.members[it.m0:it.m1], false, "", len(raw), out); ok {
				out = o
				req.Events = append(req.Events, ev)
				if err := addToTotal(&total, ev.Size, i); err != nil {
					return nil, err, true
				}
				continue
			}
		}
		if sh == nil {
			sh = &batchShared{}
			if rc.sentKind != kindNone {
				sh.setSentAt(body[rc.sentAt.s:rc.sentAt.e])
			}
		}
		if p.parseItem(req, i, raw, sh, rc.now, meta) {
			if err := addToTotal(&total, req.Events[len(req.Events)-1].Size, i); err != nil {
				return nil, err, true
			}
		}
	}
	if len(req.Events) == 0 {
		return req, &RequestError{Code: "no_valid_events", Message: fmt.Sprintf("none of the %d events is valid; first: %s", len(f.items), req.Rejected[0].Message), Rejected: req.Rejected}, true
	}
	return req, nil, true
}
