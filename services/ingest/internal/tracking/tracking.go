// Package tracking parses, validates and enriches Segment Tracking API
// payloads. It knows nothing about HTTP, gRPC or JetStream: callers hand it
// bytes and get back canonical events or precise rejections.
package tracking

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits from the Segment Tracking API (segment-compat.md §1.5).
const (
	MaxEventBytes   = 32 * 1024
	MaxRequestBytes = 500 * 1024
	MaxBatchEvents  = 2500
	MaxMessageIDLen = 100
)

// EnrichmentAllowance bounds what the server adds to an event beyond its
// Size (receivedAt, timestamp, originalTimestamp, a generated messageId,
// context.ip, the type of a single call, epoch-ms times rewritten as
// ISO-8601, numeric ids quoted, the objects a merge creates): a stored
// event is at most Size + EnrichmentAllowance bytes, so one request stores
// at most MaxRequestBytes + EnrichmentAllowance per event. The fuzz test
// checks the bound on every input.
const EnrichmentAllowance = 512

// RequestError is a request-level failure (HTTP 400): Code is a stable rule
// name, Message says what was wrong.
type RequestError struct {
	Code    string
	Message string
	// Rejected lists per-item reasons when the error is about a batch's
	// items (no_valid_events).
	Rejected []Rejection
}

func (e *RequestError) Error() string { return e.Code + ": " + e.Message }

