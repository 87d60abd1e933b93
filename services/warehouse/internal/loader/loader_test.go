package loader

import (
	"bufio"
	"bytes"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
)

const testSchema = "src_test"

// fixture returns the events of ../schema/testdata/<id>.ndjson, one per line.
func fixture(t *testing.T, id string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "schema", "testdata", id+".ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		out = append(out, slices.Clone(sc.Bytes()))
	}
	return out
}

type harness struct {
	t    *testing.T
	path string
	e    sqlengine.Engine
	l    *Loader
	logs *bytes.Buffer
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "wh.duckdb")}
	h.open()
	t.Cleanup(func() { _ = h.e.Close() })
	return h
}

func (h *harness) open() {
	h.t.Helper()
	e, err := sqlengine.OpenDuckDB(h.path)
	if err != nil {
		h.t.Fatal(err)
	}
	h.e = e
	h.logs = &bytes.Buffer{}
	h.l = New(e, slog.New(slog.NewTextHandler(h.logs, nil)))
}

func (h *harness) reopen() {
	h.t.Helper()
	if err := h.e.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

func (h *harness) load(events ...[]byte) {
	h.t.Helper()
	if _, err := h.l.Load(h.t.Context(), testSchema, events); err != nil {
		h.t.Fatalf("Load: %v", err)
	}
}

func (h *harness) db() *sql.DB { return h.e.DB() }

// one returns the single value of q, rendered with sqlengine.JSONValue.
func (h *harness) one(q string, args ...any) any {
	h.t.Helper()
	var v any
	if err := h.db().QueryRowContext(h.t.Context(), q, args...).Scan(&v); err != nil {
		h.t.Fatalf("%s: %v", q, err)
	}
	return sqlengine.JSONValue(v)
}

func (h *harness) count(table string) int64 {
	h.t.Helper()
	return h.one(`SELECT count(*) FROM "src_test"."` + table + `"`).(int64)
}

func (h *harness) columnType(table, column string) any {
	h.t.Helper()
	var v any
	err := h.db().QueryRowContext(h.t.Context(),
		`SELECT data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name = $3`,
		testSchema, table, column).Scan(&v)
	if err == sql.ErrNoRows {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return v
}

func TestLoadTypeConflictGoesToDiscards(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	evs := fixture(t, "wh-01")
	h.load(evs[0])
	if got := h.columnType("order_completed", "order_total"); got != "BIGINT" {
		t.Fatalf("order_total type %v, want BIGINT", got)
	}
	h.load(evs[1])
	if got := h.columnType("order_completed", "order_total"); got != "BIGINT" {
		t.Fatalf("order_total type changed to %v", got)
	}
	if got := h.one(`SELECT order_total FROM src_test.order_completed WHERE id = 'wh-01-m1'`); got != int64(42) {
		t.Fatalf("first order_total = %v", got)
	}
	if got := h.one(`SELECT order_total FROM src_test.order_completed WHERE id = 'wh-01-m2'`); got != nil {
		t.Fatalf("second order_total = %v, want NULL", got)
	}
	got := h.one(`SELECT table_name || '|' || column_name || '|' || value || '|' || row_id || '|' || strftime(received_at, '%Y-%m-%dT%H:%M:%S') || '|' || reason FROM src_test.discards`)
	want := "order_completed|order_total|forty-two|wh-01-m2|2024-05-01T10:00:01|cannot cast string value to int column"
	if got != want {
		t.Fatalf("discards row\n got %v\nwant %v", got, want)
	}
	h.load(evs[1])
	if n := h.count("discards"); n != 1 {
		t.Fatalf("discards has %d rows after redelivery, want 1", n)
	}
	if n := h.count("tracks"); n != 2 {
		t.Fatalf("tracks has %d rows, want 2", n)
	}
}

func TestLoadTimestampColumns(t *testing.T) {
	t.Parallel()
	evs := fixture(t, "wh-03")
	t.Run("across loads the first type stays", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.load(evs[0])
		h.load(evs[1])
		if got := h.columnType("delivery_scheduled", "delivery_window"); got != "TIMESTAMP" {
			t.Fatalf("delivery_window type %v", got)
		}
		if got := h.columnType("delivery_scheduled", "coupon"); got != "VARCHAR" {
			t.Fatalf("coupon type %v", got)
		}
		if got := h.one(`SELECT delivery_window FROM src_test.delivery_scheduled WHERE id = 'wh-03-m1'`); got != "2022-08-18T14:17:22.375Z" {
			t.Fatalf("delivery_window = %v", got)
		}
		if got := h.one(`SELECT coalesce(delivery_window::VARCHAR, 'NULL') || ' ' || coupon FROM src_test.delivery_scheduled WHERE id = 'wh-03-m2'`); got != "NULL SAVE10" {
			t.Fatalf("second row = %v", got)
		}
		if got := h.one(`SELECT value FROM src_test.discards WHERE column_name = 'delivery_window'`); got != "tomorrow morning" {
			t.Fatalf("discarded value = %v", got)
		}
	})
	t.Run("within one batch mixed values widen a new column to varchar", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.load(evs...)
		if got := h.columnType("delivery_scheduled", "delivery_window"); got != "VARCHAR" {
			t.Fatalf("delivery_window type %v, want VARCHAR", got)
		}
		if got := h.one(`SELECT delivery_window FROM src_test.delivery_scheduled WHERE id = 'wh-03-m1'`); got != "2022-08-18T14:17:22.375Z" {
			t.Fatalf("delivery_window = %v", got)
		}
	})
}

