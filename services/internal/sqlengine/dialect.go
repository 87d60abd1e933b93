package sqlengine

import (
	"strconv"
	"strings"
)

// quoteDouble quotes an identifier the SQL-standard way, doubling embedded double quotes.
func quoteDouble(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// duckDialect is DuckDB's dialect. Timestamps are stored as TIMESTAMP holding UTC, which reads
// back as a UTC time.Time without needing the ICU extension.
//
// catalog, when set, is the database's catalog name (the file name without extension): names are
// then qualified with it, because DuckDB cannot tell a schema from a catalog of the same name
// ("warehouse.duckdb" holding a schema "warehouse").
type duckDialect struct{ catalog string }

// DuckDBDialect returns the DuckDB dialect.
func DuckDBDialect() Dialect { return duckDialect{} }

func (duckDialect) Name() string                  { return "duckdb" }
func (duckDialect) QuoteIdent(name string) string { return quoteDouble(name) }
func (duckDialect) Placeholder(n int) string      { return "$" + strconv.Itoa(n) }

func (duckDialect) ColumnType(k ColumnKind) string {
	switch k {
	case KindInt:
		return "BIGINT"
	case KindFloat:
		return "DOUBLE"
	case KindBool:
		return "BOOLEAN"
	case KindTimestamp:
		return "TIMESTAMP"
	default:
		return "VARCHAR"
	}
}

func (duckDialect) KindOf(dataType string) (ColumnKind, bool) {
	return kindOf(dataType)
}

// postgresDialect is PostgreSQL's dialect. Timestamps are timestamptz.
type postgresDialect struct{}

// PostgresDialect returns the PostgreSQL dialect.
func PostgresDialect() Dialect { return postgresDialect{} }

func (postgresDialect) Name() string                  { return "postgres" }
func (postgresDialect) QuoteIdent(name string) string { return quoteDouble(name) }
func (postgresDialect) Placeholder(n int) string      { return "$" + strconv.Itoa(n) }

func (postgresDialect) ColumnType(k ColumnKind) string {
	switch k {
	case KindInt:
		return "bigint"
	case KindFloat:
		return "double precision"
	case KindBool:
		return "boolean"
	case KindTimestamp:
		return "timestamptz"
	default:
		return "text"
	}
}

func (postgresDialect) KindOf(dataType string) (ColumnKind, bool) {
	return kindOf(dataType)
}

// kindOf understands the data_type spellings of both DuckDB and PostgreSQL.
func kindOf(dataType string) (ColumnKind, bool) {
	t := strings.ToUpper(strings.TrimSpace(dataType))
	if i := strings.IndexByte(t, '('); i >= 0 {
		t = strings.TrimSpace(t[:i])
	}
	switch t {
	case "VARCHAR", "TEXT", "CHARACTER VARYING", "STRING", "CHAR", "CHARACTER":
		return KindString, true
	case "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "INT8", "INT4", "INT2", "HUGEINT":
		return KindInt, true
	case "DOUBLE", "DOUBLE PRECISION", "REAL", "FLOAT", "FLOAT8", "FLOAT4", "DECIMAL", "NUMERIC":
		return KindFloat, true
	case "BOOLEAN", "BOOL":
		return KindBool, true
	case "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITHOUT TIME ZONE", "TIMESTAMPTZ":
		return KindTimestamp, true
	}
	return 0, false
}
