// Package pipeline turns one event into the requests a destination gets:
// integrations-object routing, destination filters, then each subscription
// whose trigger matches, with its mapping. It also holds the retry policy.
// No transport code lives here.
package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations"
	"github.com/switchyardhq/switchyard/services/delivery/internal/filter"
	"github.com/switchyardhq/switchyard/services/delivery/internal/fql"
)

// Subscription sends the events its trigger matches through one action.
type Subscription struct {
	// ID identifies it within its destination.
	ID string `json:"id"`
	// Name is a display name.
	Name string `json:"name,omitempty"`
	// Action is the type's action.
	Action string `json:"action"`
	// Trigger is an FQL condition.
	Trigger string `json:"trigger"`
	// Mapping builds the action's fields (see destinations.Map); empty
	// uses the action's default mapping.
	Mapping map[string]any `json:"mapping,omitempty"`
	// Enabled is false for a subscription that is kept but not applied.
	Enabled bool `json:"enabled"`
}

// Spec is everything Delivery knows about a destination.
type Spec struct {
	// ID is the destination id.
	ID string
	// WorkspaceID is its workspace.
	WorkspaceID string
	// SourceID is the connected source.
	SourceID string
	// Name is the instance's display name.
	Name string
	// Type is the type slug.
	Type string
	// Settings are the type's settings.
	Settings map[string]any
	// CreatedAt is when it was created (its consumer starts there).
	CreatedAt time.Time
	// Filters are its destination filters.
	Filters []filter.Filter
	// Subscriptions are its subscriptions; none means the type's defaults.
	Subscriptions []Subscription
}

// Plan is a compiled Spec.
type Plan struct {
	// Spec is what it was compiled from.
	Spec Spec
	// Type is the destination type.
	Type *destinations.Type
	// Settings are the settings with defaults.
	Settings destinations.Settings

	filters *filter.Compiled
	subs    []compiledSub
}

type compiledSub struct {
	action  string
	trigger *fql.Expr
	mapping map[string]any
}

// ErrUnknownType is a destination type no package registered.
type ErrUnknownType struct{ Type string }

func (e ErrUnknownType) Error() string { return fmt.Sprintf("unknown destination type %q", e.Type) }

// Compile validates spec and prepares it.
func Compile(spec Spec) (*Plan, error) {
	t, ok := destinations.Lookup(spec.Type)
	if !ok {
		return nil, ErrUnknownType{spec.Type}
	}
	settings, err := t.ApplySchema(spec.Settings)
	if err != nil {
		return nil, err
	}
	fc, err := filter.Compile(spec.Filters)
	if err != nil {
		return nil, err
	}
	subs, err := CompileSubscriptions(t, spec.Subscriptions)
	if err != nil {
		return nil, err
	}
	return &Plan{Spec: spec, Type: t, Settings: settings, filters: fc, subs: subs}, nil
}

// ValidateSubscriptions checks subscriptions against type slug.
func ValidateSubscriptions(slug string, subs []Subscription) error {
	t, ok := destinations.Lookup(slug)
	if !ok {
		return ErrUnknownType{slug}
	}
	_, err := CompileSubscriptions(t, subs)
	return err
}

// CompileSubscriptions validates subscriptions (actions exist, triggers
// parse); none gives the type's default subscription per action.
func CompileSubscriptions(t *destinations.Type, subs []Subscription) ([]compiledSub, error) {
	var out []compiledSub
	if len(subs) == 0 {
		for _, a := range t.Actions {
			expr, err := fql.Compile(a.DefaultTrigger)
			if err != nil {
				return nil, fmt.Errorf("type %s action %s: default trigger: %w", t.Slug, a.Name, err)
			}
			out = append(out, compiledSub{action: a.Name, trigger: expr, mapping: a.DefaultMapping})
		}
		return out, nil
	}
	for i, s := range subs {
		at := fmt.Sprintf("subscriptions[%d]", i)
		a, ok := t.Action(s.Action)
		if !ok {
			return nil, &filter.FieldError{Field: at + ".action", Reason: "ACTION_UNKNOWN", Msg: fmt.Sprintf("type %s has no action %q", t.Slug, s.Action)}
		}
		expr, err := fql.Compile(s.Trigger)
		if err != nil {
			return nil, &filter.FieldError{Field: at + ".trigger", Reason: "FQL_INVALID", Msg: err.Error()}
		}
		if !s.Enabled {
			continue
		}
		m := s.Mapping
		if len(m) == 0 {
			m = a.DefaultMapping
		}
		out = append(out, compiledSub{action: s.Action, trigger: expr, mapping: m})
	}
	return out, nil
}

