package fql

import (
	"encoding/json"
	"testing"
)

func event(t *testing.T) map[string]any {
	t.Helper()
	var ev map[string]any
	raw := `{"type":"track","event":"Order Completed","userId":"u-1","properties":{"total":42,"currency":"EUR","tags":["a","b"],"name.x":"esc"},
	"context":{"library":{"name":"analytics-node","version":"3.1.0"}},"anonymousId":null}`
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestMatch(t *testing.T) {
	t.Parallel()
	ev := event(t)
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{"all", true},
		{"type = 'track'", true},
		{"type = 'identify'", false},
		{"type != 'identify'", true},
		{"properties.total = 42", true},
		{"properties.total = '42'", false}, // strict, type-sensitive
		{"properties.total > 40 and properties.total <= 42", true},
		{"properties.total < 10 or event = 'Order Completed'", true},
		{"!(type = 'track')", false},
		{"event in ['Signed Up', 'Order Completed']", true},
		{"properties.currency in ['USD']", false},
		{"contains(event, 'Order')", true},
		{"contains(missing, 'x')", false},
		{"length(userId) < 1", false},
		{"length(missing) = 0", true},
		{"length(properties.tags) = 2", true},
		{"length('héllo') = 6", true}, // bytes
		{"lowercase(event) = 'order completed'", true},
		{"uppercase(properties.currency) = 'EUR'", true},
		{"lowercase(missing) = null", true},
		{"snakecase(event) = 'order_completed'", true},
		{"kebabcase(event) = 'order-completed'", true},
		{"titlecase('order completed') = 'Order Completed'", true},
		{"typeof(properties.total) = 'number'", true},
		{"typeof(properties.tags) = 'list'", true},
		{"typeof(anonymousId) = 'null'", true},
		{"typeof(missing) = 'null'", true},
		{"typeof(userId) = 'string'", true},
		{"match(event, 'Order *')", true},
		{"match(event, 'order *')", false}, // case-sensitive
		{"match(event, 'Order')", false},   // full match
		{"match(context.library.version, '3.?.[0-9]')", true},
		{"match(missing, '*')", false},
		{"number('42') = properties.total", true},
		{"string(properties.total) = '42'", true},
		{"bool('true')", true},
		{"context.library.name = 'analytics-node'", true},
		{`properties.name\.x = 'esc'`, true},
		{"userId", false}, // a string is not true
	} {
		t.Run(tc.expr, func(t *testing.T) {
			e, err := Compile(tc.expr)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if got := e.Match(ev); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCompileRefusesInvalid(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		"", "type =", "type = 'track", "(type = 'track'", "nosuch(type)", "length(a, b)",
		"type = 'a' and", "event in ['a',", "type == = 'x'", "= 'track'",
	} {
		t.Run(src, func(t *testing.T) {
			if _, err := Compile(src); err == nil {
				t.Errorf("Compile(%q) succeeded, want an error", src)
			}
		})
	}
}

func TestGlob(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pat, s string
		want   bool
	}{
		{"*", "", true}, {"a*c", "abbbc", true}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"[abc]x", "bx", true}, {"[a-c]x", "dx", false}, {"[!a-c]x", "dx", true}, {`\*`, "*", true}, {`\*`, "a", false},
		{"*.com", "x.com", true}, {"*.com", "x.co", false},
	} {
		if got := Glob(tc.pat, tc.s); got != tc.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tc.pat, tc.s, got, tc.want)
		}
	}
}
