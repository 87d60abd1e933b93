package diff_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/diff"
)

// forEachEngine runs fn as a subtest per engine.
func forEachEngine(t *testing.T, fn func(t *testing.T, e sqlengine.Engine)) {
	t.Helper()
	for _, name := range []string{"duckdb", "postgres"} {
		t.Run(name, func(t *testing.T) {
			var e sqlengine.Engine
			if name == "duckdb" {
				var err error
				e, err = sqlengine.OpenDuckDB(filepath.Join(t.TempDir(), "wh.duckdb"))
				if err != nil {
					t.Fatal(err)
				}
			} else {
				var err error
				e, err = sqlengine.OpenPostgres(testenv.Postgres(t))
				if err != nil {
					t.Fatal(err)
				}
			}
			t.Cleanup(func() { _ = e.Close() })
			fn(t, e)
		})
	}
}

// setRows replaces app.src with rows; columns (name → sql type) are fixed.
func setRows(t *testing.T, e sqlengine.Engine, cols [][2]string, rows []map[string]any) {
	t.Helper()
	ctx := t.Context()
	db := e.DB()
	defs := make([]string, len(cols))
	for i, c := range cols {
		defs[i] = fmt.Sprintf("%q %s", c[0], c[1])
	}
	for _, s := range []string{
		"CREATE SCHEMA IF NOT EXISTS app",
		"DROP TABLE IF EXISTS app.src",
		"CREATE TABLE app.src (" + strings.Join(defs, ", ") + ")",
	} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	for _, r := range rows {
		ph := make([]string, len(cols))
		args := make([]any, len(cols))
		for i, c := range cols {
			ph[i] = e.Dialect().Placeholder(i + 1)
			v := r[c[0]]
			if f, ok := v.(float64); ok {
				v = int64(f)
			}
			args[i] = v
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO app.src VALUES ("+strings.Join(ph, ", ")+")", args...); err != nil {
			t.Fatalf("insert: %v", err)
		}
	}
}

// sent is what one run published, as "op:id" plus the values per id.
type sent struct {
	ext    *diff.Extract
	ops    []string
	values map[string]map[string]any
	att    map[string]int
}

// run does one full run (extract, pages, commit).
func run(t *testing.T, d *diff.Differ, job diff.Job) sent {
	t.Helper()
	ctx := t.Context()
	ext, err := d.Extract(ctx, job)
	if err != nil {
		t.Fatalf("extract: %v", err)
	}
	s := sent{ext: ext, ops: []string{}, values: map[string]map[string]any{}, att: map[string]int{}}
	err = d.Pages(ctx, job, ext, func(page []diff.Change) error {
		for _, c := range page {
			s.ops = append(s.ops, string(c.Op)+":"+c.RecordID)
			v := map[string]any{}
			for i, col := range ext.Columns {
				v[col] = c.Values[i]
			}
			s.values[c.RecordID] = v
			s.att[c.RecordID] = c.Attempt
		}
		return nil
	})
	if err != nil {
		t.Fatalf("pages: %v", err)
	}
	if err := d.Commit(ctx, job); err != nil {
		t.Fatalf("commit: %v", err)
	}
	return s
}

func counts(e *diff.Extract) [3]int64 { return [3]int64{e.Added, e.Updated, e.Deleted} }

type retlCase struct {
	ID    string `json:"id"`
	Input struct {
		UniqueKey string `json:"unique_key"`
		Runs      []struct {
			Rows []map[string]any `json:"rows"`
		} `json:"runs"`
	} `json:"input"`
}

func loadCases(t *testing.T) map[string]retlCase {
	t.Helper()
	f, err := os.Open("testdata/retl_cases.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]retlCase{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c retlCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		out[c.ID] = c
	}
	return out
}

// columnsOf gives BIGINT to numeric columns and text to the rest, id first.
func columnsOf(c retlCase) [][2]string {
	types := map[string]string{}
	for _, r := range c.Input.Runs {
		for _, row := range r.Rows {
			for k, v := range row {
				switch v.(type) {
				case float64:
					types[k] = "BIGINT"
				case string:
					if types[k] == "" {
						types[k] = "TEXT"
					}
				}
			}
		}
	}
	names := make([]string, 0, len(types))
	for k := range types {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == c.Input.UniqueKey) != (names[j] == c.Input.UniqueKey) {
			return names[i] == c.Input.UniqueKey
		}
		return names[i] < names[j]
	})
	cols := make([][2]string, len(names))
	for i, n := range names {
		cols[i] = [2]string{n, types[n]}
	}
	return cols
}

func job(sel ...diff.Op) diff.Job {
	return diff.Job{SyncID: "sync_test", Query: "SELECT * FROM app.src", UniqueKey: "id", Selection: sel, Now: time.Now(), PageSize: 2}
}

var all = []diff.Op{diff.Added, diff.Updated, diff.Deleted}

