package loader

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
)

func trackEvent(id string) []byte {
	return fmt.Appendf(nil, `{"type":"track","messageId":%q,"userId":"u","event":"Signed Up","receivedAt":"2024-05-01T10:00:00.000Z","properties":{"plan":"pro"}}`, id)
}

// TestDirectCopyFallsBackToMerge checks the PostgreSQL fast path (COPY straight into the table):
// a batch holding ids that exist fails its COPY and goes through the merge, and an id another
// transaction commits while the COPY runs (the COPY waits for it) makes the load start over
// through the merge. Every id is stored once either way.
func TestDirectCopyFallsBackToMerge(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	pg, err := sqlengine.OpenPostgres(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	l := NewWithOptions(pg, slog.New(slog.DiscardHandler), Options{Now: func() time.Time { return fixedNow }})
	const schemaName = "direct"
	count := func(t *testing.T, table, id string) int {
		t.Helper()
		var n int
		q := fmt.Sprintf(`SELECT count(*) FROM "direct".%q WHERE id = $1`, table)
		if err := pg.DB().QueryRowContext(t.Context(), q, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("a batch mixing stored and new ids stores each id once", func(t *testing.T) {
		if _, err := l.Load(t.Context(), schemaName, [][]byte{trackEvent("d-1")}); err != nil {
			t.Fatal(err)
		}
		res, err := l.Load(t.Context(), schemaName, [][]byte{trackEvent("d-1"), trackEvent("d-2")})
		if err != nil {
			t.Fatal(err)
		}
		if res.Rows["tracks"] != 1 || res.Rows["signed_up"] != 1 {
			t.Fatalf("rows %v, want 1 new row per table", res.Rows)
		}
		for _, id := range []string{"d-1", "d-2"} {
			if n := count(t, "signed_up", id); n != 1 {
				t.Fatalf("%s stored %d times in signed_up", id, n)
			}
		}
	})

	t.Run("an id committed by another transaction after the probe: reloaded through the merge", func(t *testing.T) {
		ctx := t.Context()
		other, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close(context.Background())
		tx, err := other.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO "direct"."tracks" (id) VALUES ('d-3')`); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		var res Result
		go func() {
			var err error
			res, err = l.Load(ctx, schemaName, [][]byte{trackEvent("d-3")})
			done <- err
		}()
		// The loader's COPY waits for this transaction to decide the uncommitted id (the only other
		// session of this database is the loader's).
		deadline := time.Now().Add(20 * time.Second)
		for {
			var waiting int
			err := other.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
				AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`).Scan(&waiting)
			if err == nil && waiting > 0 {
				break
			}
			if time.Now().After(deadline) {
				rows, _ := other.Query(ctx, `SELECT coalesce(wait_event_type,''), coalesce(wait_event,''), state, left(query, 60) FROM pg_stat_activity WHERE datname = current_database()`)
				for rows.Next() {
					var a, b, c, d string
					_ = rows.Scan(&a, &b, &c, &d)
					t.Log(a, b, c, d)
				}
				t.Fatal("the loader's COPY never waited on the concurrent insert")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Load: %v", err)
		}
		if res.Rows["tracks"] != 0 || res.Rows["signed_up"] != 1 || res.Discards != 0 {
			t.Fatalf("result %+v, want tracks 0 (taken concurrently), signed_up 1, no discards", res)
		}
		if n := count(t, "tracks", "d-3"); n != 1 {
			t.Fatalf("d-3 stored %d times in tracks", n)
		}
		if n := count(t, "signed_up", "d-3"); n != 1 {
			t.Fatalf("d-3 stored %d times in signed_up", n)
		}
	})
}

// mixedEvent is the i-th event of TestEncodedCopyMatchesGeneralPath: an order with a total that is
// an int, a castable string or float, or something the int column cannot take, and a name that
// is sometimes missing.
func mixedEvent(id string, i int) []byte {
	total := fmt.Sprint(i)
	switch i % 7 {
	case 1:
		total = fmt.Sprintf("%q", fmt.Sprint(i)) // "12": cast to 12
	case 2:
		total = fmt.Sprintf("%d.0", i) // lossless: cast to an int
	case 3:
		total = `"n/a"` // NULL and a discard
	case 4:
		total = "2.5" // NULL and a discard
	}
	name := fmt.Sprintf(`,"name":"o-%d"`, i)
	if i%5 == 0 {
		name = ""
	}
	return fmt.Appendf(nil, `{"type":"track","messageId":%q,"userId":"u-%d","event":"Order Done","receivedAt":"2024-05-01T10:00:00.%03dZ","properties":{"total":%s%s}}`,
		id, i%13, i%1000, total, name)
}

// TestEncodedCopyMatchesGeneralPath loads the same batches into PostgreSQL, where tables with a
// copy plan are encoded while events are built and COPYed directly, and into DuckDB, which always
// takes the general path (staging table and merge): the two warehouses must hold the same rows,
// discards included. The batches cover casts and cast failures, missing columns, a new column
// in the middle of a load, messageIds repeated within a sub-batch and across sub-batches (the
// first wins), sub-batches written in parallel transactions, and a redelivered batch.
func TestEncodedCopyMatchesGeneralPath(t *testing.T) {
	t.Parallel()
	pg, duck := bothEngines(t)

	batch := func(from, n int) [][]byte {
		var evs [][]byte
		for i := from; i < from+n; i++ {
			evs = append(evs, mixedEvent(fmt.Sprintf("m-%04d", i), i))
		}
		return evs
	}
	var first [][]byte // integer totals only: the column is created as bigint
	for i := range 600 {
		first = append(first, mixedEvent(fmt.Sprintf("m-%04d", i), 7*i))
	}
	second := batch(600, 6000)
	// The same messageId twice in one sub-batch and across sub-batches (6000 events are
	// sub-batches of 1000, 2500 and 2500): the first row of an id wins.
	second[10] = mixedEvent("m-0700", 7)   // before the original m-0700 (position 100): this one wins
	second[5900] = mixedEvent("m-0606", 8) // after the original m-0606 (position 6): left out
	third := batch(6600, 600)
	for i := 400; i < 420; i++ { // a new column in some events of the third load
		third[i] = []byte(strings.Replace(string(third[i]), `"properties":{`, `"properties":{"coupon":"SAVE10",`, 1))
	}
	redelivered := append(batch(7200, 10), first[:5]...)
	loads := [][][]byte{first, second, third, redelivered}

	dumps := map[string]schemaDump{}
	for _, e := range []sqlengine.Engine{pg, duck} {
		name := e.Dialect().Name()
		l := NewWithOptions(e, slog.New(slog.DiscardHandler), Options{Now: func() time.Time { return fixedNow }})
		for i, evs := range loads {
			before := l.encodedRows.Load()
			res, err := l.Load(t.Context(), "mixed", evs)
			if err != nil {
				t.Fatalf("%s: load %d: %v", name, i, err)
			}
			// Loads after the first find plans: sub-batches without repeated ids are written from
			// their encodings (all but the new column's table in the third load).
			if encoded := l.encodedRows.Load() - before; name == "postgres" && (i == 1 || i == 2) && encoded == 0 {
				t.Fatalf("load %d: no rows written from encodings", i)
			}
			if name == "postgres" && i == 0 && l.plans["mixed"]["order_done"] == nil {
				t.Fatal("no copy plan for order_done after the first load")
			}
			if i == 3 && (res.Rows["order_done"] != 10 || res.Rows["tracks"] != 10) {
				t.Fatalf("%s: redelivered load wrote %v, want the 10 new events only", name, res.Rows)
			}
		}
		dumps[name] = dumpSchema(t, e, "mixed")
	}
	d := dumps["postgres"]
	d.count(t, "order_done", 7210-2) // m-0610 and m-6500 were replaced by repeated ids
	d.want(t, "order_done", "m-0700", "total", int64(7))
	d.want(t, "order_done", "m-0700", "name", "o-7")
	d.want(t, "order_done", "m-0606", "total", nil)
	d.want(t, "order_done", "m-0606", "name", "o-606")
	d.want(t, "discards", "order_done|total|m-0606", "value", "2.5")
	d.want(t, "order_done", "m-0603", "total", int64(603)) // "603" cast
	d.want(t, "order_done", "m-0604", "total", int64(604)) // 604.0 cast
	d.want(t, "order_done", "m-0605", "total", nil)
	d.want(t, "discards", "order_done|total|m-0605", "value", "n/a")
	d.want(t, "order_done", "m-0600", "name", nil)
	d.want(t, "order_done", "m-7000", "coupon", "SAVE10")
	sameDumps(t, dumps)
}

// TestFailedPartIsReloadedOnce checks loads whose later sub-batch fails after earlier ones
// committed in their own transactions: the load fails as a whole, is loaded again, and every id
// ends up stored once, with the rows counted once in the Result. The failing sub-batch holds
// either ids stored before (the reload goes through the merge) or a row PostgreSQL refuses (the
// batch is split until that event is discarded).
func TestFailedPartIsReloadedOnce(t *testing.T) {
	t.Parallel()
	pg, err := sqlengine.OpenPostgres(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	events := func(from, n int) [][]byte {
		var evs [][]byte
		for i := from; i < from+n; i++ {
			evs = append(evs, mixedEvent(fmt.Sprintf("f-%05d", i), 7*i))
		}
		return evs
	}
	for _, tc := range []struct {
		name     string
		last     []byte // replaces the batch's last event
		rows     int64  // new rows per table
		discards int
	}{
		{"a stored id in the last sub-batch", mixedEvent("f-00000", 0), 3999, 0},
		{"a row too big for PostgreSQL in the last sub-batch", intEvent("f-too-big", 1100), 3999, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			schemaName := strings.ReplaceAll(strings.Fields(tc.name)[1], "-", "") + "_part"
			l := NewWithOptions(pg, slog.New(slog.DiscardHandler), Options{Now: func() time.Time { return fixedNow }})
			if _, err := l.Load(t.Context(), schemaName, events(0, 1)); err != nil { // tables and plans
				t.Fatal(err)
			}
			batch := events(1, 4000) // sub-batches of 1000, written in parallel transactions
			batch[len(batch)-1] = tc.last
			before := l.encodedRows.Load()
			res, err := l.Load(t.Context(), schemaName, batch)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if l.encodedRows.Load() == before {
				t.Fatal("no sub-batch was written from its encoding: the parallel path was not taken")
			}
			if res.Rows["tracks"] != tc.rows || res.Rows["order_done"] != tc.rows || res.Discards != tc.discards {
				t.Fatalf("result %+v, want %d new rows per table and %d discards", res, tc.rows, tc.discards)
			}
			var n, distinct int
			q := fmt.Sprintf(`SELECT count(*), count(DISTINCT id) FROM %q.order_done`, schemaName)
			if err := pg.DB().QueryRowContext(t.Context(), q).Scan(&n, &distinct); err != nil {
				t.Fatal(err)
			}
			if n != 4000 || distinct != 4000 {
				t.Fatalf("order_done holds %d rows (%d ids), want 4000 once each", n, distinct)
			}
		})
	}
}

func TestSubBatches(t *testing.T) {
	t.Parallel()
	pg := &Loader{d: sqlengine.PostgresDialect()}
	warm := &copyPlans{m: map[string]*copyPlan{"tracks": {}}}
	cold := &copyPlans{}
	for _, tt := range []struct {
		l     *Loader
		n     int
		plans *copyPlans
		want  []int
	}{
		{pg, 1, warm, []int{1}},
		{pg, 1000, warm, []int{1000}},
		{pg, 1000, cold, []int{250, 750}},
		{pg, 2001, warm, []int{1000, 1001}},
		{pg, 10000, warm, []int{1000, 2250, 2250, 2250, 2250}},
		{pg, 10000, cold, []int{250, 2438, 2438, 2437, 2437}},
		{pg, 50000, warm, append([]int{1000}, slices.Repeat([]int{2450}, 20)...)},
		{pg, 10000, nil, []int{10000}}, // the merge, and DuckDB: no copy plans
	} {
		if got := tt.l.subBatches(tt.n, tt.plans); !slices.Equal(got, tt.want) {
			t.Errorf("subBatches(%d, %d plans, nil %v) = %v, want %v", tt.n, len(tt.plans.snapshot().plans), tt.plans == nil, got, tt.want)
		}
	}
}

// TestSubBatchedLoadTypesColumnsOverWholeLoad loads batches PostgreSQL writes in several
// sub-batches (transactions) whose new columns meet values of other kinds only in a later
// sub-batch: the column's type must come from the whole load, as on DuckDB, which writes a load
// at once: an int column meeting 2.5 is float, meeting "abc" is string, with no discards, on the
// event tables and on users (traits). A repeated messageId's event is left out and so does not
// take part in the typing. The first load is a schema's first (no copy plans), the second adds a
// column and a table in its middle, and the two engines must hold identical tables.
func TestSubBatchedLoadTypesColumnsOverWholeLoad(t *testing.T) {
	t.Parallel()
	pg, duck := bothEngines(t)

	track := func(id, event, props string) []byte {
		return fmt.Appendf(nil, `{"type":"track","messageId":%q,"userId":"u-1","event":%q,"receivedAt":"2024-05-01T10:00:00.000Z","properties":{%s}}`, id, event, props)
	}
	first := make([][]byte, 2500) // a schema's first load: sub-batches of 250, then about 2,250
	for i := range first {
		id := fmt.Sprintf("a-%04d", i)
		props := []string{fmt.Sprintf(`"mix_num":%d`, i), fmt.Sprintf(`"mix_str":%d`, i)}
		switch i {
		case 10:
			props = append(props, `"dup_col":10`)
		case 1500:
			props[0] = `"mix_num":2.5`
		case 1800:
			props = append(props, `"late_col":18`)
		case 2000:
			props[1] = `"mix_str":"abc"`
		case 2300: // repeats a-0010's messageId: left out, so its "text" types nothing
			id = "a-0010"
			props = append(props, `"dup_col":"text"`)
		case 2400:
			props = append(props, `"late_col":3.5`)
		}
		first[i] = track(id, "Mix", strings.Join(props, ","))
		if i == 5 || i == 2200 {
			score := map[int]string{5: "7", 2200: "7.25"}[i]
			first[i] = fmt.Appendf(nil, `{"type":"identify","messageId":%q,"userId":"u-%d","receivedAt":"2024-05-01T10:00:00.000Z","traits":{"score":%s}}`, id, i, score)
		}
	}
	second := make([][]byte, 6000) // plans exist: sub-batches of 1,000, 2,500 and 2,500
	for i := range second {
		props := fmt.Sprintf(`"mix_num":%d,"mix_str":"s%d"`, i, i)
		switch {
		case i == 1500:
			props += `,"warm_new":15`
		case i == 5000:
			props += `,"warm_new":"x"`
		}
		event := "Mix"
		if i == 3000 || i == 5500 {
			event = "Late Event"
			props = map[int]string{3000: `"when":"2024-05-01T10:00:00Z"`, 5500: `"when":true`}[i]
		}
		second[i] = track(fmt.Sprintf("b-%04d", i), event, props)
	}

	dumps := map[string]schemaDump{}
	for _, e := range []sqlengine.Engine{pg, duck} {
		name := e.Dialect().Name()
		l := NewWithOptions(e, slog.New(slog.DiscardHandler), Options{Now: func() time.Time { return fixedNow }})
		for i, evs := range [][][]byte{first, second} {
			res, err := l.Load(t.Context(), "whole", evs)
			if err != nil {
				t.Fatalf("%s: load %d: %v", name, i, err)
			}
			if res.Discards != 0 {
				t.Fatalf("%s: load %d: %d discards, want none: %v", name, i, res.Discards, res.Notices)
			}
		}
		if name == "postgres" && l.encodedRows.Load() == 0 {
			t.Fatal("postgres: no rows written from encodings: the loads were not sub-batched")
		}
		dumps[name] = dumpSchema(t, e, "whole")
	}
	d := dumps["postgres"]
	d.kind(t, "mix", "mix_num", "float")
	d.kind(t, "mix", "mix_str", "string")
	d.kind(t, "mix", "late_col", "float")
	d.kind(t, "mix", "dup_col", "int")
	d.kind(t, "mix", "warm_new", "string")
	d.kind(t, "late_event", "when", "string")
	d.kind(t, "users", "score", "float")
	d.kind(t, "identifies", "score", "float")
	d.want(t, "mix", "a-0001", "mix_num", float64(1))
	d.want(t, "mix", "a-1500", "mix_num", 2.5)
	d.want(t, "mix", "a-0001", "mix_str", "1")
	d.want(t, "mix", "a-2000", "mix_str", "abc")
	d.want(t, "mix", "a-0010", "dup_col", int64(10))
	d.want(t, "mix", "a-2400", "late_col", 3.5)
	d.want(t, "mix", "b-1500", "warm_new", "15")
	d.want(t, "users", "u-5", "score", float64(7))
	d.want(t, "users", "u-2200", "score", 7.25)
	d.count(t, "mix", 2500-2-1+6000-2) // two identifies, one repeated id; two Late Events
	d.count(t, "discards", 0)
	sameDumps(t, dumps)
}

// TestRepeatedIdentifyChangesNoUser loads identify calls whose messageId was loaded before (in an
// earlier load: a resend past Ingest's dedupe window; and within one load) carrying other traits:
// the event is stored once, so neither identifies nor users change, nor does a trait's type. The
// users count of a load is the number of users it wrote, the same on both engines, and an event
// older than the stored user changes nothing.
func TestRepeatedIdentifyChangesNoUser(t *testing.T) {
	t.Parallel()
	pg, duck := bothEngines(t)
	identify := func(id, user, at, traits string) []byte {
		return fmt.Appendf(nil, `{"type":"identify","messageId":%q,"userId":%q,"receivedAt":"2024-05-01T10:00:%sZ","traits":{%s}}`, id, user, at, traits)
	}
	loads := []struct {
		events [][]byte
		users  int64 // users the load wrote
	}{
		{[][]byte{
			identify("i-1", "u-1", "01", `"plan":"free","seats":1`),
			identify("i-2", "u-2", "02", `"plan":"pro"`),
			identify("i-1", "u-1", "03", `"plan":"HACKED","seats":"many","extra":true`), // repeated within the load
			identify("i-3", "u-1", "04", `"seats":2`),
		}, 2},
		{[][]byte{
			identify("i-1", "u-1", "05", `"plan":"HACKED"`), // repeated across loads: the merge path
			identify("i-4", "u-3", "06", `"plan":"team"`),
			identify("i-5", "u-2", "00", `"plan":"old"`), // older than u-2's stored row
		}, 1},
	}
	dumps := map[string]schemaDump{}
	for _, e := range []sqlengine.Engine{pg, duck} {
		name := e.Dialect().Name()
		l := NewWithOptions(e, slog.New(slog.DiscardHandler), Options{Now: func() time.Time { return fixedNow }})
		for i, ld := range loads {
			res, err := l.Load(t.Context(), "reid", ld.events)
			if err != nil {
				t.Fatalf("%s: load %d: %v", name, i, err)
			}
			if res.Rows["users"] != ld.users {
				t.Fatalf("%s: load %d wrote %d users, want %d", name, i, res.Rows["users"], ld.users)
			}
		}
		dumps[name] = dumpSchema(t, e, "reid")
	}
	d := dumps["postgres"]
	d.count(t, "identifies", 5)
	d.want(t, "identifies", "i-1", "plan", "free")
	d.count(t, "users", 3)
	d.want(t, "users", "u-1", "plan", "free")
	d.want(t, "users", "u-1", "seats", int64(2))
	d.kind(t, "users", "seats", "int")
	d.noColumn(t, "users", "extra")
	d.want(t, "users", "u-2", "plan", "pro")
	d.want(t, "users", "u-3", "plan", "team")
	d.count(t, "discards", 0)
	sameDumps(t, dumps)
}
