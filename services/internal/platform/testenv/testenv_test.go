package testenv

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
)

func TestNATS(t *testing.T) {
	t.Parallel()
	_, conn := NATS(t)
	if _, err := jetstream.EnsureStream(t.Context(), conn.JS, natsjs.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	ack, err := jetstream.Publish(t.Context(), conn.JS, "t.x", []byte("x"), jetstream.Headers{MsgID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if ack.Sequence != 1 {
		t.Errorf("sequence = %d, want 1", ack.Sequence)
	}
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	tests := []struct{ name string }{
		{name: "first database"},
		{name: "second database is distinct"},
	}
	seen := make(chan string, len(tests))
	t.Cleanup(func() {
		close(seen)
		names := map[string]bool{}
		for n := range seen {
			if names[n] {
				t.Errorf("database %s handed out twice", n)
			}
			names[n] = true
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dsn := Postgres(t)
			conn, err := pgx.Connect(t.Context(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			var db string
			if err := conn.QueryRow(t.Context(), "select current_database()").Scan(&db); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(db, "t_testpostgres_") {
				t.Errorf("database = %q, want a per-test name", db)
			}
			if _, err := conn.Exec(t.Context(), "create table x (id text primary key)"); err != nil {
				t.Fatal(err)
			}
			seen <- db
		})
	}
}

func TestDatabaseName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		testName string
	}{
		{name: "plain", testName: "TestLoad"},
		{name: "subtest with spaces and slashes", testName: "TestLoad/copy rows/ünïcode"},
		{name: "very long", testName: strings.Repeat("TestVeryLongName", 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := databaseName(tt.testName), databaseName(tt.testName)
			if a == b {
				t.Errorf("names not unique: %s", a)
			}
			if len(a) > 63 {
				t.Errorf("name %q longer than 63 bytes", a)
			}
			for _, r := range a {
				if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
					t.Errorf("name %q has character %q", a, r)
				}
			}
		})
	}
}
