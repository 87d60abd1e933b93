// Package destinations is the destination framework: every destination
// type declares its metadata (name, category, settings schema, supported
// event types) and its actions, and registers itself from its own package
// under internal/destinations/<name>/ (listed once in package all).
//
// A destination instance has subscriptions, each a trigger (an FQL
// condition) plus a field mapping that builds the action's input from the
// event; an instance without subscriptions uses each action's default
// trigger and mapping.
package destinations

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Setting types of a settings schema: the same vocabulary as Catalog's
// integration catalog, so the two schemas compare one to one.
const (
	SettingString  = "string"
	SettingURL     = "url" // an absolute http or https URL
	SettingNumber  = "number"
	SettingBoolean = "boolean"
	SettingMap     = "map"    // string → string map, e.g. headers
	SettingSelect  = "select" // a string out of Choices
)

// SettingOrderByUserID is the setting, common to every type, that turns on
// ordered delivery per userId (see package dispatch).
const SettingOrderByUserID = "orderByUserId"

// CommonSettings are added to every registered type's schema.
var CommonSettings = []Setting{
	{Name: SettingOrderByUserID, Type: SettingBoolean, Default: false, Description: "Deliver the events of one userId in order; while one user's event waits for a retry, other users' events keep flowing."},
}

// Setting is one field of a type's settings schema.
type Setting struct {
	// Name is the key in the destination's settings.
	Name string `json:"name"`
	// Type is one of the Setting* constants.
	Type string `json:"type"`
	// Required settings must be present and non-empty.
	Required bool `json:"required,omitempty"`
	// Secret settings are never shown back (Catalog masks them).
	Secret bool `json:"secret,omitempty"`
	// Choices are the allowed values of a select.
	Choices []string `json:"choices,omitempty"`
	// Default is used when the setting is absent.
	Default any `json:"default,omitempty"`
	// Description says what it does.
	Description string `json:"description"`
}

// Metadata describes a destination type for the integration catalog.
type Metadata struct {
	// Slug is the catalog type, e.g. "webhook".
	Slug string `json:"slug"`
	// Name is the display name the integrations object uses (case-sensitive).
	Name string `json:"name"`
	// Category is the catalog category.
	Category string `json:"category"`
	// Description is one line for the catalog.
	Description string `json:"description"`
	// Settings is the settings schema.
	Settings []Setting `json:"settings"`
	// SupportedEvents are the event types the type can receive.
	SupportedEvents []string `json:"supportedEvents"`
}

// Action is one thing a destination type can do with an event.
type Action struct {
	// Name identifies the action within its type, e.g. "logEvent".
	Name string `json:"name"`
	// Description says what it sends.
	Description string `json:"description"`
	// DefaultTrigger is the FQL condition used when the instance has no
	// subscriptions.
	DefaultTrigger string `json:"defaultTrigger"`
	// DefaultMapping builds the action's fields when a subscription gives
	// none; nil means the action reads the whole event.
	DefaultMapping map[string]any `json:"defaultMapping,omitempty"`
	// RecordType is the Segment event type a Reverse ETL record becomes
	// for this action ("identify", "page"; default "track"), see Record.
	RecordType string `json:"recordType,omitempty"`
}

// Type is a destination type.
type Type struct {
	Metadata
	// Actions are the type's actions.
	Actions []Action
	// New validates settings (defaults already applied) and returns an
	// instance. Invalid settings give a *SettingsError.
	New func(cfg Config) (Instance, error)
}

// Config is what an instance is built from.
type Config struct {
	// DestinationID is the destination's id.
	DestinationID string
	// Settings are the destination's settings with the schema's defaults.
	Settings Settings
	// HTTP is the instance's own client (own connection pool, the
	// delivery timeout, redirects not followed).
	HTTP *http.Client
}

// Payload is one event handed to an action.
type Payload struct {
	// MessageID is the event's messageId, the idempotency key.
	MessageID string
	// Event is the event after filters.
	Event map[string]any
	// Raw is Event's JSON.
	Raw []byte
	// Fields are the subscription mapping's output, or nil when the
	// action reads the whole event.
	Fields map[string]any
}

// Instance is a configured destination.
type Instance interface {
	// Send delivers payloads through action, all or nothing. A failure is
	// a *Failure (see Classify); any other error counts as retryable.
	Send(ctx context.Context, action string, ps []Payload) error
	// BatchSize is how many payloads Send takes at once (1: no batching).
	BatchSize() int
	// Close releases connections.
	Close() error
}

