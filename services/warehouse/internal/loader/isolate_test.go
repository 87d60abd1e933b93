package loader

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
)

// intEvent is a track event with n integer properties: in PostgreSQL its row (8 bytes per bigint,
// which cannot be moved out of line) is over the 8 KB row limit, so the database refuses it.
func intEvent(id string, n int) []byte {
	props := map[string]any{}
	for i := range n {
		props[fmt.Sprintf("n%d", i)] = i
	}
	raw, _ := json.Marshal(map[string]any{
		"type": "track", "messageId": id, "userId": "u-big", "event": "Big",
		"receivedAt": "2024-05-01T10:00:00.000Z", "properties": props,
	})
	return raw
}

// TestRowRefusedByPostgresIsIsolated checks that a row the database itself refuses is discarded
// with the database's reason while the rest of its batch commits.
func TestRowRefusedByPostgresIsIsolated(t *testing.T) {
	t.Parallel()
	pg, err := sqlengine.OpenPostgres(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	l := NewWithOptions(pg, slog.New(slog.DiscardHandler), Options{Now: func() time.Time { return fixedNow }})
	good := func(id string) []byte {
		return []byte(`{"type":"track","messageId":"` + id + `","userId":"u","event":"Big","receivedAt":"2024-05-01T10:00:00Z","properties":{"n1":1}}`)
	}
	res, err := l.Load(t.Context(), "iso", [][]byte{good("ok-1"), intEvent("too-big", 1100), good("ok-2")})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if res.Rows["big"] != 2 || res.Rows["tracks"] != 2 || res.Discards != 2 {
		t.Fatalf("result = %+v, want 2 big rows, 2 tracks rows, 2 discards", res)
	}
	d := dumpSchema(t, pg, "iso")
	d.count(t, "big", 2)
	d.want(t, "big", "ok-1", "n1", int64(1))
	d.want(t, "big", "ok-2", "n1", int64(1))
	r := d.row(t, "discards", "big|*|too-big")
	if reason, _ := r["reason"].(string); !strings.Contains(reason, "row is too big") {
		t.Fatalf("discard reason = %q, want the database's 'row is too big'", reason)
	}
	if _, ok := d["big"].Columns["n1099"]; ok {
		t.Fatal("the refused row's columns were added")
	}
}