func TestLoadFlattening(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.load(fixture(t, "wh-05")...)
	got := h.one(`SELECT product_sku || ' ' || product_dims_w || ' ' || product_dims_h || ' ' || deep_a_b_c_d || ' ' || tags || ' ' || products FROM src_test.product_viewed`)
	want := `G-32 10 2 1 ["sale","new"] [{"sku":"A-1","price":9.99},{"sku":"B-2","price":5}]`
	if got != want {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if h.columnType("product_viewed", "products_0_price") != nil {
		t.Fatal("array elements became columns")
	}
}

func TestLoadKeywordNames(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.load(fixture(t, "wh-09")...)
	if got := h.one(`SELECT "user" FROM src_test."order"`); got != "bob" {
		t.Fatalf(`"user" = %v, want bob`, got)
	}
	got := h.one(`SELECT "select" || ' ' || "order" || ' ' || "from" || ' ' || "group" || ' ' || "default" || ' ' || "current_time" || ' ' || "table" FROM src_test."order"`)
	if got != "1 o-9 web g1 true noon t" {
		t.Fatalf("values = %v", got)
	}
}

func TestLoadReservedColumns(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.load(fixture(t, "wh-10")...)
	got := h.one(`SELECT id || ' ' || user_id || ' ' || anonymous_id || ' ' || event || ' ' || event_text || ' ' || plan || ' ' || strftime(received_at, '%Y-%m-%dT%H:%M:%S') FROM src_test.upgrade`)
	if got != "m-2010 u-2010 anon-2010 upgrade Upgrade pro 2024-05-01T10:00:00" {
		t.Fatalf("upgrade row = %v", got)
	}
	if !strings.Contains(h.logs.String(), "collides with a reserved column") {
		t.Fatal("no warning logged for discarded properties")
	}
}

func TestLoadLongNames(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	evs := fixture(t, "wh-11")
	h.load(evs...)
	h.load(evs...)
	slug := "checkout_step_completed_with_a_very_long_descriptive_event_name_for_testing_limits"
	n := h.one(`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'src_test' AND length(table_name) = 63 AND starts_with(table_name, $1)`, slug[:54]+"_")
	if n != int64(1) {
		t.Fatalf("shortened event tables = %v, want 1", n)
	}
	cols := h.one(`SELECT count(*) FROM information_schema.columns WHERE table_schema = 'src_test' AND column_name LIKE 'shipping_address_verification_result_from_third_party_%'`)
	if cols != int64(2) {
		t.Fatalf("shipping columns = %v, want 2 distinct", cols)
	}
}

func TestLoadNullsAndEmpties(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	evs := fixture(t, "wh-14")
	h.load(evs[0])
	for _, c := range []string{"coupon", "meta"} {
		if h.columnType("coupon_checked", c) != nil {
			t.Fatalf("column %s created from null/empty object", c)
		}
	}
	if got := h.one(`SELECT '[' || note || '] ' || list || ' ' || real FROM src_test.coupon_checked`); got != "[] [] yes" {
		t.Fatalf("row = %v", got)
	}
	h.load(evs[1])
	if got := h.columnType("coupon_checked", "coupon"); got != "VARCHAR" {
		t.Fatalf("coupon type %v", got)
	}
	if got := h.one(`SELECT coupon FROM src_test.coupon_checked WHERE id = 'wh-14-m2'`); got != "SAVE10" {
		t.Fatalf("coupon = %v", got)
	}
}

func TestLoadIdentifiesAndUsers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	evs := fixture(t, "wh-16")
	h.load(evs...)
	h.load(evs...)
	if n := h.count("identifies"); n != 3 {
		t.Fatalf("identifies has %d rows, want 3", n)
	}
	if n := h.count("users"); n != 1 {
		t.Fatalf("users has %d rows, want 1", n)
	}
	if got := h.one(`SELECT id || ' ' || plan || ' ' || email FROM src_test.users`); got != "u-2016 pro user2016@example.com" {
		t.Fatalf("users row = %v", got)
	}
	if h.columnType("users", "anonymous_id") != nil {
		t.Fatal("users has an anonymous_id column")
	}
	// An older identify redelivered after a newer one changes nothing.
	h.load(evs[0])
	if got := h.one(`SELECT plan FROM src_test.users`); got != "pro" {
		t.Fatalf("plan after old redelivery = %v", got)
	}
}

func TestLoadTwiceNoDuplicates(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	batch := append(fixture(t, "wh-05"), fixture(t, "wh-06")...)
	batch = append(batch, batch[0]) // a duplicate inside the batch too
	h.load(batch...)
	h.load(batch...)
	if n := h.count("tracks"); n != 2 {
		t.Fatalf("tracks has %d rows, want 2", n)
	}
	if n := h.count("product_viewed"); n != 1 {
		t.Fatalf("product_viewed has %d rows, want 1", n)
	}
}

func TestLoadAfterReopen(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	evs := fixture(t, "wh-01")
	h.load(evs[0])
	h.reopen()
	h.load(evs[1]) // the new Loader must learn order_total is BIGINT from the database
	if got := h.one(`SELECT value FROM src_test.discards`); got != "forty-two" {
		t.Fatalf("discards value = %v", got)
	}
	h.load(fixture(t, "wh-14")...)
	if n := h.count("tracks"); n != 4 {
		t.Fatalf("tracks has %d rows, want 4", n)
	}
}

func TestLoadSkipsUnloadableEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.load([]byte(`not json`), []byte(`{"type":"track","userId":"u","event":"E"}`), fixture(t, "wh-10")[0])
	if n := h.count("tracks"); n != 1 {
		t.Fatalf("tracks has %d rows, want 1", n)
	}
	if !strings.Contains(h.logs.String(), "skipping event") {
		t.Fatal("no warning for skipped events")
	}
}
