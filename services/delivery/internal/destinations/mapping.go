package destinations

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/switchyardhq/switchyard/services/delivery/internal/fql"
)

// Map builds an action's fields from ev with a mapping: a string value
// "$.a.b" reads that path of the event, "$" is the whole event, a nested
// object is mapped recursively, and anything else is a literal.
func Map(mapping map[string]any, ev map[string]any) map[string]any {
	if mapping == nil {
		return nil
	}
	out := make(map[string]any, len(mapping))
	for k, v := range mapping {
		if mv := mapValue(v, ev); mv != nil {
			out[k] = mv
		}
	}
	return out
}

func mapValue(v any, ev map[string]any) any {
	switch x := v.(type) {
	case string:
		if x == "$" {
			return ev
		}
		if strings.HasPrefix(x, "$.") {
			return rawLookup(ev, x[2:])
		}
		return x
	case map[string]any:
		return Map(x, ev)
	}
	return v
}

// rawLookup is fql.Lookup without number normalisation, so numbers keep
// their exact JSON text.
func rawLookup(ev map[string]any, path string) any {
	var cur any = ev
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

// Get reads a path of ev ("properties.revenue") without normalising numbers.
func Get(ev map[string]any, path string) any { return rawLookup(ev, path) }

// GetString reads a string at path, or "".
func GetString(ev map[string]any, path string) string {
	s, _ := rawLookup(ev, path).(string)
	return s
}

// Template expands {{path}} placeholders with the event's values (strings
// as they are, other values as JSON, missing values as "").
func Template(tpl string, ev map[string]any) string {
	var b strings.Builder
	for {
		i := strings.Index(tpl, "{{")
		if i < 0 {
			b.WriteString(tpl)
			return b.String()
		}
		j := strings.Index(tpl[i:], "}}")
		if j < 0 {
			b.WriteString(tpl)
			return b.String()
		}
		b.WriteString(tpl[:i])
		path := strings.TrimSpace(tpl[i+2 : i+j])
		switch v := rawLookup(ev, path).(type) {
		case nil:
		case string:
			b.WriteString(v)
		case json.Number:
			b.WriteString(v.String())
		default:
			raw, _ := json.Marshal(v)
			b.WriteString(string(raw))
		}
		tpl = tpl[i+j+2:]
	}
}

// ValidateTrigger compiles an FQL trigger.
func ValidateTrigger(src string) error {
	if _, err := fql.Compile(src); err != nil {
		return fmt.Errorf("trigger: %w", err)
	}
	return nil
}