// SettingsError is an invalid setting.
type SettingsError struct {
	// Field is the setting path, e.g. "settings.url".
	Field string
	// Reason is a stable code.
	Reason string
	// Msg says what is wrong.
	Msg string
}

func (e *SettingsError) Error() string { return e.Field + ": " + e.Msg }

// InvalidSetting returns a *SettingsError for settings.<name>.
func InvalidSetting(name, reason, format string, args ...any) error {
	return &SettingsError{Field: "settings." + name, Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

var (
	regMu sync.RWMutex
	reg   = map[string]*Type{}
)

// Register adds a destination type; it panics on a duplicate slug (a
// programming error caught at start-up).
func Register(t *Type) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := reg[t.Slug]; dup {
		panic("destinations: duplicate type " + t.Slug)
	}
	t.Settings = append(slices.Clone(t.Settings), CommonSettings...)
	reg[t.Slug] = t
}

// Lookup returns the type with slug.
func Lookup(slug string) (*Type, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	t, ok := reg[slug]
	return t, ok
}

// All returns every registered type sorted by slug.
func All() []*Type {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]*Type, 0, len(reg))
	for _, t := range reg {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Slug < out[j].Slug })
	return out
}

// Action returns the type's action called name.
func (t *Type) Action(name string) (Action, bool) {
	for _, a := range t.Actions {
		if a.Name == name {
			return a, true
		}
	}
	return Action{}, false
}

// Settings are a destination's settings, decoded from JSON.
type Settings map[string]any

// String returns a string setting or "".
func (s Settings) String(name string) string { v, _ := s[name].(string); return v }

// Number returns a number setting or 0.
func (s Settings) Number(name string) float64 {
	switch v := s[name].(type) {
	case float64:
		return v
	case int:
		return float64(v)
	}
	return 0
}

// Bool returns a boolean setting.
func (s Settings) Bool(name string) bool { v, _ := s[name].(bool); return v }

// StringMap returns an object setting as a string map.
func (s Settings) StringMap(name string) map[string]string {
	out := map[string]string{}
	if m, ok := s[name].(map[string]any); ok {
		for k, v := range m {
			if str, ok := v.(string); ok {
				out[k] = str
			}
		}
	}
	return out
}

// ApplySchema checks settings against t's schema (required fields, types,
// unknown keys) and returns them with defaults filled in.
func (t *Type) ApplySchema(in map[string]any) (Settings, error) {
	out := Settings{}
	known := map[string]bool{}
	for _, s := range t.Settings {
		known[s.Name] = true
		v, ok := in[s.Name]
		if !ok || v == nil || v == "" {
			if s.Required {
				return nil, InvalidSetting(s.Name, "REQUIRED", "is required")
			}
			if s.Default != nil {
				out[s.Name] = s.Default
			}
			continue
		}
		switch s.Type {
		case SettingString:
			if _, ok := v.(string); !ok {
				return nil, InvalidSetting(s.Name, "SETTING_TYPE", "must be a string")
			}
		case SettingSelect:
			if str, ok := v.(string); !ok || !slices.Contains(s.Choices, str) {
				return nil, InvalidSetting(s.Name, "SETTING_CHOICE", "must be one of %s", strings.Join(s.Choices, ", "))
			}
		case SettingURL:
			str, ok := v.(string)
			if !ok || !(strings.HasPrefix(str, "http://") || strings.HasPrefix(str, "https://")) {
				return nil, InvalidSetting(s.Name, "URL_FORMAT", "must be an absolute http or https URL")
			}
		case SettingNumber:
			if _, ok := v.(float64); !ok {
				if _, ok := v.(int); !ok {
					return nil, InvalidSetting(s.Name, "SETTING_TYPE", "must be a number")
				}
			}
		case SettingBoolean:
			if _, ok := v.(bool); !ok {
				return nil, InvalidSetting(s.Name, "SETTING_TYPE", "must be true or false")
			}
		case SettingMap:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, InvalidSetting(s.Name, "SETTING_TYPE", "must be an object of string values")
			}
			for k, x := range m {
				if _, ok := x.(string); !ok {
					return nil, InvalidSetting(s.Name+"."+k, "SETTING_TYPE", "must be a string")
				}
			}
		}
		out[s.Name] = v
	}
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !known[k] {
			return nil, InvalidSetting(k, "SETTING_UNKNOWN", "is not a %s setting", t.Slug)
		}
	}
	return out, nil
}

// Secrets lists the schema's secret settings (never returned in clear).
func (t *Type) Secrets() []string {
	var out []string
	for _, s := range t.Settings {
		if s.Secret {
			out = append(out, s.Name)
		}
	}
	return out
}
