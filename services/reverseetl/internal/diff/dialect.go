package diff

import (
	"fmt"

	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
)

// dialect holds the SQL fragments that differ between engines. They live
// here, keyed on Dialect().Name(), rather than in sqlengine, because only
// Reverse ETL needs them.
type dialect struct {
	base sqlengine.Dialect
	// text is the text column type the record id is cast to.
	text string
	// scratch is the CREATE kind of snapshot and change tables.
	scratch string
	// analyze tells whether fresh tables need ANALYZE and an index on the
	// page key (PostgreSQL's planner has no statistics for a new table;
	// DuckDB's zonemaps over the ordered table serve the range scans).
	analyze bool
	// checksum is the expression hashing a whole row of the alias.
	checksum func(alias string) string
}

func dialectOf(d sqlengine.Dialect) (dialect, error) {
	switch d.Name() {
	case "duckdb":
		return dialect{base: d, text: "VARCHAR", scratch: "TABLE",
			checksum: func(a string) string { return "md5(CAST(to_json(" + a + ") AS VARCHAR))" }}, nil
	case "postgres":
		return dialect{base: d, text: "text", scratch: "UNLOGGED TABLE", analyze: true,
			checksum: func(a string) string { return "md5(CAST(row_to_json(" + a + ") AS text))" }}, nil
	}
	return dialect{}, fmt.Errorf("reverse etl does not support the %s engine", d.Name())
}