// TestCaseRETL01 — an updated-only mapping sends nothing on the first run
// (every row is added) and exactly the changed row on the second; an added
// mapping sends 2 then 0.
func TestCaseRETL01(t *testing.T) {
	c := loadCases(t)["retl-01"]
	cols := columnsOf(c)
	for _, tc := range []struct {
		name string
		sel  []diff.Op
		want [][]string
	}{
		{"updated mapping sends nothing then id 1", []diff.Op{diff.Updated}, [][]string{{}, {"updated:1"}}},
		{"added mapping sends 2 then 0", []diff.Op{diff.Added}, [][]string{{"added:1", "added:2"}, {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, e sqlengine.Engine) {
				d, err := diff.New(e)
				if err != nil {
					t.Fatal(err)
				}
				wantCounts := [][3]int64{{2, 0, 0}, {0, 1, 0}}
				for i, r := range c.Input.Runs {
					setRows(t, e, cols, r.Rows)
					s := run(t, d, job(tc.sel...))
					if got := counts(s.ext); got != wantCounts[i] {
						t.Errorf("run %d: extract counts (added, updated, deleted) = %v, want %v", i+1, got, wantCounts[i])
					}
					if !slices.Equal(s.ops, tc.want[i]) {
						t.Errorf("run %d: sent %v, want %v", i+1, s.ops, tc.want[i])
					}
				}
			})
		})
	}
}

// TestCaseRETL03 — a deleted record is sent once, with its id and every
// other column null, and never again.
func TestCaseRETL03(t *testing.T) {
	c := loadCases(t)["retl-03"]
	cols := columnsOf(c)
	forEachEngine(t, func(t *testing.T, e sqlengine.Engine) {
		d, err := diff.New(e)
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{{"added:1", "added:2", "added:3"}, {"deleted:2"}, {}}
		wantCounts := [][3]int64{{3, 0, 0}, {0, 0, 1}, {0, 0, 0}}
		for i, r := range c.Input.Runs {
			setRows(t, e, cols, r.Rows)
			s := run(t, d, job(all...))
			if !slices.Equal(s.ops, want[i]) {
				t.Errorf("run %d: sent %v, want %v", i+1, s.ops, want[i])
			}
			if got := counts(s.ext); got != wantCounts[i] {
				t.Errorf("run %d: counts = %v, want %v", i+1, got, wantCounts[i])
			}
			if i == 1 {
				got := s.values["2"]
				if len(got) != 2 || got["id"] != "2" || got["n"] != nil {
					t.Errorf("run 2: deleted payload = %v, want map[id:2 n:<nil>]", got)
				}
			}
		}
	})
}

// TestCaseRETL04 — duplicate and null ids are reported by name, excluded,
// and not marked as synced; id 11 syncs.
func TestCaseRETL04(t *testing.T) {
	c := loadCases(t)["retl-04"]
	cols := columnsOf(c)
	forEachEngine(t, func(t *testing.T, e sqlengine.Engine) {
		d, err := diff.New(e)
		if err != nil {
			t.Fatal(err)
		}
		setRows(t, e, cols, c.Input.Runs[0].Rows)
		s := run(t, d, job(all...))
		if !slices.Equal(s.ops, []string{"added:11"}) {
			t.Errorf("sent %v, want [added:11]", s.ops)
		}
		wantErrs := []diff.RecordError{
			{Code: diff.ErrRecordNullUniqueID, Count: 1},
			{Code: diff.ErrRecordDuplicate, Count: 1, Samples: []string{"10"}},
		}
		if fmt.Sprint(s.ext.Errors) != fmt.Sprint(wantErrs) {
			t.Errorf("record errors = %v, want %v", s.ext.Errors, wantErrs)
		}
		if s.ext.Rows != 4 {
			t.Errorf("extracted rows = %d, want 4", s.ext.Rows)
		}
		var state []string
		rows, err := e.DB().QueryContext(t.Context(), `SELECT record_id FROM "_switchyard_retl"."state_sync_test" ORDER BY record_id`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			_ = rows.Scan(&id)
			state = append(state, id)
		}
		_ = rows.Close()
		if !slices.Equal(state, []string{"11"}) {
			t.Errorf("state holds %v, want [11] (key 10 must not be marked as synced)", state)
		}
		// Once the duplicate is fixed, key 10 is sent as added.
		setRows(t, e, cols, []map[string]any{{"id": 10.0, "v": "y"}, {"id": 11.0, "v": "w"}})
		s = run(t, d, job(all...))
		if !slices.Equal(s.ops, []string{"added:10"}) || s.values["10"]["v"] != "y" {
			t.Errorf("after fixing the duplicate: sent %v %v, want [added:10] with v=y", s.ops, s.values["10"])
		}
	})
}

