package filter

import (
	"encoding/json"
	"testing"
)

func ev(t *testing.T, raw string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRoute(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, event string
		want        bool
	}{
		{"no integrations object: sent", `{}`, true},
		{"All false: not sent", `{"integrations":{"All":false}}`, false},
		{"All false but the destination true: sent", `{"integrations":{"All":false,"Webhooks":true}}`, true},
		{"destination false: not sent", `{"integrations":{"Webhooks":false}}`, false},
		{"names are case-sensitive: webhooks is another destination", `{"integrations":{"webhooks":false}}`, true},
		{"options object counts as enabled", `{"integrations":{"All":false,"Webhooks":{"x":1}}}`, true},
		{"instance name routes too", `{"integrations":{"All":false,"my hook":true}}`, true},
		{"bundled in device mode: skipped", `{"_metadata":{"bundled":["Webhooks"]}}`, false},
		{"another destination bundled: sent", `{"_metadata":{"bundled":["Amplitude"]}}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := Route(ev(t, tc.event), "Webhooks", "my hook"); got != tc.want {
				t.Errorf("Route = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestApplyOrderAndActions(t *testing.T) {
	t.Parallel()
	const event = `{"type":"track","event":"Order Completed","userId":"u-1","messageId":"m-1","properties":{"total":42,"email":"a@b.c","coupon":"X"},"context":{"ip":"1.2.3.4"}}`
	for _, tc := range []struct {
		name    string
		filters []Filter
		dropped bool
		want    string // properties after the filters
	}{
		{"drop when matching", []Filter{{ID: "f", If: "event = 'Order Completed'", Enabled: true, Actions: []Action{{Type: "DROP"}}}}, true, ""},
		{"no drop when not matching", []Filter{{ID: "f", If: "event = 'Signed Up'", Enabled: true, Actions: []Action{{Type: "drop"}}}}, false, `{"coupon":"X","email":"a@b.c","total":42}`},
		{"disabled filters do nothing", []Filter{{ID: "f", If: "all", Enabled: false, Actions: []Action{{Type: "drop"}}}}, false, `{"coupon":"X","email":"a@b.c","total":42}`},
		{"drop properties", []Filter{{ID: "f", If: "all", Enabled: true, Actions: []Action{{Type: "DROP_PROPERTIES", Fields: map[string][]string{"properties": {"email"}}}}}}, false, `{"coupon":"X","total":42}`},
		{"allow properties", []Filter{{ID: "f", If: "all", Enabled: true, Actions: []Action{{Type: "allow_properties", Fields: map[string][]string{"properties": {"total"}}}}}}, false, `{"total":42}`},
		{"drop properties run before allow properties", []Filter{
			{ID: "a", If: "all", Enabled: true, Actions: []Action{{Type: "allow_properties", Fields: map[string][]string{"properties": {"total", "email"}}}}},
			{ID: "d", If: "all", Enabled: true, Actions: []Action{{Type: "drop_properties", Fields: map[string][]string{"properties": {"email"}}}}},
		}, false, `{"total":42}`},
		{"sample 0 drops, before any drop", []Filter{{ID: "s", If: "all", Enabled: true, Actions: []Action{{Type: "sample", Percent: 0}}}}, true, ""},
		{"sample 1 keeps", []Filter{{ID: "s", If: "all", Enabled: true, Actions: []Action{{Type: "sample", Percent: 1}}}}, false, `{"coupon":"X","email":"a@b.c","total":42}`},
		{"conditions see the event as received", []Filter{
			{ID: "d", If: "all", Enabled: true, Actions: []Action{{Type: "drop_properties", Fields: map[string][]string{"properties": {"coupon"}}}}},
			{ID: "x", If: "properties.coupon = 'X'", Enabled: true, Actions: []Action{{Type: "drop"}}},
		}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Compile(tc.filters)
			if err != nil {
				t.Fatal(err)
			}
			e := ev(t, event)
			res := c.Apply(e, "m-1")
			if res.Dropped != tc.dropped {
				t.Fatalf("Dropped = %v (%s), want %v", res.Dropped, res.Reason, tc.dropped)
			}
			if !tc.dropped {
				got, _ := json.Marshal(e["properties"])
				if string(got) != tc.want {
					t.Errorf("properties = %s, want %s", got, tc.want)
				}
			}
		})
	}
}

func TestSampleIsDeterministic(t *testing.T) {
	t.Parallel()
	c, err := Compile([]Filter{{ID: "s", If: "all", Enabled: true, Actions: []Action{{Type: "sample", Percent: 0.5}}}})
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for i := range 2000 {
		id := "m-" + string(rune('a'+i%26)) + json.Number(rune(i)).String()
		first := c.Apply(map[string]any{}, id).Dropped
		if again := c.Apply(map[string]any{}, id).Dropped; again != first {
			t.Fatalf("sampling %s changed between attempts", id)
		}
		if !first {
			kept++
		}
	}
	if kept < 800 || kept > 1200 {
		t.Errorf("sample 0.5 kept %d of 2000, want about 1000", kept)
	}
}

func TestCompileRefusesInvalid(t *testing.T) {
	t.Parallel()
	many := make([]Filter, 11)
	for i := range many {
		many[i] = Filter{If: "all", Actions: []Action{{Type: "drop"}}}
	}
	for _, tc := range []struct {
		name    string
		filters []Filter
		reason  string
	}{
		{"invalid FQL", []Filter{{If: "type = ", Actions: []Action{{Type: "drop"}}}}, "FQL_INVALID"},
		{"unknown function", []Filter{{If: "nope(type)", Actions: []Action{{Type: "drop"}}}}, "FQL_INVALID"},
		{"empty condition", []Filter{{If: " ", Actions: []Action{{Type: "drop"}}}}, "REQUIRED"},
		{"unknown action", []Filter{{If: "all", Actions: []Action{{Type: "explode"}}}}, "FILTER_ACTION_UNKNOWN"},
		{"sample out of range", []Filter{{If: "all", Actions: []Action{{Type: "sample", Percent: 1.5}}}}, "FILTER_PERCENT_RANGE"},
		{"more than 10 filters", many, "FILTERS_TOO_MANY"},
		{"title over 64 characters", []Filter{{Title: string(make([]byte, 65)), If: "all", Actions: []Action{{Type: "drop"}}}}, "FILTER_TITLE_TOO_LONG"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.filters)
			fe, ok := err.(*FieldError)
			if !ok || fe.Reason != tc.reason {
				t.Errorf("Compile error = %v, want reason %s", err, tc.reason)
			}
		})
	}
}
