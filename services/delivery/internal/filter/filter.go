// Package filter applies destination filters (Segment's FQL-based drop,
// sample, drop-properties and allow-properties actions) and routing by the
// event's integrations object.
package filter

import (
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/switchyardhq/switchyard/services/delivery/internal/fql"
)

// MaxFilters is the most filters one destination may have (Segment's limit).
const MaxFilters = 10

// MaxTitle is the longest filter title, in characters.
const MaxTitle = 64

// Action types.
const (
	Drop            = "drop"
	Sample          = "sample"
	DropProperties  = "drop_properties"
	AllowProperties = "allow_properties"
)

// Filter is one destination filter: when If matches, its actions apply.
type Filter struct {
	// ID identifies the filter within its destination.
	ID string `json:"id"`
	// Title is a short name (at most 64 characters).
	Title string `json:"title,omitempty"`
	// If is the FQL condition; "all" matches every event.
	If string `json:"if"`
	// Enabled is false for a filter that is kept but not applied.
	Enabled bool `json:"enabled"`
	// Actions are what happens to a matching event.
	Actions []Action `json:"actions"`
}

// Action is one filter action.
type Action struct {
	// Type is drop, sample, drop_properties or allow_properties (any case;
	// the legacy names drop_event, sample_event, blocklist_fields and
	// whitelist_fields are accepted).
	Type string `json:"type"`
	// Fields are, per object path ("" = top level), the keys to drop or keep.
	Fields map[string][]string `json:"fields,omitempty"`
	// Percent is the share of events a sample action keeps, 0–1.
	Percent float64 `json:"percent,omitempty"`
	// Path makes sampling deterministic on that field's value.
	Path string `json:"path,omitempty"`
}

