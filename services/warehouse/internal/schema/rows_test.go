package schema

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
)

var loadTime = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// commonTrack are the columns every track row of the fixtures has.
var commonTrack = []string{
	"id", "received_at", "uuid_ts", "user_id", "event", "event_text",
	"context_library_name", "context_library_version", "context_ip",
}

// fixture reads testdata/<id>.ndjson, one event per line.
func fixture(t *testing.T, id string) []Object {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", id+".ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Object
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		o, err := ParseObject(sc.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		out = append(out, o)
	}
	return out
}

func build(t *testing.T, ev Object) (map[string]Row, []Notice) {
	t.Helper()
	rows, notices, err := Build(ev, loadTime)
	if err != nil {
		t.Fatal(err)
	}
	byTable := map[string]Row{}
	for _, r := range rows {
		byTable[r.Table] = r
	}
	return byTable, notices
}

func columns(r Row) []string {
	var cols []string
	for _, c := range r.Columns {
		cols = append(cols, c.Name)
	}
	slices.Sort(cols)
	return cols
}

// get returns the value of a row's column, failing the test when there is none.
func get(t *testing.T, r Row, column string) Value {
	t.Helper()
	v, ok := r.Get(column)
	if !ok {
		t.Fatalf("%s has no column %s (columns %v)", r.Table, column, columns(r))
	}
	return v
}

func wantColumns(extra ...string) []string {
	cols := append(slices.Clone(commonTrack), extra...)
	slices.Sort(cols)
	return cols
}

func TestBuildCases(t *testing.T) {
	t.Parallel()
	long1 := Ident("shipping_address_verification_result_from_third_party_provider_primary")
	long2 := Ident("shipping_address_verification_result_from_third_party_provider_secondary")
	tests := []struct {
		id    string
		table string
		extra []string
		want  map[string]any // selected values
	}{
		{"wh-05", "product_viewed", []string{"product_sku", "product_dims_w", "product_dims_h", "tags", "products", "deep_a_b_c_d"},
			map[string]any{"tags": `["sale","new"]`, "products": `[{"sku":"A-1","price":9.99},{"sku":"B-2","price":5}]`, "product_dims_w": int64(10)}},
		{"wh-06", "form_submitted", []string{"product_name", "product_category", "utm_source", "c_z", "price", "camel_case123_key", "base64_encode", "omega_v2", "i_os_version", "a_b_test"},
			map[string]any{"price": int64(5), "i_os_version": "17"}},
		{"wh-08", "profile_updated", []string{"user_name"}, map[string]any{"user_name": "alice-4"}},
		{"wh-10", "upgrade", []string{"anonymous_id", "plan"},
			map[string]any{"id": "m-2010", "user_id": "u-2010", "anonymous_id": "anon-2010", "event": "upgrade", "event_text": "Upgrade", "plan": "pro",
				"received_at": time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)}},
		{"wh-11", Ident("checkout_step_completed_with_a_very_long_descriptive_event_name_for_testing_limits"), []string{long1, long2, Ident("a_b_c_deeply_nested_property_name_that_keeps_going_and_going_forever")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			t.Parallel()
			rows, _ := build(t, fixture(t, tt.id)[0])
			r, ok := rows[tt.table]
			if !ok {
				t.Fatalf("no %q row; tables %v", tt.table, rows)
			}
			if got, want := columns(r), wantColumns(tt.extra...); !slices.Equal(got, want) {
				t.Fatalf("columns\n got %v\nwant %v", got, want)
			}
			for c, want := range tt.want {
				if got := get(t, r, c).Any(); got != want {
					t.Errorf("%s = %#v, want %#v", c, got, want)
				}
			}
			tracks := rows[TableTracks]
			var trackExtra []string
			if tt.id == "wh-10" {
				trackExtra = []string{"anonymous_id"}
			}
			if got, want := columns(tracks), wantColumns(trackExtra...); !slices.Equal(got, want) {
				t.Errorf("tracks columns\n got %v\nwant %v", got, want)
			}
			for _, c := range columns(r) {
				if len(c) > MaxIdentLen {
					t.Errorf("column %q longer than %d bytes", c, MaxIdentLen)
				}
			}
			if len(tt.table) > MaxIdentLen {
				t.Errorf("table %q too long", tt.table)
			}
		})
	}
}

