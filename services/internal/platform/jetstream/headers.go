package jetstream

import (
	"context"
	"encoding/json"
	"go.opentelemetry.io/otel/attribute"
	"strings"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// Header names set by Publish. Consumers route on them without parsing the
// body.
const (
	// HeaderMsgID is JetStream's de-duplication id (within the stream's
	// duplicate window).
	HeaderMsgID = natsjs.MsgIDHeader
	// HeaderWorkspace carries the workspace id.
	HeaderWorkspace = "Switchyard-Workspace"
	// HeaderSource carries the source id.
	HeaderSource = "Switchyard-Source"
	// HeaderEventType carries the event type (track, identify, …).
	HeaderEventType = "Switchyard-Event-Type"
	// HeaderMessageID carries the event's messageId.
	HeaderMessageID = "Switchyard-Message-Id"
)

// Headers are the routing headers of a Switchyard message.
type Headers struct {
	// MsgID is the event's messageId: both Nats-Msg-Id and
	// Switchyard-Message-Id.
	MsgID string
	// Workspace is the workspace id.
	Workspace string
	// Source is the source id.
	Source string
	// EventType is the event type.
	EventType string
}

// HeaderMessageIDEncoding, set to "json", says that Switchyard-Message-Id
// (and Nats-Msg-Id) hold the messageId as a JSON string: a NATS header
// value cannot carry control characters or CR/LF, and loses leading and
// trailing spaces, so such a messageId would otherwise reach consumers
// changed (and two distinct ones could collide).
const HeaderMessageIDEncoding = "Switchyard-Message-Id-Encoding"

// HeaderSafe reports whether s survives as a NATS header value unchanged:
// no control characters, no leading or trailing space.
func HeaderSafe(s string) bool {
	if s != "" && (s[0] == ' ' || s[len(s)-1] == ' ') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// messageIDOf reads the messageId of a single-event message from its
// headers (Switchyard-Message-Id, else Nats-Msg-Id), decoding it when it
// was encoded.
func messageIDOf(h nats.Header) string {
	id := h.Get(HeaderMessageID)
	if id == "" {
		id = h.Get(HeaderMsgID)
	}
	if h.Get(HeaderMessageIDEncoding) == "json" {
		var s string
		if err := json.Unmarshal([]byte(id), &s); err == nil {
			return s
		}
	}
	return id
}

// HeadersOf reads the routing headers of a received message.
func HeadersOf(msg natsjs.Msg) Headers {
	h := msg.Headers()
	id := messageIDOf(h)
	return Headers{
		MsgID:     id,
		Workspace: h.Get(HeaderWorkspace),
		Source:    h.Get(HeaderSource),
		EventType: h.Get(HeaderEventType),
	}
}

// apply sets the non-empty routing headers on hdr.
func (h Headers) apply(hdr nats.Header) {
	set := func(k, v string) {
		if v != "" {
			hdr.Set(k, v)
		}
	}
	id := h.MsgID
	if !HeaderSafe(id) {
		b, _ := json.Marshal(id) // escapes every control character
		id = string(b)
		hdr.Set(HeaderMessageIDEncoding, "json")
	}
	set(HeaderMsgID, id)
	set(HeaderMessageID, id)
	set(HeaderWorkspace, h.Workspace)
	set(HeaderSource, h.Source)
	set(HeaderEventType, h.EventType)
}

// HeaderCarrier adapts nats.Header to the OpenTelemetry TextMapCarrier so
// trace context (traceparent, tracestate, baggage) travels in message
// headers. The propagators' keys are stored with the TraceHeaderPrefix
// ("Switchyard-Otel-traceparent", …): nats-server inspects every message
// that carries a bare W3C traceparent header for its own message-tracing
// feature, which cost about a tenth of Ingest's CPU at high rates. Get
// also reads the bare key, so messages stored by other publishers keep
// their trace.
type HeaderCarrier nats.Header

// TraceHeaderPrefix prefixes the trace-context header names.
const TraceHeaderPrefix = "Switchyard-Otel-"

var _ propagation.TextMapCarrier = HeaderCarrier(nil)

// Get returns the first value of key, or "".
func (c HeaderCarrier) Get(key string) string {
	if v, ok := c[TraceHeaderPrefix+key]; ok && len(v) > 0 {
		return v[0]
	}
	return nats.Header(c).Get(key)
}

// Set replaces the values of key with value.
func (c HeaderCarrier) Set(key, value string) { c[TraceHeaderPrefix+key] = []string{value} }

// Keys lists the trace-context header names (without the prefix).
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		if strings.HasPrefix(k, TraceHeaderPrefix) {
			keys = append(keys, strings.TrimPrefix(k, TraceHeaderPrefix))
		}
	}
	return keys
}

// InjectContext writes ctx's trace context into hdr with the global
// propagator.
func InjectContext(ctx context.Context, hdr nats.Header) {
	otel.GetTextMapPropagator().Inject(ctx, HeaderCarrier(hdr))
}

// ExtractContext returns ctx with the trace context carried by msg's
// headers (global propagator), so work done for the message continues the
// publisher's trace.
func ExtractContext(ctx context.Context, msg natsjs.Msg) context.Context {
	h := msg.Headers()
	if h == nil {
		return ctx
	}
	return otel.GetTextMapPropagator().Extract(ctx, HeaderCarrier(h))
}

// attributes names the message's workspace, source and event type on a
// span (never its payload).
func (h Headers) attributes() []attribute.KeyValue {
	var out []attribute.KeyValue
	for k, v := range map[string]string{
		"switchyard.workspace.id": h.Workspace,
		"switchyard.source.id":    h.Source,
		"switchyard.event.type":   h.EventType,
		"switchyard.message.id":   h.MsgID,
	} {
		if v != "" {
			out = append(out, attribute.String(k, v))
		}
	}
	return out
}
