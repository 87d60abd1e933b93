package sqlengine

import (
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"

	// The DuckDB driver registers itself as "duckdb" with database/sql.
	_ "github.com/duckdb/duckdb-go/v2"
)

// DuckDB allows one open instance per database file per process, so every OpenDuckDB call for the
// same file shares one *sql.DB. The registry counts handles and closes the database when the last
// handle is closed.
var duckRegistry = struct {
	sync.Mutex
	open map[string]*sharedDuck
}{open: map[string]*sharedDuck{}}

type sharedDuck struct {
	db      *sql.DB
	catalog string
	refs    int
}

// duckEngine is one handle on a shared DuckDB instance.
type duckEngine struct {
	path    string
	db      *sql.DB
	catalog string
	once    sync.Once
	err     error
}

// DuckDBSettings are the configuration every embedded DuckDB instance opens
// with. The instance holds customer data and answers the query API, so it
// is locked down: no access to files other than its own database, no
// network, no extension downloads, and the configuration cannot be changed
// later by SQL (lock_configuration). memory_limit bounds what one query may
// take from the process (DuckDB spills to disk beyond it where it can).
var DuckDBSettings = url.Values{
	"enable_external_access":       {"false"},
	"autoinstall_known_extensions": {"false"},
	"autoload_known_extensions":    {"false"},
	"allow_community_extensions":   {"false"},
	"memory_limit":                 {"2GB"},
	"lock_configuration":           {"true"},
}

// OpenDuckDB opens the DuckDB database file at path, creating it if needed. Calls for the same file
// (by absolute path) within one process share one instance; each returned Engine must be closed, and
// the instance closes with the last one.
func OpenDuckDB(path string) (Engine, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolve duckdb path %q: %w", path, err)
	}
	duckRegistry.Lock()
	defer duckRegistry.Unlock()
	if s, ok := duckRegistry.open[abs]; ok {
		s.refs++
		return &duckEngine{path: abs, db: s.db, catalog: s.catalog}, nil
	}
	db, err := sql.Open("duckdb", abs+"?"+DuckDBSettings.Encode())
	if err != nil {
		return nil, fmt.Errorf("open duckdb %q: %w", abs, err)
	}
	if err := db.Ping(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open duckdb %q: %w", abs, err)
	}
	var catalog string
	if err := db.QueryRow("SELECT current_database()").Scan(&catalog); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open duckdb %q: read catalog name: %w", abs, err)
	}
	duckRegistry.open[abs] = &sharedDuck{db: db, catalog: catalog, refs: 1}
	return &duckEngine{path: abs, db: db, catalog: catalog}, nil
}

func (e *duckEngine) Dialect() Dialect { return duckDialect{catalog: e.catalog} }
func (e *duckEngine) DB() *sql.DB      { return e.db }

func (e *duckEngine) Close() error {
	e.once.Do(func() {
		duckRegistry.Lock()
		defer duckRegistry.Unlock()
		s, ok := duckRegistry.open[e.path]
		if !ok {
			return
		}
		s.refs--
		if s.refs > 0 {
			return
		}
		delete(duckRegistry.open, e.path)
		if err := s.db.Close(); err != nil {
			e.err = fmt.Errorf("close duckdb %q: %w", e.path, err)
		}
	})
	return e.err
}
