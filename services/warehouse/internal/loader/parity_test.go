package loader

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
)

// fixedNow is the load clock of the parity tests, so uuid_ts is the same on both engines.
var fixedNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// tableDump is a whole table in engine-neutral form: column kinds, and rows (values converted
// with sqlengine.JSONValue) sorted by their key.
type tableDump struct {
	Columns map[string]string
	Rows    []map[string]any
}

// schemaDump is every table of one warehouse schema.
type schemaDump map[string]tableDump

// dumpSchema reads every table of schemaName.
func dumpSchema(t *testing.T, e sqlengine.Engine, schemaName string) schemaDump {
	t.Helper()
	ctx := t.Context()
	d := e.Dialect()
	rs, err := e.DB().QueryContext(ctx, "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = "+d.Placeholder(1), schemaName)
	if err != nil {
		t.Fatalf("%s: read columns: %v", d.Name(), err)
	}
	out := schemaDump{}
	for rs.Next() {
		var table, col, typ string
		if err := rs.Scan(&table, &col, &typ); err != nil {
			t.Fatal(err)
		}
		k, ok := d.KindOf(typ)
		if !ok {
			t.Fatalf("%s: %s.%s has unexpected type %s", d.Name(), table, col, typ)
		}
		td := out[table]
		if td.Columns == nil {
			td.Columns = map[string]string{}
		}
		td.Columns[col] = k.String()
		out[table] = td
	}
	_ = rs.Close()
	for table, td := range out {
		q := "SELECT * FROM " + sqlengine.QualifiedName(d, schemaName, table)
		rows, err := e.DB().QueryContext(ctx, q)
		if err != nil {
			t.Fatalf("%s: %s: %v", d.Name(), q, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			row := map[string]any{}
			for i, c := range cols {
				row[c] = sqlengine.JSONValue(vals[i])
			}
			td.Rows = append(td.Rows, row)
		}
		_ = rows.Close()
		sort.Slice(td.Rows, func(i, j int) bool { return rowKey(td.Rows[i]) < rowKey(td.Rows[j]) })
		out[table] = td
	}
	return out
}

func rowKey(r map[string]any) string {
	if id, ok := r["id"]; ok {
		return fmt.Sprint(id)
	}
	return fmt.Sprint(r["table_name"], "|", r["column_name"], "|", r["row_id"])
}

// row returns the row of table with the given id (discards: row_id|column).
func (d schemaDump) row(t *testing.T, table, key string) map[string]any {
	t.Helper()
	for _, r := range d[table].Rows {
		if rowKey(r) == key {
			return r
		}
	}
	t.Fatalf("table %s has no row %s; rows: %v", table, key, d[table].Rows)
	return nil
}

// want asserts table[key].column == v.
func (d schemaDump) want(t *testing.T, table, key, column string, v any) {
	t.Helper()
	r := d.row(t, table, key)
	got, ok := r[column]
	if !ok {
		t.Fatalf("%s has no column %s (columns %v)", table, column, slices.Sorted(maps.Keys(d[table].Columns)))
	}
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("%s[%s].%s = %#v, want %#v", table, key, column, got, v)
	}
}

func (d schemaDump) kind(t *testing.T, table, column, kind string) {
	t.Helper()
	if got := d[table].Columns[column]; got != kind {
		t.Fatalf("%s.%s kind = %q, want %q", table, column, got, kind)
	}
}

func (d schemaDump) count(t *testing.T, table string, n int) {
	t.Helper()
	if got := len(d[table].Rows); got != n {
		t.Fatalf("%s has %d rows, want %d: %v", table, got, n, d[table].Rows)
	}
}

func (d schemaDump) noColumn(t *testing.T, table string, columns ...string) {
	t.Helper()
	for _, c := range columns {
		if _, ok := d[table].Columns[c]; ok {
			t.Fatalf("%s has column %s, want none", table, c)
		}
	}
}