func TestBuildCollisionNotices(t *testing.T) {
	t.Parallel()
	t.Run("wh-08 case variants: last key in document order wins, losers noted", func(t *testing.T) {
		t.Parallel()
		_, notices := build(t, fixture(t, "wh-08")[0])
		var losers []string
		for _, n := range notices {
			if n.Column == "user_name" {
				losers = append(losers, n.Key)
			}
		}
		if want := []string{"userName", "user_name", "UserName"}; !slices.Equal(losers, want) {
			t.Fatalf("losing keys %v, want %v", losers, want)
		}
	})
	t.Run("keys in sorted order (a marshaled map): lexicographically last key wins", func(t *testing.T) {
		t.Parallel()
		raw, err := json.Marshal(map[string]any{
			"type": "track", "messageId": "m", "userId": "u", "event": "E",
			"properties": map[string]any{"userName": "a", "USER NAME": "b", "user_name": "c"},
		})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := ParseObject(raw)
		if err != nil {
			t.Fatal(err)
		}
		rows, _ := build(t, ev)
		if got := get(t, rows["e"], "user_name"); got != StringValue("c") {
			t.Fatalf("user_name = %v, want c (key user_name sorts last)", got)
		}
	})
	t.Run("wh-10 reserved names discarded", func(t *testing.T) {
		t.Parallel()
		_, notices := build(t, fixture(t, "wh-10")[0])
		var keys []string
		for _, n := range notices {
			keys = append(keys, n.Key)
		}
		want := []string{"user_id", "id", "ID", "received_at", "event", "anonymous_id"}
		if !slices.Equal(keys, want) {
			t.Fatalf("discarded keys %v, want %v", keys, want)
		}
	})
}

func TestBuildKeywords(t *testing.T) {
	t.Parallel()
	rows, _ := build(t, fixture(t, "wh-09")[0])
	r, ok := rows["order"]
	if !ok {
		t.Fatal("wh-09: no table named order")
	}
	want := wantColumns("select", "order", "from", "group", "user", "default", "current_time", "table")
	if got := columns(r); !slices.Equal(got, want) {
		t.Fatalf("columns\n got %v\nwant %v", got, want)
	}
	if get(t, r, "user") != StringValue("bob") || get(t, r, "default") != BoolValue(true) || get(t, r, "select").Kind() != sqlengine.KindInt {
		t.Fatalf("values wrong: %v", r.Columns)
	}
}

func TestBuildNullsAndEmpties(t *testing.T) {
	t.Parallel()
	evs := fixture(t, "wh-14")
	rows, _ := build(t, evs[0])
	r := rows["coupon_checked"]
	if got, want := columns(r), wantColumns("note", "list", "real"); !slices.Equal(got, want) {
		t.Fatalf("load 1 columns\n got %v\nwant %v", got, want)
	}
	if get(t, r, "note") != StringValue("") || get(t, r, "list") != StringValue("[]") {
		t.Fatalf("'' and [] not kept as text: %v %v", get(t, r, "note"), get(t, r, "list"))
	}
	rows, _ = build(t, evs[1])
	if got := get(t, rows["coupon_checked"], "coupon"); got != StringValue("SAVE10") {
		t.Fatalf("load 2 coupon = %v", got)
	}
}

