package jetstream

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// An EVENTS message holds either one event or a pack of events.
//
// A single event is the event's JSON as the body, with the routing headers
// of Headers (Nats-Msg-Id and Switchyard-Message-Id = its messageId,
// Switchyard-Event-Type = its type).
//
// A pack holds the events one Ingest request accepted for one source, in
// request order: the body is a JSON array of the events (each element is
// the event's JSON exactly as a single message would hold it), and the
// header Switchyard-Pack indexes it as a JSON array with one
// [size, type, messageId] entry per event, size being the byte length of
// the element. Nats-Msg-Id is PackID of the messageIds; there is no
// Switchyard-Message-Id or Switchyard-Event-Type header. Workspace,
// source and trace context headers are those of a single event. A
// consumer splits a pack with Unpack, which also reads single-event
// messages, so consumers handle both (and messages stored before packs
// existed).
//
// Packing is what lets one JetStream message carry a 100-event batch: the
// server's work and memory are per message, not per byte.
const HeaderPack = "Switchyard-Pack"

// MaxPackBytes bounds the body of one pack. NATS refuses messages over the
// server's max_payload (1 MiB by default, headers included), so a request
// whose events exceed it is stored as several packs; with the 32 KB event
// limit any pack of at least one event fits.
const MaxPackBytes = 768 << 10

// MaxPackIndexBytes bounds the Switchyard-Pack header: JetStream refuses a
// message whose headers exceed 64 KiB, so a request with more events than
// the index can describe (about 900 with UUID messageIds) is stored as
// several packs.
const MaxPackIndexBytes = 48 << 10

// PackIndexEntrySize is the number of bytes ev's entry takes in the
// Switchyard-Pack header, separator included.
func PackIndexEntrySize(ev PackedEvent) int {
	return len(appendIndexEntry(nil, ev)) + 1
}

func appendIndexEntry(dst []byte, ev PackedEvent) []byte {
	dst = append(dst, '[')
	dst = strconv.AppendInt(dst, int64(len(ev.JSON)), 10)
	dst = append(dst, ',')
	dst = appendJSONString(dst, ev.Type)
	dst = append(dst, ',')
	dst = appendJSONString(dst, ev.MessageID)
	return append(dst, ']')
}

// PackedEvent is one event of a pack.
type PackedEvent struct {
	// Index is the event's position in its message (0 for a single-event
	// message).
	Index int
	// MessageID and Type are the event's messageId and type.
	MessageID string
	Type      string
	// JSON is the event's canonical JSON. From Unpack it aliases the
	// message's body.
	JSON []byte
}

// PackID is the Nats-Msg-Id of a pack: a digest of its workspace and
// messageIds, so re-publishing the same pack within the stream's
// duplicate window stores it once.
func PackID(workspaceID string, messageIDs []string) string {
	h := sha256.New()
	h.Write([]byte(workspaceID))
	for _, id := range messageIDs {
		h.Write([]byte{0})
		h.Write([]byte(id))
	}
	return "pack:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// PackMsg builds the message of a pack of evs (at least two; one event is
// stored as a single-event message; the caller keeps the body within
// MaxPackBytes and the index within MaxPackIndexBytes) with the routing headers h (its MsgID
// and EventType are ignored) plus any extra headers in base (trace context),
// which PackMsg does not modify.
func PackMsg(subject string, h Headers, base nats.Header, evs []PackedEvent) *nats.Msg {
	size := 2 + len(evs)
	for _, ev := range evs {
		size += len(ev.JSON)
	}
	body := make([]byte, 0, size)
	index := make([]byte, 0, len(evs)*48)
	ids := make([]string, len(evs))
	body = append(body, '[')
	index = append(index, '[')
	for i, ev := range evs {
		if i > 0 {
			body = append(body, ',')
			index = append(index, ',')
		}
		body = append(body, ev.JSON...)
		index = appendIndexEntry(index, ev)
		ids[i] = ev.MessageID
	}
	body = append(body, ']')
	index = append(index, ']')
	hdr := make(nats.Header, 4+len(base))
	for k, v := range base {
		hdr[k] = v
	}
	h.MsgID, h.EventType = "", ""
	h.apply(hdr)
	hdr.Del(HeaderMessageIDEncoding)
	hdr.Set(HeaderMsgID, PackID(h.Workspace, ids))
	hdr.Set(HeaderPack, string(index))
	return &nats.Msg{Subject: subject, Header: hdr, Data: body}
}

func appendJSONString(dst []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			plain = false
			break
		}
	}
	if plain {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	b, _ := json.Marshal(s) // a Go string always marshals
	return append(dst, b...)
}

// IsPack reports whether hdr is the header of a pack.
func IsPack(hdr nats.Header) bool { return len(hdr[HeaderPack]) > 0 }

// ErrBadPack means a message's Switchyard-Pack header does not describe
// its body.
var ErrBadPack = errors.New("malformed event pack")

