// Package sqlengine holds the warehouse engine adapters shared by Warehouse and ReverseETL: opening
// and sharing connections, the SQL dialect (identifier quoting, column types, placeholders) and the
// read-only query guard. It knows nothing about events or Segment's schema.
package sqlengine

import (
	"database/sql"
	"fmt"
)

// ColumnKind is the portable type of a warehouse column. The zero value is not a valid kind.
type ColumnKind int

// The column kinds Segment warehouses support (timestamp, integer, float, boolean, varchar).
const (
	KindString ColumnKind = iota + 1
	KindInt
	KindFloat
	KindBool
	KindTimestamp
)

// String returns the kind's lowercase name, as used in logs and the discards table.
func (k ColumnKind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindInt:
		return "int"
	case KindFloat:
		return "float"
	case KindBool:
		return "bool"
	case KindTimestamp:
		return "timestamp"
	default:
		return fmt.Sprintf("ColumnKind(%d)", int(k))
	}
}

// Engine is an open warehouse: a connection pool plus the dialect to speak to it.
type Engine interface {
	// Dialect returns the engine's SQL dialect.
	Dialect() Dialect
	// DB returns the shared connection pool. Callers must not close it; they call Close on the
	// Engine instead.
	DB() *sql.DB
	// Close releases this handle. The underlying database closes when its last handle is closed.
	// Close is idempotent.
	Close() error
}

// Dialect is what differs in the SQL the services generate for each engine.
type Dialect interface {
	// Name is the engine name: "duckdb" or "postgres".
	Name() string
	// QuoteIdent quotes one identifier (schema, table or column) so keywords such as "user",
	// "order" or "current_time" are always read as names.
	QuoteIdent(name string) string
	// ColumnType is the SQL type used to create a column of kind k.
	ColumnType(k ColumnKind) string
	// KindOf maps a type name as reported by information_schema.columns.data_type back to a kind.
	// ok is false for types the warehouse loader never creates.
	KindOf(dataType string) (k ColumnKind, ok bool)
	// Placeholder returns the bind parameter for the n-th (1-based) argument.
	Placeholder(n int) string
}

// QualifiedName quotes schema and table and joins them with a dot. For an open DuckDB engine's
// dialect the catalog is prepended, so a schema named like the database file is never ambiguous.
func QualifiedName(d Dialect, schema, table string) string {
	if dd, ok := d.(duckDialect); ok && dd.catalog != "" {
		return d.QuoteIdent(dd.catalog) + "." + d.QuoteIdent(schema) + "." + d.QuoteIdent(table)
	}
	return d.QuoteIdent(schema) + "." + d.QuoteIdent(table)
}

// QualifiedSchema quotes a schema name, prefixed with the catalog for an open DuckDB engine (see
// QualifiedName).
func QualifiedSchema(d Dialect, schema string) string {
	if dd, ok := d.(duckDialect); ok && dd.catalog != "" {
		return d.QuoteIdent(dd.catalog) + "." + d.QuoteIdent(schema)
	}
	return d.QuoteIdent(schema)
}