// Rejection is one invalid event of a request.
type Rejection struct {
	Index   int    `json:"index"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (r Rejection) Error() string { return r.Code + ": " + r.Message }

// Event is one accepted, enriched event.
type Event struct {
	Type      string
	MessageID string
	// JSON is the canonical JSON of the enriched event, as stored on EVENTS.
	JSON []byte
	// Size is what the limits count (at most MaxEventBytes): the event's
	// bytes as the client sent them — a single call's body, a batch item's
	// text plus what the batch's context, integrations and sentAt add to
	// it (batchShared.added), a gRPC event's JSON before enrichment. The
	// server's own fields are not counted (EnrichmentAllowance).
	Size int
}

// Request is a parsed Tracking API request.
type Request struct {
	// WriteKey is the body's writeKey ("" when absent).
	WriteKey string
	Events   []Event
	Rejected []Rejection
	// Warnings are accepted events the server had to interpret (e.g. an
	// unparseable timestamp that fell back to receivedAt); Index is the
	// item's position (0 for a single call).
	Warnings []Rejection
}

// Meta is what the transport knows about a request.
type Meta struct {
	// IP is the client's address; it becomes context.ip unless the event
	// carries one.
	IP string
}

// KnownTypes are the accepted event types. Types match case-insensitively
// ("Track" and "TRACK" are track, as RudderStack does) and are stored in
// lower case.
var KnownTypes = map[string]bool{"identify": true, "track": true, "page": true, "screen": true, "group": true, "alias": true}

// Parser turns request bodies into events.
type Parser struct {
	// Now is the server clock (receivedAt).
	Now func() time.Time
	// NewID makes a messageId for events without one.
	NewID func() string

	// fullOnly turns the fast path off (tests compare both paths).
	fullOnly bool
	// onFull, when set (tests), is called for each event the full path
	// parses.
	onFull func()
}

// NewParser returns a parser with the real clock and random ids.
func NewParser() *Parser { return &Parser{Now: time.Now, NewID: RandomID} }

// RandomID returns a random UUIDv4-formatted id.
func RandomID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ParseSingle parses the body of a single-event call (/v1/track etc.).
// pathType is the type implied by the path; the body's own type, when
// present, must agree. An invalid event is a RequestError.
func (p *Parser) ParseSingle(body []byte, pathType string, meta Meta) (*Request, error) {
	if observeParse != nil {
		observeParse(body, pathType, meta)
	}
	if err := checkBody(body); err != nil {
		return nil, err
	}
	if len(body) > MaxEventBytes {
		return nil, &RequestError{Code: "event_too_large", Message: fmt.Sprintf("event is %d bytes; the limit is %d (Exceed payload limit)", len(body), MaxEventBytes)}
	}
	if !p.fullOnly {
		if req, ok := p.fastSingle(body, pathType, meta); ok {
			return req, nil
		}
	}
	if p.onFull != nil {
		p.onFull()
	}
	obj, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	// The write key is read as sent; the event is judged as it is stored,
	// without NULs.
	req := &Request{WriteKey: stringField(obj, "writeKey")}
	obj.del("writeKey")
	if hasNULEscape(body) {
		stripNUL(obj)
	}
	if t, ok := obj.get("type"); !ok || t == nil || t == "" {
		obj.set("type", pathType)
	}
	if t, _ := obj.get("type"); strings.ToLower(stringOf(t)) != pathType {
		return nil, &RequestError{Code: "type_mismatch", Message: fmt.Sprintf("body type %s does not match the %s endpoint", shownJSON(t), pathType)}
	}
	ev, rej, warn := p.enrich(obj, nil, p.now(), meta, len(body))
	if rej != nil {
		return nil, &RequestError{Code: rej.Code, Message: rej.Message}
	}
	ev.Size = len(body)
	req.Events = []Event{ev}
	if warn != nil {
		req.Warnings = append(req.Warnings, *warn)
	}
	return req, nil
}

// ParseBatch parses a /v1/batch body: valid items are accepted, invalid
// ones are listed in Rejected with their index.
//
// Request-level answers (RequestError): an empty batch is empty_batch; a
// non-empty batch none of whose items is valid is no_valid_events, with the
// per-item reasons in Rejected.
func (p *Parser) ParseBatch(body []byte, meta Meta) (*Request, error) {
	if observeParse != nil {
		observeParse(body, "", meta)
	}
	if err := checkBody(body); err != nil {
		return nil, err
	}
	if !p.fullOnly {
		if req, err, ok := p.fastBatch(body, meta); ok {
			return req, err
		}
	}
	// One pass validates the whole body and splits it; the items are
	// decoded one by one below. Decoder errors are reworded: they name Go
	// types ("Go struct field .batch of type []json.RawMessage").
	var top struct {
		Batch        []json.RawMessage `json:"batch"`
		WriteKey     json.RawMessage   `json:"writeKey"`
		SentAt       json.RawMessage   `json:"sentAt"`
		Context      json.RawMessage   `json:"context"`
		Integrations json.RawMessage   `json:"integrations"`
	}
	if err := json.Unmarshal(body, &top); err != nil {
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &ute) && ute.Field == "":
			return nil, &RequestError{Code: "invalid_json", Message: "body must be a JSON object with a batch array, not " + article(ute.Value)}
		case errors.As(err, &ute) && ute.Field == "batch":
			return nil, &RequestError{Code: "invalid_batch", Message: "batch must be an array of events, not " + article(ute.Value)}
		case errors.As(err, &ute):
			return nil, &RequestError{Code: "invalid_json", Message: "body is not a valid batch: " + ute.Field + " is " + article(ute.Value)}
		}
		return nil, &RequestError{Code: "invalid_json", Message: "body is not valid JSON: " + describeJSONError(err)}
	}
	if top.Batch == nil {
		if string(bytes.TrimSpace(body)) == "null" {
			return nil, &RequestError{Code: "invalid_json", Message: "body must be a JSON object with a batch array, not null"}
		}
		return nil, &RequestError{Code: "missing_batch", Message: "body has no batch array"}
	}
	var writeKey any
	_ = json.Unmarshal(top.WriteKey, &writeKey)
	if len(top.Batch) == 0 {
		return nil, &RequestError{Code: "empty_batch", Message: "batch has no events"}
	}
	if len(top.Batch) > MaxBatchEvents {
		return nil, &RequestError{Code: "batch_too_many_events", Message: fmt.Sprintf("batch has %d events; the limit is %d", len(top.Batch), MaxBatchEvents)}
	}
	sh, rerr := newBatchShared(top.Context, top.Integrations, top.SentAt)
	if rerr != nil {
		return nil, rerr
	}
	req := &Request{Events: make([]Event, 0, len(top.Batch))}
	req.WriteKey, _ = writeKey.(string)
	now := p.now()
	total := 0
	for i, raw := range top.Batch {
		if len(raw) > MaxEventBytes {
			req.Rejected = append(req.Rejected, Rejection{Index: i, Code: "event_too_large", Message: fmt.Sprintf("event is %d bytes; the limit is %d", len(raw), MaxEventBytes)})
			continue
		}
		if p.parseItem(req, i, raw, sh, now, meta) {
			if err := addToTotal(&total, req.Events[len(req.Events)-1].Size, i); err != nil {
				return nil, err
			}
		}
	}
	if len(req.Events) == 0 {
		return req, &RequestError{Code: "no_valid_events", Message: fmt.Sprintf("none of the %d events is valid; first: %s", len(top.Batch), req.Rejected[0].Message), Rejected: req.Rejected}
	}
	return req, nil
}

// batchShared is what a batch's top level gives each of its items: its
// context and integrations, merged into the item's own (the item's keys
// win), and its sentAt, for items without one. It holds them decoded, and
// the bytes each adds to an item's Size.
type batchShared struct {
	context, integrations *object // nil: none
	sentAt                any     // nil: none
	// members holds, for the batch's context and integrations, the bytes of
	// each member as sent (`"key":value,`); all is their sum.
	members map[string]map[string]int
	all     int
	// sentAtSize is the bytes of `"sentAt":value,` as sent.
	sentAtSize int
}

// newBatchShared reads a batch's top-level context, integrations and
// sentAt (raw JSON; absent or null: none).
func newBatchShared(context, integrations, sentAt json.RawMessage) (*batchShared, error) {
	sh := &batchShared{}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  **object
	}{{"context", context, &sh.context}, {"integrations", integrations, &sh.integrations}} {
		if len(f.raw) == 0 || string(f.raw) == "null" {
			continue
		}
		v, err := decodeObject(f.raw)
		if err != nil {
			return nil, &RequestError{Code: "invalid_" + f.name, Message: "top-level " + f.name + " must be an object, not " + rawKind(f.raw)}
		}
		if hasNULEscape(f.raw) {
			stripNUL(v)
		}
		*f.dst = v
		// Each member's text as sent, under its key as stored (without
		// NULs: the members of keys that become one count together).
		var raws map[string]json.RawMessage
		_ = json.Unmarshal(f.raw, &raws)
		sizes := make(map[string]int, len(raws))
		for k, r := range raws {
			n := stringSize(k) + 1 + len(r) + 1
			sizes[strings.ReplaceAll(k, "\x00", "")] += n
			sh.all += n
		}
		if sh.members == nil {
			sh.members = map[string]map[string]int{}
		}
		sh.members[f.name] = sizes
	}
	sh.setSentAt(sentAt)
	return sh, nil
}

// setSentAt records the batch's sentAt (raw JSON; absent or null: none).
func (sh *batchShared) setSentAt(raw []byte) {
	if len(raw) == 0 {
		return
	}
	v := decodeValue(raw)
	if v == nil {
		return
	}
	if hasNULEscape(raw) {
		v = stripNUL(v)
	}
	sh.sentAt = v
	sh.sentAtSize = len(`"sentAt":`) + len(raw) + 1
}

// added is what the batch adds to item obj's size: the members of its
// context and integrations that obj does not set itself, and its sentAt
// when obj has none. The work is bounded by obj's own keys, not by the
// batch's.
func (sh *batchShared) added(obj *object) int {
	if sh == nil {
		return 0
	}
	n := sh.all
	for name, sizes := range sh.members {
		v, _ := obj.get(name)
		if own, ok := v.(*object); ok {
			for _, f := range own.fields {
				n -= sizes[f.key]
			}
		}
	}
	if _, has := obj.get("sentAt"); !has && sh.sentAt != nil {
		n += sh.sentAtSize
	}
	return n
}

// addToTotal adds the Size of accepted item i to a request's running total
// and answers request_too_large once it is over MaxRequestBytes. Without
// batch-level fields the items' sizes add up to less than the body, which
// is within the limit; with them, what the batch gives counts once per
// item that receives it, so a small request cannot store much more than
// it carries. The request is refused whole (nothing is stored), and
// refused as soon as the total is over: the rest is not parsed.
func addToTotal(total *int, size, i int) *RequestError {
	*total += size
	if *total <= MaxRequestBytes {
		return nil
	}
	return &RequestError{Code: "request_too_large", Message: fmt.Sprintf("the events are over %d bytes with the batch's context, integrations and sentAt merged into each (%d bytes by item %d); send fewer events per request or less in the batch's context", MaxRequestBytes, *total, i)}
}

// parseItem decodes, validates and enriches batch item i (full path) and
// adds it to req's events, rejections and warnings; it reports whether the
// item was accepted. An item over MaxEventBytes once the batch's fields
// are merged in is rejected (event_too_large) before anything else.
func (p *Parser) parseItem(req *Request, i int, raw []byte, sh *batchShared, now time.Time, meta Meta) bool {
	if p.onFull != nil {
		p.onFull()
	}
	obj, err := decodeObject(raw)
	if err != nil {
		req.Rejected = append(req.Rejected, Rejection{Index: i, Code: "invalid_event", Message: "event must be a JSON object, not " + rawKind(raw)})
		return false
	}
	if hasNULEscape(raw) {
		stripNUL(obj)
	}
	size := len(raw) + sh.added(obj)
	if size > MaxEventBytes {
		req.Rejected = append(req.Rejected, Rejection{Index: i, Code: "event_too_large", Message: fmt.Sprintf("event is %d bytes with what the batch's context, integrations and sentAt add to it; the limit is %d", size, MaxEventBytes)})
		return false
	}
	ev, rej, warn := p.enrich(obj, sh, now, meta, size)
	if rej != nil {
		rej.Index = i
		req.Rejected = append(req.Rejected, *rej)
		return false
	}
	if warn != nil {
		warn.Index = i
		req.Warnings = append(req.Warnings, *warn)
	}
	ev.Size = size
	req.Events = append(req.Events, ev)
	return true
}

// observeParse, when set (by this package's tests), sees every body
// parsed: the tests then compare the fast and the full path on each.
var observeParse func(body []byte, pathType string, meta Meta)

// now is the receivedAt clock, truncated to the millisecond so that
// receivedAt and the corrected timestamp are exact to the millisecond.
func (p *Parser) now() time.Time { return p.Now().UTC().Truncate(time.Millisecond) }

// ParseObject validates and enriches one already-decoded event (gRPC path).
// Its Size is its JSON before enrichment (compact, as the event would be
// stored without the server's fields); over MaxEventBytes it is rejected
// (event_too_large) before anything else, as an HTTP event is. A map has
// no order: the event's own keys are stored sorted (at every level), the
// server's fields after them.
func (p *Parser) ParseObject(obj map[string]any, meta Meta) (Event, *Rejection) {
	b, err := marshal(obj)
	if err != nil {
		return Event{}, &Rejection{Code: "invalid_event", Message: err.Error()}
	}
	size := len(b)
	if size > MaxEventBytes {
		return Event{}, &Rejection{Code: "event_too_large", Message: fmt.Sprintf("event is %d bytes; the limit is %d", size, MaxEventBytes)}
	}
	o, err := decodeObject(b)
	if err != nil {
		return Event{}, &Rejection{Code: "invalid_event", Message: "event cannot be encoded as JSON"}
	}
	if hasNULEscape(b) {
		stripNUL(o)
	}
	ev, rej, _ := p.enrich(o, nil, p.now(), meta, size)
	if rej != nil {
		return Event{}, rej
	}
	ev.Size = size
	return ev, nil
}

// checkBody applies the request-level rules: size and encoding. The one
// rule for text: a body must be valid UTF-8 (else 400 invalid_utf8), and
// NUL characters are removed from every string before anything is stored,
// because PostgreSQL text cannot hold them.
func checkBody(body []byte) error {
	if len(body) > MaxRequestBytes {
		return &RequestError{Code: "request_too_large", Message: fmt.Sprintf("request is %d bytes; the limit is %d", len(body), MaxRequestBytes)}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return &RequestError{Code: "empty_body", Message: "body is empty"}
	}
	if !utf8.Valid(body) {
		return &RequestError{Code: "invalid_utf8", Message: "body is not valid UTF-8"}
	}
	return nil
}

// decodeError words why b, which json.Valid refused, is not one JSON
// object. Its errors speak JSON's terms, never Go's: a decoder error such
// as "cannot unmarshal array into Go value of type map[string]interface {}"
// is reworded.
func decodeError(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return &RequestError{Code: "invalid_json", Message: "body is not valid JSON: " + describeJSONError(err)}
	}
	if _, ok := v.(map[string]any); !ok {
		return &RequestError{Code: "invalid_json", Message: "body must be a JSON object, not " + jsonKind(v)}
	}
	return &RequestError{Code: "invalid_json", Message: "body has data after the JSON object"}
}

// describeJSONError words a decoding error without Go type names.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("%s (at byte %d)", strings.TrimPrefix(syn.Error(), "json: "), syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "it ends before the JSON value is complete"
	default:
		return "it cannot be decoded"
	}
}

// jsonKind names the JSON kind of a decoded value: "an array", "a string",
// "null"…
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any, *object:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "an unsupported value"
}

// rawKind names the JSON kind of raw JSON text.
func rawKind(raw json.RawMessage) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "invalid JSON"
	}
	return jsonKind(v)
}

// article words a JSON kind as json.UnmarshalTypeError.Value names it
// ("array", "string", "number", "bool").
func article(kind string) string {
	switch kind {
	case "array", "object":
		return "an " + kind
	case "bool":
		return "a boolean"
	case "string", "number":
		return "a " + kind
	}
	return kind
}

// shownJSON renders a decoded value as JSON text for a message (a value
// the server cannot read is shown as the client sent it, never in Go
// syntax); long values are cut.
func shownJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return jsonKind(v)
	}
	if len(b) > 100 {
		return string(b[:100]) + "…"
	}
	return string(b)
}

func stringField(obj *object, k string) string {
	v, _ := obj.get(k)
	return stringOf(v)
}

func stringOf(v any) string {
	s, _ := v.(string)
	return s
}

// TimeFormat is how Ingest writes timestamps: ISO-8601 UTC with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// enrich validates obj and adds the server-set fields. sh holds a batch's
// top-level context, integrations and sentAt (nil: none). warn is set when
// the event was accepted with an interpretation the client should know
// about. sizeHint is about the event's size (the output buffer's).
//
// The client's members keep their order, at every level. The server's
// fields go after them, in the order the fast path writes them: type, a
// context or integrations the event did not have (context first), sentAt
// when the batch's applies or an epoch-ms sentAt is rewritten,
// originalTimestamp when set, timestamp, receivedAt, messageId. A member
// changed in place stays where it is: a numeric id quoted, context.ip
// replacing a null or "" one, a merged context or integrations replacing
// the event's own (or its null). An added context.ip is the context's
// first member.
func (p *Parser) enrich(obj *object, sh *batchShared, now time.Time, meta Meta, sizeHint int) (ev Event, rej *Rejection, warn *Rejection) {
	t, _ := obj.get("type")
	typ := strings.ToLower(stringOf(t))
	if !KnownTypes[typ] {
		if t == nil || t == "" {
			return Event{}, &Rejection{Code: "invalid_type", Message: "type is required: one of identify, track, page, screen, group, alias"}, nil
		}
		return Event{}, &Rejection{Code: "invalid_type", Message: fmt.Sprintf("type %s is not one of identify, track, page, screen, group, alias", shownJSON(t))}, nil
	}
	for _, k := range []string{"userId", "anonymousId", "groupId", "previousId"} {
		if err := normalizeID(obj, k); err != nil {
			return Event{}, err, nil
		}
	}
	isSet := func(k string) bool { v, _ := obj.get(k); return v != nil }
	if !isSet("userId") && !isSet("anonymousId") {
		return Event{}, &Rejection{Code: "missing_user_id", Message: "userId or anonymousId is required"}, nil
	}
	switch typ {
	case "track":
		name, _ := obj.get("event")
		if s, ok := name.(string); !ok || strings.TrimSpace(s) == "" {
			return Event{}, &Rejection{Code: "missing_event", Message: "track needs a non-blank event name"}, nil
		}
	case "group":
		if !isSet("groupId") {
			return Event{}, &Rejection{Code: "missing_group_id", Message: "group needs groupId"}, nil
		}
	case "alias":
		if !isSet("previousId") || !isSet("userId") {
			return Event{}, &Rejection{Code: "missing_previous_id", Message: "alias needs previousId and userId"}, nil
		}
	}
	for _, k := range []string{"properties", "traits", "context", "integrations"} {
		if v, _ := obj.get(k); v != nil {
			if _, isObj := v.(*object); !isObj {
				return Event{}, &Rejection{Code: "invalid_" + strings.ToLower(k), Message: k + " must be an object"}, nil
			}
		}
	}
	id, _ := obj.get("messageId")
	var msgID string
	switch t := id.(type) {
	case nil:
	case string:
		msgID = t
	case json.Number:
		msgID = t.String()
	default:
		return Event{}, &Rejection{Code: "invalid_message_id", Message: "messageId must be a string"}, nil
	}
	if n := utf8.RuneCountInString(msgID); n > MaxMessageIDLen {
		return Event{}, &Rejection{Code: "message_id_too_long", Message: fmt.Sprintf("messageId has %d characters; the limit is %d", n, MaxMessageIDLen)}, nil
	}

	// Accepted: from here on the server's fields are added, in the order
	// above.
	obj.setLast("type", typ)
	if sh != nil && sh.context != nil {
		mergeObject(obj, "context", sh.context)
	}
	if meta.IP != "" {
		v, _ := obj.get("context")
		if ctx, _ := v.(*object); ctx == nil {
			obj.set("context", &object{fields: []field{{"ip", meta.IP}}})
		} else if i := ctx.index("ip"); i < 0 {
			ctx.fields = slices.Insert(ctx.fields, 0, field{"ip", meta.IP})
		} else if ip := ctx.fields[i].val; ip == nil || ip == "" {
			ctx.fields[i].val = meta.IP
		}
	}
	if sh != nil && sh.integrations != nil {
		mergeObject(obj, "integrations", sh.integrations)
	}
	if sh != nil && sh.sentAt != nil {
		if _, has := obj.get("sentAt"); !has {
			obj.set("sentAt", sh.sentAt)
		}
	}
	warn = setTimestamps(obj, now)
	if msgID == "" {
		msgID = p.NewID()
	}
	obj.setLast("messageId", msgID)
	b := appendJSON(make([]byte, 0, sizeHint+eventOverhead+len(meta.IP)), obj)
	return Event{Type: typ, MessageID: msgID, JSON: b}, nil, warn
}

// normalizeID makes an id field a string, in place: numbers keep their
// exact text, empty strings count as absent, objects, arrays and booleans
// are rejected.
func normalizeID(obj *object, k string) *Rejection {
	v, ok := obj.get(k)
	if !ok {
		return nil
	}
	switch t := v.(type) {
	case nil:
		obj.del(k)
	case string:
		if strings.TrimSpace(t) == "" {
			obj.del(k)
		}
	case json.Number:
		obj.set(k, t.String())
	default:
		return &Rejection{Code: "invalid_" + strings.ToLower(k[:1]) + k[1:], Message: k + " must be a string or a number"}
	}
	return nil
}

// mergeObject merges a batch's shared object under obj[k]; the event's own
// keys win (one level). The merged object holds the batch's members the
// event does not set, in the batch's order, then the event's own, in its
// order: read in document order with the last key winning, the event's
// members win over the batch's also where keys differ only in case. It
// takes the place of the event's own member, or comes after its members
// when it had none. shared is not changed (every item of the batch gets
// it).
func mergeObject(obj *object, k string, shared *object) {
	v, _ := obj.get(k)
	own, _ := v.(*object)
	merged := &object{fields: make([]field, 0, len(shared.fields)+len(ownFields(own)))}
	if own == nil {
		merged.fields = append(merged.fields, shared.fields...)
	} else {
		set := own.keys()
		for _, f := range shared.fields {
			if !own.has(set, f.key) {
				merged.fields = append(merged.fields, f)
			}
		}
		merged.fields = append(merged.fields, own.fields...)
	}
	obj.set(k, merged)
}

func ownFields(o *object) []field {
	if o == nil {
		return nil
	}
	return o.fields
}

// parseTime reads a client time: an RFC 3339 string (any offset; stored
// in UTC), or a JSON number taken as Unix epoch milliseconds (what some
// SDKs and hand-written clients send). ok is false for anything else.
func parseTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case string:
		ts, err := time.Parse(time.RFC3339Nano, t)
		return ts.UTC(), err == nil
	case json.Number:
		ms, err := t.Int64()
		if err != nil || ms < 0 {
			return time.Time{}, false
		}
		return time.UnixMilli(ms).UTC(), true
	}
	return time.Time{}, false
}

// setTimestamps applies Segment's rule (segment-compat.md §2.5):
//   - receivedAt is the server clock;
//   - the client's time is its timestamp, or, without one, its
//     originalTimestamp (what a stored Segment event carries);
//     originalTimestamp keeps it as sent (an epoch-ms number is rewritten
//     as ISO-8601 UTC);
//   - with a client time and a sentAt, timestamp = receivedAt − (sentAt −
//     client time): the device's clock skew is removed, and the transit
//     delay is folded into the correction;
//   - with only a client time (a historical import), timestamp is it, in UTC;
//   - otherwise timestamp is receivedAt. A client time or sentAt that cannot
//     be read is kept as sent, never guessed at, and the event is accepted
//     with a warning (invalid_timestamp / invalid_sent_at).
//
// The fields it writes go to the end of obj, in this order: a rewritten
// sentAt, originalTimestamp, timestamp, receivedAt.
func setTimestamps(obj *object, now time.Time) *Rejection {
	key := "timestamp"
	if v, ok := obj.get("timestamp"); !ok || v == nil || v == "" {
		key = "originalTimestamp"
	}
	raw, hasRaw := obj.get(key)
	hasRaw = hasRaw && raw != nil && raw != ""
	ts, hasTS := parseTime(raw)
	sentRaw, hasSentRaw := obj.get("sentAt")
	hasSentRaw = hasSentRaw && sentRaw != nil && sentRaw != ""
	sent, hasSent := parseTime(sentRaw)
	if hasSent {
		if _, isNum := sentRaw.(json.Number); isNum {
			obj.setLast("sentAt", sent.Format(TimeFormat))
		}
	}
	if hasRaw {
		v := raw
		if _, isNum := raw.(json.Number); isNum && hasTS {
			v = ts.Format(TimeFormat)
		}
		obj.setLast("originalTimestamp", v)
	}
	var warn *Rejection
	timestamp := now
	switch {
	case hasTS && hasSent:
		timestamp = now.Add(-sent.Sub(ts))
	case hasTS:
		timestamp = ts
		if hasSentRaw {
			warn = &Rejection{Code: "invalid_sent_at", Message: fmt.Sprintf("sentAt %s is not an ISO-8601 time or epoch milliseconds; timestamp was not corrected", shownJSON(sentRaw))}
		}
	default:
		if hasRaw {
			warn = &Rejection{Code: "invalid_timestamp", Message: fmt.Sprintf("%s %s is not an ISO-8601 time or epoch milliseconds; timestamp is receivedAt", key, shownJSON(raw))}
		}
	}
	obj.setLast("timestamp", timestamp.Format(TimeFormat))
	obj.setLast("receivedAt", now.Format(TimeFormat))
	return warn
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, errors.New("event cannot be encoded as JSON")
	}
	return unescapeLineSeparators(bytes.TrimRight(buf.Bytes(), "\n")), nil
}

// unescapeLineSeparators writes U+2028 and U+2029 as themselves (UTF-8),
// in place. encoding/json escapes them (for JSONP), which made an event of
// them stored up to twice the size the client sent, and differ from the
// fast path's (which keeps the client's text).
func unescapeLineSeparators(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u202`)) {
		return b
	}
	out := b[:0] // the output is never longer than what is read
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		// Every backslash of the encoder's output starts an escape (they
		// occur only in strings), so the byte after it is its second.
		if i+5 < len(b) && string(b[i+1:i+5]) == "u202" && (b[i+5] == '8' || b[i+5] == '9') {
			out = append(out, 0xE2, 0x80, 0xA8+(b[i+5]-'8'))
			i += 5
			continue
		}
		out = append(out, c, b[i+1])
		i++
	}
	return out
}

// stringSize is the length of s as a JSON string written by marshal or
// appendString.
func stringSize(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t':
				n += 2
			case c < 0x20:
				n += 6 // \u00XX
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			n += 6 // \ufffd
		} else {
			n += size
		}
		i += size
	}
	return n
}