// bothEngines opens the machine's PostgreSQL (a fresh database) and an embedded DuckDB, closed
// when t ends.
func bothEngines(t *testing.T) (pg, duck sqlengine.Engine) {
	t.Helper()
	pg, err := sqlengine.OpenPostgres(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	duck, err = sqlengine.OpenDuckDB(filepath.Join(t.TempDir(), "w.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = duck.Close() })
	return pg, duck
}

// sameDumps fails t unless both engines hold identical tables.
func sameDumps(t *testing.T, dumps map[string]schemaDump) {
	t.Helper()
	if !reflect.DeepEqual(dumps["postgres"], dumps["duckdb"]) {
		a, _ := json.MarshalIndent(dumps["postgres"], "", " ")
		b, _ := json.MarshalIndent(dumps["duckdb"], "", " ")
		t.Fatalf("engines differ\npostgres: %.8000s\nduckdb: %.8000s", a, b)
	}
}

// parityCase is one warehouse case: loads run in order (each one Load call holding the events),
// then check runs on the dump of each engine, and the two dumps must be identical.
type parityCase struct {
	name  string
	loads func(t *testing.T) [][][]byte
	opts  Options
	check func(t *testing.T, d schemaDump)
}

// loadsOf builds loads from fixture lines: each inner slice is one load of those lines.
func loadsOf(id string, groups ...[]int) func(t *testing.T) [][][]byte {
	return func(t *testing.T) [][][]byte {
		evs := fixture(t, id)
		if len(groups) == 0 {
			return [][][]byte{evs}
		}
		var out [][][]byte
		for _, g := range groups {
			var load [][]byte
			for _, i := range g {
				load = append(load, evs[i])
			}
			out = append(out, load)
		}
		return out
	}
}

// wideEvent is a track event with n string properties p0…p(n-1) ("$gen_props" in the cases).
func wideEvent(id string, n int) []byte {
	props := map[string]any{}
	for i := range n {
		props[fmt.Sprintf("p%d", i)] = "v"
	}
	raw, _ := json.Marshal(map[string]any{
		"type": "track", "messageId": id, "userId": "u-wide", "event": "Wide",
		"receivedAt": "2024-05-01T10:00:00.000Z", "properties": props,
	})
	return raw
}

var parityCases = []parityCase{
	{
		name:  "wh-01 first integer fixes the type and a later string goes to discards",
		loads: loadsOf("wh-01", []int{0}, []int{1}, []int{1}),
		check: func(t *testing.T, d schemaDump) {
			d.kind(t, "order_completed", "order_total", "int")
			d.want(t, "order_completed", "wh-01-m1", "order_total", int64(42))
			d.want(t, "order_completed", "wh-01-m2", "order_total", nil)
			d.count(t, "discards", 1)
			k := "order_completed|order_total|wh-01-m2"
			d.want(t, "discards", k, "value", "forty-two")
			d.want(t, "discards", k, "received_at", "2024-05-01T10:00:01Z")
			d.want(t, "discards", k, "reason", "cannot cast string value to int column")
			d.count(t, "tracks", 2)
		},
	},
	{
		name:  "wh-03 timestamp column keeps its type across loads and a date-only string stays text",
		loads: loadsOf("wh-03", []int{0}, []int{1}),
		check: func(t *testing.T, d schemaDump) {
			d.kind(t, "delivery_scheduled", "delivery_window", "timestamp")
			d.kind(t, "delivery_scheduled", "coupon", "string")
			d.want(t, "delivery_scheduled", "wh-03-m1", "delivery_window", "2022-08-18T14:17:22.375Z")
			d.want(t, "delivery_scheduled", "wh-03-m2", "delivery_window", nil)
			d.want(t, "delivery_scheduled", "wh-03-m2", "coupon", "SAVE10")
			d.want(t, "discards", "delivery_scheduled|delivery_window|wh-03-m2", "value", "tomorrow morning")
		},
	},
	{
		name:  "wh-03 mixed timestamp and text in one batch widen the new column to text",
		loads: loadsOf("wh-03"),
		check: func(t *testing.T, d schemaDump) {
			d.kind(t, "delivery_scheduled", "delivery_window", "string")
			d.want(t, "delivery_scheduled", "wh-03-m1", "delivery_window", "2022-08-18T14:17:22.375Z")
			d.want(t, "delivery_scheduled", "wh-03-m2", "delivery_window", "tomorrow morning")
		},
	},
	{
		name:  "wh-05 nested objects flatten and arrays are JSON text",
		loads: loadsOf("wh-05"),
		check: func(t *testing.T, d schemaDump) {
			id := rowKey(d["product_viewed"].Rows[0])
			d.want(t, "product_viewed", id, "product_sku", "G-32")
			d.want(t, "product_viewed", id, "product_dims_w", int64(10))
			d.want(t, "product_viewed", id, "product_dims_h", int64(2))
			d.want(t, "product_viewed", id, "deep_a_b_c_d", int64(1))
			d.want(t, "product_viewed", id, "tags", `["sale","new"]`)
			d.want(t, "product_viewed", id, "products", `[{"sku":"A-1","price":9.99},{"sku":"B-2","price":5}]`)
			d.noColumn(t, "product_viewed", "products_0_price", "products_1_sku", "product")
		},
	},
	{
		name:  "wh-06 property names follow go-snakecase",
		loads: loadsOf("wh-06"),
		check: func(t *testing.T, d schemaDump) {
			id := rowKey(d["form_submitted"].Rows[0])
			for col, v := range map[string]any{
				"product_name": "a", "product_category": "b", "utm_source": "c", "c_z": "d", "price": int64(5),
				"camel_case123_key": "e", "base64_encode": "f", "omega_v2": "g", "i_os_version": "17", "a_b_test": "v1",
			} {
				d.want(t, "form_submitted", id, col, v)
			}
			d.noColumn(t, "form_submitted", "camel_case_123_key", "omega_v_2")
		},
	},
	{
		name:  "wh-08 keys differing only by case give one column and the last key wins",
		loads: loadsOf("wh-08"),
		check: func(t *testing.T, d schemaDump) {
			d.want(t, "profile_updated", "wh-08-m1", "user_name", "alice-4")
			n := 0
			for c := range d["profile_updated"].Columns {
				if strings.EqualFold(strings.ReplaceAll(c, "_", ""), "username") {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d user_name-like columns, want 1", n)
			}
		},
	},
	{
		name:  "wh-09 keywords as table and column names are quoted and user is the property",
		loads: loadsOf("wh-09"),
		check: func(t *testing.T, d schemaDump) {
			id := rowKey(d["order"].Rows[0])
			for col, v := range map[string]any{
				"select": int64(1), "order": "o-9", "from": "web", "group": "g1", "user": "bob",
				"default": true, "current_time": "noon", "table": "t",
			} {
				d.want(t, "order", id, col, v)
			}
		},
	},
	{
		name:  "wh-10 properties named like reserved columns are discarded",
		loads: loadsOf("wh-10"),
		check: func(t *testing.T, d schemaDump) {
			for col, v := range map[string]any{
				"id": "m-2010", "user_id": "u-2010", "anonymous_id": "anon-2010", "event": "upgrade",
				"event_text": "Upgrade", "plan": "pro", "received_at": "2024-05-01T10:00:00Z",
			} {
				d.want(t, "upgrade", "m-2010", col, v)
			}
		},
	},
	{
		name:  "wh-11 long names are shortened to 63 bytes with a hash and stay distinct",
		loads: loadsOf("wh-11", []int{0}, []int{0}),
		check: func(t *testing.T, d schemaDump) {
			slug := "checkout_step_completed_with_a_very_long_descriptive_event_name_for_testing_limits"
			var table string
			for name := range d {
				if strings.HasPrefix(name, slug[:54]+"_") {
					table = name
				}
			}
			if len(table) != 63 {
				t.Fatalf("event table %q, want 63 bytes starting with %q", table, slug[:54])
			}
			d.count(t, table, 1)
			var long []string
			for c := range d[table].Columns {
				if len(c) > 63 {
					t.Fatalf("column %q is longer than 63 bytes", c)
				}
				if strings.HasPrefix(c, "shipping_address_verification_result_from_third_party_") {
					long = append(long, c)
				}
			}
			if len(long) != 2 {
				t.Fatalf("shipping columns %v, want 2 distinct", long)
			}
		},
	},
	{
		name:  "wh-14 null, empty object and empty array rules",
		loads: loadsOf("wh-14", []int{0}, []int{1}),
		check: func(t *testing.T, d schemaDump) {
			d.want(t, "coupon_checked", "wh-14-m1", "note", "")
			d.want(t, "coupon_checked", "wh-14-m1", "list", "[]")
			d.want(t, "coupon_checked", "wh-14-m1", "real", "yes")
			d.want(t, "coupon_checked", "wh-14-m1", "coupon", nil)
			d.noColumn(t, "coupon_checked", "meta")
			d.kind(t, "coupon_checked", "coupon", "string")
			d.want(t, "coupon_checked", "wh-14-m2", "coupon", "SAVE10")
		},
	},
	{
		name:  "wh-16 users holds the latest non-null traits and reloads add nothing",
		loads: loadsOf("wh-16", []int{0, 1, 2}, []int{0, 1, 2}, []int{0}),
		check: func(t *testing.T, d schemaDump) {
			d.count(t, "identifies", 3)
			d.count(t, "users", 1)
			d.want(t, "users", "u-2016", "plan", "pro")
			d.want(t, "users", "u-2016", "email", "user2016@example.com")
			d.noColumn(t, "users", "anonymous_id")
		},
	},
	{
		name:  "accounts holds the latest non-null traits per group_id",
		loads: loadsOf("accounts", []int{0, 1}, []int{2}, []int{0}),
		check: func(t *testing.T, d schemaDump) {
			d.count(t, "groups", 3)
			d.count(t, "accounts", 2)
			d.want(t, "accounts", "g-1", "name", "Acme")
			d.want(t, "accounts", "g-1", "plan", "enterprise")
			d.want(t, "accounts", "g-1", "employees", int64(120))
			d.want(t, "accounts", "g-2", "name", "Globex")
			d.want(t, "groups", "acc-m1", "group_id", "g-1")
		},
	},
	{
		name: "a row over the 1600-column limit is discarded with a reason and the rest loads",
		loads: func(t *testing.T) [][][]byte {
			return [][][]byte{{fixture(t, "wh-10")[0], wideEvent("wide-1", 1700), []byte(`{"type":"track","messageId":"wide-2","userId":"u","event":"Wide","receivedAt":"2024-05-01T10:00:01Z","properties":{"p1":"x"}}`)}}
		},
		check: func(t *testing.T, d schemaDump) {
			d.count(t, "upgrade", 1)
			d.count(t, "tracks", 3)
			d.count(t, "wide", 1)
			d.want(t, "wide", "wide-2", "p1", "x")
			k := "wide|*|wide-1"
			d.want(t, "discards", k, "reason", "the row needs 1705 new columns and the table would have 1706, over the 1600-column limit")
		},
	},
	{
		name:  "selective sync leaves out disabled tables and columns",
		loads: loadsOf("wh-16"),
		opts: Options{Selection: Selection{
			DisabledTables:  map[string]bool{"users": true},
			DisabledColumns: map[string]map[string]bool{"identifies": {"email": true}, "*": {"context_ip": true}},
		}},
		check: func(t *testing.T, d schemaDump) {
			if _, ok := d["users"]; ok {
				t.Fatal("users table exists, want none")
			}
			d.count(t, "identifies", 3)
			d.noColumn(t, "identifies", "email", "context_ip")
			d.want(t, "identifies", "wh-16-m2", "plan", "pro")
			d.want(t, "identifies", "wh-16-m2", "context_library_name", "analytics-node")
		},
	},
}

// TestWarehouseCasesOnBothEngines runs every warehouse case against the machine's PostgreSQL and
// an embedded DuckDB, checks the expected values on each, and asserts both hold identical tables.
func TestWarehouseCasesOnBothEngines(t *testing.T) {
	t.Parallel()
	pg, err := sqlengine.OpenPostgres(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	// The file is named like a case schema: DuckDB must not confuse the catalog with the schema.
	duck, err := sqlengine.OpenDuckDB(filepath.Join(t.TempDir(), "case_00.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = duck.Close() })

	for i, c := range parityCases {
		t.Run(c.name, func(t *testing.T) {
			schemaName := fmt.Sprintf("case_%02d", i)
			loads := c.loads(t)
			dumps := map[string]schemaDump{}
			for _, e := range []sqlengine.Engine{pg, duck} {
				opts := c.opts
				opts.Now = func() time.Time { return fixedNow }
				l := NewWithOptions(e, slog.New(slog.DiscardHandler), opts)
				for _, evs := range loads {
					if _, err := l.Load(t.Context(), schemaName, evs); err != nil {
						t.Fatalf("%s: Load: %v", e.Dialect().Name(), err)
					}
				}
				d := dumpSchema(t, e, schemaName)
				t.Run(e.Dialect().Name(), func(t *testing.T) { c.check(t, d) })
				dumps[e.Dialect().Name()] = d
			}
			sameDumps(t, dumps)
		})
	}
}