// packIndex decodes the Switchyard-Pack header. Entries whose strings
// have no escapes (the usual case) are read by a byte scanner; anything
// else goes through encoding/json.
func packIndex(v string) ([]PackedEvent, []int, error) {
	if evs, sizes, ok := scanIndex(v); ok {
		return evs, sizes, nil
	}
	var raw [][3]json.RawMessage
	if err := json.Unmarshal([]byte(v), &raw); err != nil {
		return nil, nil, fmt.Errorf("%w: index: %v", ErrBadPack, err)
	}
	out := make([]PackedEvent, len(raw))
	sizes := make([]int, len(raw))
	for i, e := range raw {
		n, err := strconv.Atoi(string(e[0]))
		if err != nil || n < 0 {
			return nil, nil, fmt.Errorf("%w: entry %d: bad size %s", ErrBadPack, i, e[0])
		}
		out[i].Index, sizes[i] = i, n
		if err := json.Unmarshal(e[1], &out[i].Type); err != nil {
			return nil, nil, fmt.Errorf("%w: entry %d: type: %v", ErrBadPack, i, err)
		}
		if err := json.Unmarshal(e[2], &out[i].MessageID); err != nil {
			return nil, nil, fmt.Errorf("%w: entry %d: messageId: %v", ErrBadPack, i, err)
		}
	}
	return out, sizes, nil
}

// scanIndex reads an index written by PackMsg whose strings need no
// unescaping; ok is false for anything else (the caller then decodes it
// with encoding/json, which also reports what is wrong).
func scanIndex(v string) (evs []PackedEvent, sizes []int, ok bool) {
	if len(v) < 2 || v[0] != '[' || v[len(v)-1] != ']' {
		return nil, nil, false
	}
	n := strings.Count(v, "],[") + 1
	evs, sizes = make([]PackedEvent, 0, n), make([]int, 0, n)
	i := 1
	str := func() (string, bool) {
		if i >= len(v) || v[i] != '"' {
			return "", false
		}
		j := i + 1
		for j < len(v) && v[j] != '"' {
			if v[j] == '\\' || v[j] < 0x20 {
				return "", false
			}
			j++
		}
		if j >= len(v) {
			return "", false
		}
		s := v[i+1 : j]
		i = j + 1
		return s, true
	}
	for {
		if i+1 >= len(v) || v[i] != '[' {
			return nil, nil, false
		}
		i++
		size, digits := 0, 0
		for i < len(v) && v[i] >= '0' && v[i] <= '9' && digits < 10 {
			size = size*10 + int(v[i]-'0')
			i++
			digits++
		}
		if digits == 0 || i >= len(v) || v[i] != ',' {
			return nil, nil, false
		}
		i++
		typ, ok := str()
		if !ok || i >= len(v) || v[i] != ',' {
			return nil, nil, false
		}
		i++
		id, ok := str()
		if !ok || i >= len(v) || v[i] != ']' {
			return nil, nil, false
		}
		i++
		evs = append(evs, PackedEvent{Index: len(evs), Type: typ, MessageID: id})
		sizes = append(sizes, size)
		if i < len(v) && v[i] == ',' {
			i++
			continue
		}
		return evs, sizes, i == len(v)-1
	}
}

// UnpackData splits a message into its events: the events of a pack, or
// the one event of a single-event message (messageId and type from its
// headers). The events' JSON aliases data.
func UnpackData(hdr nats.Header, data []byte) ([]PackedEvent, error) {
	if !IsPack(hdr) {
		return []PackedEvent{{MessageID: messageIDOf(hdr), Type: hdr.Get(HeaderEventType), JSON: data}}, nil
	}
	evs, sizes, err := packIndex(hdr.Get(HeaderPack))
	if err != nil {
		return nil, err
	}
	if len(data) < 2 || data[0] != '[' || data[len(data)-1] != ']' {
		return nil, fmt.Errorf("%w: body is not a JSON array", ErrBadPack)
	}
	pos := 1
	for i := range evs {
		if i > 0 {
			if pos >= len(data) || data[pos] != ',' {
				return nil, fmt.Errorf("%w: no separator before event %d", ErrBadPack, i)
			}
			pos++
		}
		n := sizes[i]
		if pos+n > len(data)-1 {
			return nil, fmt.Errorf("%w: event %d overruns the body", ErrBadPack, i)
		}
		evs[i].JSON = data[pos : pos+n : pos+n]
		pos += n
	}
	if pos != len(data)-1 {
		return nil, fmt.Errorf("%w: %d bytes after the last event", ErrBadPack, len(data)-1-pos)
	}
	return evs, nil
}

// MessageIDs returns the messageIds a message holds, from its headers
// alone (so a headers-only consumer can read them).
func MessageIDs(hdr nats.Header) ([]string, error) {
	if !IsPack(hdr) {
		id := messageIDOf(hdr)
		if id == "" {
			return nil, nil
		}
		return []string{id}, nil
	}
	evs, _, err := packIndex(hdr.Get(HeaderPack))
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.MessageID
	}
	return ids, nil
}

// PackElement returns event i of a pack body without the index (for tools
// and tests): the i-th element of the JSON array.
func PackElement(data []byte, i int) (json.RawMessage, error) {
	var arr []json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&arr); err != nil {
		return nil, err
	}
	if i < 0 || i >= len(arr) {
		return nil, fmt.Errorf("pack has %d events, no #%d", len(arr), i)
	}
	return arr[i], nil
}