// TestDiffRules covers the rules around the cases: a value turning null is
// a change, a dropped row after a cancelled run is found again, reset
// resends everything, the selection never stops the state advancing.
func TestDiffRules(t *testing.T) {
	cols := [][2]string{{"id", "TEXT"}, {"email", "TEXT"}, {"score", "BIGINT"}}
	forEachEngine(t, func(t *testing.T, e sqlengine.Engine) {
		ctx := t.Context()
		d, err := diff.New(e)
		if err != nil {
			t.Fatal(err)
		}
		rows := []map[string]any{{"id": "a", "email": "a@x", "score": 1.0}, {"id": "b", "email": "b@x", "score": 2.0}, {"id": "c", "email": "c@x", "score": 3.0}}
		setRows(t, e, cols, rows)
		if s := run(t, d, job(all...)); !slices.Equal(s.ops, []string{"added:a", "added:b", "added:c"}) || s.values["b"]["score"] != int64(2) {
			t.Fatalf("first run sent %v %v", s.ops, s.values["b"])
		}
		t.Run("a value turning null is an update", func(t *testing.T) {
			rows[0]["email"] = nil
			setRows(t, e, cols, rows)
			s := run(t, d, job(all...))
			if !slices.Equal(s.ops, []string{"updated:a"}) || s.values["a"]["email"] != nil {
				t.Errorf("sent %v %v, want [updated:a] with email null", s.ops, s.values["a"])
			}
		})
		t.Run("an aborted run leaves the state as it was", func(t *testing.T) {
			rows[1]["score"] = 20.0
			setRows(t, e, cols, rows)
			j := job(all...)
			if _, err := d.Extract(ctx, j); err != nil {
				t.Fatal(err)
			}
			if err := d.Abort(ctx, j.SyncID); err != nil {
				t.Fatal(err)
			}
			if s := run(t, d, j); !slices.Equal(s.ops, []string{"updated:b"}) {
				t.Errorf("after abort: sent %v, want [updated:b]", s.ops)
			}
		})
		t.Run("failed records are retried up to 5 runs, re-reading the latest data", func(t *testing.T) {
			j := job(all...)
			fail := func(attempt int) {
				if err := d.RecordResults(ctx, j.SyncID, time.Now(), []diff.Result{{RecordID: "c", Op: diff.Added, Attempt: attempt, Error: "HTTP 500"}}); err != nil {
					t.Fatal(err)
				}
			}
			fail(1)
			rows[2]["email"] = "c2@x"
			setRows(t, e, cols, rows)
			s := run(t, d, j) // changed and failed: one send, as an update, attempt 2
			if !slices.Equal(s.ops, []string{"updated:c"}) || s.att["c"] != 2 || s.values["c"]["email"] != "c2@x" || s.ext.Retried != 0 {
				t.Fatalf("run with a changed failed record: sent %v attempt %d values %v retried %d", s.ops, s.att["c"], s.values["c"], s.ext.Retried)
			}
			for attempt := 2; attempt <= 4; attempt++ {
				fail(attempt)
				s := run(t, d, j)
				if !slices.Equal(s.ops, []string{"added:c"}) || s.att["c"] != attempt+1 || s.ext.Retried != 1 {
					t.Fatalf("retry after attempt %d: sent %v attempt %d retried %d, want [added:c] attempt %d", attempt, s.ops, s.att["c"], s.ext.Retried, attempt+1)
				}
			}
			fail(5)
			s = run(t, d, j)
			if len(s.ops) != 0 || len(s.ext.Errors) != 1 || s.ext.Errors[0].Code != diff.ErrRetriesExhausted || s.ext.Errors[0].Samples[0] != "c" {
				t.Fatalf("after 5 failed attempts: sent %v errors %v, want nothing and ErrRetriesExhausted c", s.ops, s.ext.Errors)
			}
			if n, _ := d.PendingRetries(ctx, j.SyncID); n != 0 {
				t.Errorf("pending retries = %d, want 0", n)
			}
			// A delivered result clears a pending failure.
			fail(1)
			if err := d.RecordResults(ctx, j.SyncID, time.Now(), []diff.Result{{RecordID: "c", Op: diff.Added, Attempt: 1, Delivered: true}}); err != nil {
				t.Fatal(err)
			}
			if n, _ := d.PendingRetries(ctx, j.SyncID); n != 0 {
				t.Errorf("pending retries after success = %d, want 0", n)
			}
		})
		t.Run("the state advances over unselected changes", func(t *testing.T) {
			rows[0]["email"] = "a3@x"
			rows = rows[:2]
			setRows(t, e, cols, rows)
			if s := run(t, d, job(diff.Added)); len(s.ops) != 0 || counts(s.ext) != [3]int64{0, 1, 1} {
				t.Errorf("added-only run sent %v counts %v, want nothing and (0,1,1)", s.ops, counts(s.ext))
			}
			if s := run(t, d, job(all...)); len(s.ops) != 0 {
				t.Errorf("next run sent %v, want nothing", s.ops)
			}
		})
		t.Run("reset sends every row as added", func(t *testing.T) {
			j := job(all...)
			if err := d.Reset(ctx, j.SyncID); err != nil {
				t.Fatal(err)
			}
			if s := run(t, d, j); !slices.Equal(s.ops, []string{"added:a", "added:b"}) {
				t.Errorf("after reset sent %v, want [added:a added:b]", s.ops)
			}
		})
	})
}
