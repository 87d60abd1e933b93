package sqlengine

import (
	"errors"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgconn"
)

// IsDataError reports whether err is the database refusing the data or the statement built from it
// (a value it cannot convert, a limit such as PostgreSQL's 1600 columns or 8 KB rows, a name it
// rejects) rather than the database being unreachable or busy. Retrying a data error with the same
// rows fails again, so loaders isolate and discard the offending row instead of retrying forever.
func IsDataError(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && len(pe.Code) >= 2 {
		switch pe.Code[:2] {
		case "22", // data exception
			"23", // integrity constraint violation
			"42", // syntax error or access rule violation (bad name, too many columns)
			"54": // program limit exceeded (row too big, too many columns)
			return true
		}
		return false
	}
	var de *duckdb.Error
	if errors.As(err, &de) {
		switch de.Type {
		case duckdb.ErrorTypeOutOfRange, duckdb.ErrorTypeConversion, duckdb.ErrorTypeMismatchType,
			duckdb.ErrorTypeObjectSize, duckdb.ErrorTypeInvalidType, duckdb.ErrorTypeConstraint,
			duckdb.ErrorTypeCatalog, duckdb.ErrorTypeParser, duckdb.ErrorTypeBinder,
			duckdb.ErrorTypeSyntax, duckdb.ErrorTypeInvalidInput:
			return true
		}
	}
	return false
}