// Send is one action call for one event.
type Send struct {
	// Action is the action to call.
	Action string
	// Payload is its input.
	Payload destinations.Payload
}

// Outcome is what happens to one event.
type Outcome struct {
	// Skipped is true when nothing is sent (filtered, routed away, or no
	// subscription matched); SkipReason says why.
	Skipped    bool
	SkipReason string
	// Sends are the action calls, in subscription order.
	Sends []Send
}

// Prepare decodes raw and applies routing, filters and subscriptions.
// Replayed events bypass the integrations object (Segment's replay
// rewrites it to {All:false, <Dest>:true}) but not the filters. A body
// that is not a JSON object is an error (dead-lettered, never retried).
func (p *Plan) Prepare(raw []byte, messageID string, replay bool) (Outcome, error) {
	ev, err := Decode(raw)
	if err != nil {
		return Outcome{}, err
	}
	if !replay {
		if ok, why := filter.Route(ev, p.Type.Name, p.Spec.Name); !ok {
			return Outcome{Skipped: true, SkipReason: why}, nil
		}
	}
	res := p.filters.Apply(ev, messageID)
	if res.Dropped {
		return Outcome{Skipped: true, SkipReason: res.Reason}, nil
	}
	if res.Modified {
		if raw, err = json.Marshal(ev); err != nil {
			return Outcome{}, fmt.Errorf("encode filtered event: %w", err)
		}
	}
	var out Outcome
	for _, s := range p.subs {
		if !s.trigger.Match(ev) {
			continue
		}
		out.Sends = append(out.Sends, Send{Action: s.action, Payload: destinations.Payload{
			MessageID: messageID, Event: ev, Raw: raw, Fields: destinations.Map(s.mapping, ev),
		}})
	}
	if len(out.Sends) == 0 {
		return Outcome{Skipped: true, SkipReason: "no_subscription"}, nil
	}
	return out, nil
}

// Decode parses an event, keeping numbers as json.Number so they are sent
// on exactly as received.
func Decode(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var ev map[string]any
	if err := dec.Decode(&ev); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	if ev == nil {
		return nil, fmt.Errorf("decode event: not a JSON object")
	}
	return ev, nil
}

// RetryPolicy is when to try again and when to give up.
type RetryPolicy struct {
	// Base is the first backoff (default 1 s).
	Base time.Duration
	// Max caps one backoff (default 10 min).
	Max time.Duration
	// MaxAge is how long after receipt an event is retried before it is
	// dead-lettered (default 4 h, Segment's window).
	MaxAge time.Duration
	// Rand returns a number in [0, 1) (math/rand when nil).
	Rand func() float64
}

// Defaults of RetryPolicy.
const (
	DefaultRetryBase   = time.Second
	DefaultRetryMax    = 10 * time.Minute
	DefaultRetryMaxAge = 4 * time.Hour
)

// WithDefaults fills unset fields.
func (r RetryPolicy) WithDefaults() RetryPolicy {
	if r.Base <= 0 {
		r.Base = DefaultRetryBase
	}
	if r.Max <= 0 {
		r.Max = DefaultRetryMax
	}
	if r.MaxAge <= 0 {
		r.MaxAge = DefaultRetryMaxAge
	}
	if r.Rand == nil {
		r.Rand = rand.Float64
	}
	return r
}

// Delay is the wait before the attempt after the attempt-th failure:
// randomised exponential backoff, d = min(Base·2^(attempt-1), Max), a
// uniform draw in [d/2, d); never shorter than the destination's
// Retry-After.
func (r RetryPolicy) Delay(attempt uint64, retryAfter time.Duration) time.Duration {
	r = r.WithDefaults()
	d := r.Max
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 40 {
		if e := r.Base << (attempt - 1); e > 0 && e < r.Max {
			d = e
		}
	}
	delay := d/2 + time.Duration(r.Rand()*float64(d/2))
	return max(delay, retryAfter)
}

// GiveUp reports whether an event received at receivedAt must be
// dead-lettered rather than retried after delay: the next attempt would
// fall outside the retry window.
func (r RetryPolicy) GiveUp(receivedAt, now time.Time, delay time.Duration) bool {
	r = r.WithDefaults()
	return now.Add(delay).After(receivedAt.Add(r.MaxAge))
}