// FieldError is an invalid filter setting.
type FieldError struct {
	// Field is the path of the bad value, e.g. "filters[0].if".
	Field string
	// Reason is a stable code, e.g. FQL_INVALID.
	Reason string
	// Msg says what is wrong.
	Msg string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// NormalizeType maps an action type to its canonical lowercase name, or "".
func NormalizeType(t string) string {
	switch strings.ToLower(t) {
	case "drop", "drop_event":
		return Drop
	case "sample", "sample_event":
		return Sample
	case "drop_properties", "blocklist_fields":
		return DropProperties
	case "allow_properties", "whitelist_fields":
		return AllowProperties
	}
	return ""
}

// Compiled is a validated filter set ready to apply.
type Compiled struct {
	filters []compiled
}

type compiled struct {
	f    Filter
	cond *fql.Expr
}

// Compile validates filters and compiles their conditions. Invalid
// filters are refused with a *FieldError, so a bad expression never gets
// saved.
func Compile(filters []Filter) (*Compiled, error) {
	if len(filters) > MaxFilters {
		return nil, &FieldError{Field: "filters", Reason: "FILTERS_TOO_MANY", Msg: fmt.Sprintf("at most %d filters per destination, got %d", MaxFilters, len(filters))}
	}
	c := &Compiled{}
	seen := map[string]bool{}
	for i, f := range filters {
		at := fmt.Sprintf("filters[%d]", i)
		if len([]rune(f.Title)) > MaxTitle {
			return nil, &FieldError{Field: at + ".title", Reason: "FILTER_TITLE_TOO_LONG", Msg: fmt.Sprintf("at most %d characters", MaxTitle)}
		}
		if f.ID != "" {
			if seen[f.ID] {
				return nil, &FieldError{Field: at + ".id", Reason: "FILTER_ID_DUPLICATE", Msg: fmt.Sprintf("id %q is used twice", f.ID)}
			}
			seen[f.ID] = true
		}
		if strings.TrimSpace(f.If) == "" {
			return nil, &FieldError{Field: at + ".if", Reason: "REQUIRED", Msg: "is required (use \"all\" to match every event)"}
		}
		expr, err := fql.Compile(f.If)
		if err != nil {
			return nil, &FieldError{Field: at + ".if", Reason: "FQL_INVALID", Msg: err.Error()}
		}
		if len(f.Actions) == 0 {
			return nil, &FieldError{Field: at + ".actions", Reason: "REQUIRED", Msg: "at least one action is required"}
		}
		for j := range f.Actions {
			a := &f.Actions[j]
			aat := fmt.Sprintf("%s.actions[%d]", at, j)
			a.Type = NormalizeType(a.Type)
			switch a.Type {
			case "":
				return nil, &FieldError{Field: aat + ".type", Reason: "FILTER_ACTION_UNKNOWN", Msg: "must be drop, sample, drop_properties or allow_properties"}
			case Sample:
				if a.Percent < 0 || a.Percent > 1 {
					return nil, &FieldError{Field: aat + ".percent", Reason: "FILTER_PERCENT_RANGE", Msg: fmt.Sprintf("must be between 0 and 1, got %v", a.Percent)}
				}
			case DropProperties, AllowProperties:
				if len(a.Fields) == 0 {
					return nil, &FieldError{Field: aat + ".fields", Reason: "REQUIRED", Msg: "fields are required"}
				}
			}
		}
		if f.Enabled {
			c.filters = append(c.filters, compiled{f: f, cond: expr})
		}
	}
	return c, nil
}

// Empty reports whether no filter is enabled.
func (c *Compiled) Empty() bool { return c == nil || len(c.filters) == 0 }

// Result is the outcome of Apply.
type Result struct {
	// Dropped is true when the event must not be delivered.
	Dropped bool
	// Reason says why it was dropped ("filter:<id>", "sample:<id>").
	Reason string
	// Modified is true when properties were dropped or kept (the event
	// map changed in place).
	Modified bool
}

// Apply runs the filters on ev in Segment's order: every matching filter's
// sample actions first, then drop, then drop properties, then allow
// properties. Conditions are evaluated once, on the event as received.
// messageID seeds sampling when an action has no path, so a retried event
// gets the same decision.
func (c *Compiled) Apply(ev map[string]any, messageID string) Result {
	if c.Empty() {
		return Result{}
	}
	var matched []compiled
	for _, f := range c.filters {
		if f.cond.Match(ev) {
			matched = append(matched, f)
		}
	}
	var res Result
	for _, phase := range []string{Sample, Drop, DropProperties, AllowProperties} {
		for _, f := range matched {
			for _, a := range f.f.Actions {
				if a.Type != phase {
					continue
				}
				switch phase {
				case Sample:
					key := messageID
					if a.Path != "" {
						key = fmt.Sprint(fql.Lookup(ev, a.Path))
					}
					if !sampled(key, a.Percent) {
						return Result{Dropped: true, Reason: "sample:" + f.f.ID}
					}
				case Drop:
					return Result{Dropped: true, Reason: "filter:" + f.f.ID}
				case DropProperties:
					for path, keys := range a.Fields {
						if obj := objectAt(ev, path); obj != nil {
							for _, k := range keys {
								if _, ok := obj[k]; ok {
									delete(obj, k)
									res.Modified = true
								}
							}
						}
					}
				case AllowProperties:
					for path, keys := range a.Fields {
						obj := objectAt(ev, path)
						if obj == nil {
							continue
						}
						keep := map[string]bool{}
						for _, k := range keys {
							keep[k] = true
						}
						if path == "" {
							// The envelope every destination needs stays.
							keep["type"], keep["messageId"] = true, true
						}
						for k := range obj {
							if !keep[k] {
								delete(obj, k)
								res.Modified = true
							}
						}
					}
				}
			}
		}
	}
	return res
}

// sampled keeps a deterministic share percent of keys.
func sampled(key string, percent float64) bool {
	if percent >= 1 {
		return true
	}
	if percent <= 0 {
		return false
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return float64(h.Sum64()%1_000_000)/1_000_000 < percent
}

func objectAt(ev map[string]any, path string) map[string]any {
	if path == "" {
		return ev
	}
	cur := ev
	for _, p := range strings.Split(path, ".") {
		next, ok := cur[p].(map[string]any)
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}

// Route reports whether the integrations object of ev lets the event reach
// a destination whose catalog name is name (and instance name instance):
// a key equal to name (case-sensitive) decides; otherwise `All` decides;
// otherwise the event goes. A destination listed in
// context/_metadata.bundled was already sent in device mode and is skipped.
func Route(ev map[string]any, name, instance string) (bool, string) {
	if md, ok := ev["_metadata"].(map[string]any); ok {
		if bundled, ok := md["bundled"].([]any); ok {
			for _, b := range bundled {
				if s, ok := b.(string); ok && (s == name || (instance != "" && s == instance)) {
					return false, "bundled"
				}
			}
		}
	}
	integ, ok := ev["integrations"].(map[string]any)
	if !ok {
		return true, ""
	}
	for _, key := range []string{name, instance} {
		if key == "" {
			continue
		}
		if v, ok := integ[key]; ok {
			if enabled(v) {
				return true, ""
			}
			return false, "integrations"
		}
	}
	if v, ok := integ["All"]; ok && !enabled(v) {
		return false, "integrations"
	}
	return true, ""
}

// enabled: false disables; true or an options object enables.
func enabled(v any) bool {
	b, ok := v.(bool)
	return !ok || b
}