func TestBuildTypes(t *testing.T) {
	t.Parallel()
	evs := fixture(t, "wh-03")
	rows, _ := build(t, evs[0])
	r := rows["delivery_scheduled"]
	if k := get(t, r, "delivery_window").Kind(); k != sqlengine.KindTimestamp {
		t.Errorf("delivery_window kind %v, want timestamp", k)
	}
	if got := get(t, r, "delivery_window").Time(); got != time.Date(2022, 8, 18, 14, 17, 22, 375e6, time.UTC) {
		t.Errorf("delivery_window = %v", got)
	}
	if k := get(t, r, "coupon").Kind(); k != sqlengine.KindString {
		t.Errorf("date-only coupon kind %v, want string", k)
	}
	rows, _ = build(t, fixture(t, "wh-01")[0])
	if v := get(t, rows["order_completed"], "order_total"); v != IntValue(42) {
		t.Errorf("order_total = %v", v)
	}
	rows, _ = build(t, fixture(t, "wh-05")[0])
	if v := get(t, rows["product_viewed"], "product_dims_w"); v.Kind() != sqlengine.KindInt {
		t.Errorf("int kind %v", v.Kind())
	}
}

func TestBuildIdentify(t *testing.T) {
	t.Parallel()
	evs := fixture(t, "wh-16")
	rows, _ := build(t, evs[0])
	if got, want := columns(rows[TableIdentifies]), []string{"anonymous_id", "context_ip", "context_library_name", "context_library_version", "email", "id", "plan", "received_at", "user_id", "uuid_ts"}; !slices.Equal(got, want) {
		t.Fatalf("identifies columns\n got %v\nwant %v", got, want)
	}
	u := rows[TableUsers]
	if got, want := columns(u), []string{"email", "id", "plan", "received_at", "uuid_ts"}; !slices.Equal(got, want) {
		t.Fatalf("users columns\n got %v\nwant %v", got, want)
	}
	if u.ID() != "u-2016" {
		t.Fatalf("users id = %q", u.ID())
	}
	rows, _ = build(t, evs[2])
	if _, ok := rows[TableUsers]; ok {
		t.Fatal("anonymous-only identify produced a users row")
	}
}

func TestBuildOtherTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		json, table string
		want        []string
	}{
		{`{"type":"page","messageId":"m","anonymousId":"a","name":"Home","properties":{"name":"x","path":"/"}}`, TablePages,
			[]string{"anonymous_id", "id", "name", "path", "received_at", "uuid_ts"}},
		{`{"type":"screen","messageId":"m","userId":"u","name":"Main","properties":{"Orientation":"up"}}`, TableScreens,
			[]string{"id", "name", "orientation", "received_at", "user_id", "uuid_ts"}},
		{`{"type":"group","messageId":"m","userId":"u","groupId":"g1","traits":{"Employees":12,"group_id":"no"}}`, TableGroups,
			[]string{"employees", "group_id", "id", "received_at", "user_id", "uuid_ts"}},
		{`{"type":"alias","messageId":"m","userId":"u","previousId":"p"}`, TableAliases,
			[]string{"id", "previous_id", "received_at", "user_id", "uuid_ts"}},
		{`{"type":"track","messageId":"m","userId":"u","event":"Tracks","sentAt":"2024-01-01T00:00:00Z","timestamp":"2024-01-01T00:00:01+02:00"}`, "_tracks",
			[]string{"event", "event_text", "id", "received_at", "sent_at", "timestamp", "user_id", "uuid_ts"}},
	}
	for _, tt := range tests {
		t.Run(tt.table, func(t *testing.T) {
			t.Parallel()
			ev, err := ParseObject([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			rows, _ := build(t, ev)
			if got := columns(rows[tt.table]); !slices.Equal(got, tt.want) {
				t.Fatalf("columns\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestBuildInvalid(t *testing.T) {
	t.Parallel()
	for _, js := range []string{
		`{"type":"track","userId":"u","event":"E"}`,
		`{"type":"track","messageId":"m","userId":"u"}`,
		`{"type":"bogus","messageId":"m","userId":"u"}`,
	} {
		ev, err := ParseObject([]byte(js))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := Build(ev, loadTime); err == nil || !strings.Contains(err.Error(), "invalid event") {
			t.Errorf("Build(%s) err = %v, want ErrInvalidEvent", js, err)
		}
	}
	if _, err := ParseObject([]byte(`[1]`)); err == nil {
		t.Error("ParseObject accepted an array")
	}
}
