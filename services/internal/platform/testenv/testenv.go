// Package testenv gives integration tests of Switchyard modules the real
// dependencies, in-process or on the machine: an embedded NATS server with
// JetStream, and a fresh database on the machine's PostgreSQL. Missing
// dependencies fail the test with a clear message; they never skip it.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/natsembed"
)

// NATS starts an embedded NATS server with JetStream storing in a
// t.TempDir(), without a TCP port, and connects to it in-process. Both are
// stopped when the test ends.
func NATS(t testing.TB) (*server.Server, *jetstream.Conn) {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("testenv: start embedded NATS: %v", err)
	}
	conn, err := jetstream.ConnectInProcess(srv, t.Name())
	if err != nil {
		srv.Shutdown()
		t.Fatalf("testenv: connect to embedded NATS: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = conn.Close(ctx)
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv, conn
}

// PostgresAdminURLEnv names an environment variable that, when set, is the
// admin connection URL Postgres uses instead of probing the machine's
// server (e.g. postgres://user:pw@host:5432/postgres).
const PostgresAdminURLEnv = "SWITCHYARD_TEST_POSTGRES_URL"

// startTimeout bounds the wait for a PostgreSQL server Postgres started.
const startTimeout = 20 * time.Second

// adminCandidates are the trust-auth logins tried on the machine's server.
var adminCandidates = []string{
	"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
	"postgres://root@127.0.0.1:5432/test?sslmode=disable",
	"postgres://root@127.0.0.1:5432/postgres?sslmode=disable",
	"postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
}

var (
	startOnce sync.Once
	startErr  error
)

// Postgres returns the URL of a new, empty database on the machine's
// PostgreSQL (127.0.0.1:5432, trust auth as postgres or root), dropped when
// the test ends. If the server does not answer, Postgres starts the
// installed cluster once per test binary (pg_ctlcluster) and waits up to
// 20 s; if it still cannot connect, the test fails.
func Postgres(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	admin, adminURL, err := connectAdmin(ctx)
	if err != nil {
		startOnce.Do(func() { startErr = startCluster() })
		deadline := time.Now().Add(startTimeout)
		for err != nil && time.Now().Before(deadline) {
			timer := time.NewTimer(250 * time.Millisecond)
			<-timer.C
			admin, adminURL, err = connectAdmin(ctx)
		}
	}
	if err != nil {
		hint := ""
		if startErr != nil {
			hint = fmt.Sprintf(" (starting it failed: %v)", startErr)
		}
		t.Fatalf("testenv: PostgreSQL is required at 127.0.0.1:5432 with trust auth for user postgres or root, "+
			"and could not be reached%s: %v\nStart it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"+
			"or point %s at a server you can create databases on.", hint, err, PostgresAdminURLEnv)
	}
	defer admin.Close(context.Background())

	name := databaseName(t.Name())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})

	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		t.Fatalf("testenv: parse %s: %v", adminURL, err)
	}
	u := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
	if cfg.Password != "" {
		u = fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Password, cfg.Host, cfg.Port, name)
	}
	return u
}

// connectAdmin connects with the first admin URL that works.
func connectAdmin(ctx context.Context) (*pgx.Conn, string, error) {
	candidates := adminCandidates
	if u := os.Getenv(PostgresAdminURLEnv); u != "" {
		candidates = []string{u}
	}
	var errs []error
	for _, u := range candidates {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		conn, err := pgx.Connect(cctx, u)
		cancel()
		if err == nil {
			return conn, u, nil
		}
		errs = append(errs, err)
	}
	return nil, "", errors.Join(errs...)
}

// startCluster starts the installed PostgreSQL cluster the Debian way.
func startCluster() error {
	versions, err := filepath.Glob("/etc/postgresql/*")
	if err != nil || len(versions) == 0 {
		return errors.New("no cluster under /etc/postgresql")
	}
	var errs []error
	for _, dir := range versions {
		out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", filepath.Base(dir), "main", "start").CombinedOutput()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("pg_ctlcluster %s main start: %w: %s", filepath.Base(dir), err, strings.TrimSpace(string(out))))
	}
	return errors.Join(errs...)
}

// databaseName derives a unique, valid database name from a test name.
func databaseName(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	base := b.String()
	if len(base) > 40 {
		base = base[:40]
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	return "t_" + base + "_" + hex.EncodeToString(suffix[:])
}
