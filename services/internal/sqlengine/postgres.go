package sqlengine

import (
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// pgEngine is an open PostgreSQL warehouse: a database/sql pool over pgx.
type pgEngine struct {
	db   *sql.DB
	once sync.Once
	err  error
}

// OpenPostgres returns an engine for the PostgreSQL database at dsn (a URL or key=value string as
// pgx accepts). It does not connect: a warehouse that is down at start is reported by the first
// load or Ping, and the pool reconnects once it is back.
func OpenPostgres(dsn string) (Engine, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse postgres dsn: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return &pgEngine{db: db}, nil
}

func (e *pgEngine) Dialect() Dialect { return PostgresDialect() }
func (e *pgEngine) DB() *sql.DB      { return e.db }

func (e *pgEngine) Close() error {
	e.once.Do(func() {
		if err := e.db.Close(); err != nil {
			e.err = fmt.Errorf("close postgres: %w", err)
		}
	})
	return e.err
}
