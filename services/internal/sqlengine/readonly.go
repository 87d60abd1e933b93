package sqlengine

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// ErrNotReadOnly is returned by IsReadOnlySQL and QueryReadOnly for SQL that is not a single
// read-only statement. The wrapping error says why.
var ErrNotReadOnly = errors.New("only a single read-only statement (SELECT, WITH, VALUES, TABLE, FROM, SHOW, DESCRIBE, EXPLAIN) is allowed")

// DefaultMaxRows is the row limit QueryReadOnly applies when the caller passes maxRows <= 0.
const DefaultMaxRows = 1000

// allowedFirst are the statement keywords a read-only query may start with.
var allowedFirst = map[string]bool{
	"SELECT": true, "WITH": true, "VALUES": true, "TABLE": true, "FROM": true,
	"SHOW": true, "DESCRIBE": true, "EXPLAIN": true,
}

// forbidden are words that, outside string literals and quoted identifiers, mark a statement that
// writes, changes settings, touches other databases or controls transactions. The list is
// deliberately broad: a read query that needs one of these words as a name can quote it.
var forbidden = map[string]bool{
	"INSERT": true, "UPDATE": true, "DELETE": true, "MERGE": true, "UPSERT": true,
	"CREATE": true, "DROP": true, "ALTER": true, "TRUNCATE": true, "RENAME": true,
	"ATTACH": true, "DETACH": true, "USE": true, "COPY": true, "EXPORT": true, "IMPORT": true,
	"INSTALL": true, "LOAD": true, "FORCE": true, "PRAGMA": true, "SET": true, "RESET": true,
	"CALL": true, "CHECKPOINT": true, "VACUUM": true, "GRANT": true, "REVOKE": true,
	"COMMENT": true, "BEGIN": true, "START": true, "COMMIT": true, "ROLLBACK": true, "ABORT": true,
	"SAVEPOINT": true, "RELEASE": true, "LOCK": true, "INTO": true, "NOTIFY": true, "LISTEN": true,
	"PREPARE": true, "EXECUTE": true, "DEALLOCATE": true, "REFRESH": true, "CLUSTER": true,
	"REINDEX": true, "DO": true, "SECRET": true,
}

// IsReadOnlySQL checks, without a database, that query is exactly one statement that only reads.
// It returns nil or an error wrapping ErrNotReadOnly. It is a first line of defence; QueryReadOnly
// also runs the statement in a transaction that is always rolled back.
func IsReadOnlySQL(query string) error {
	words, err := scanSQL(query)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotReadOnly, err)
	}
	if len(words) == 0 {
		return fmt.Errorf("%w: the query is empty", ErrNotReadOnly)
	}
	if !allowedFirst[words[0]] {
		return fmt.Errorf("%w: a statement starting with %s is not", ErrNotReadOnly, words[0])
	}
	for _, w := range words {
		if forbidden[w] {
			return fmt.Errorf("%w: the keyword %s is not allowed in a read-only query", ErrNotReadOnly, w)
		}
	}
	return nil
}

// scanSQL returns the upper-cased bare words of query in order, skipping comments, string
// literals (including E” and dollar-quoted ones) and quoted identifiers. It fails when the query
// holds more than one statement or an unterminated literal.
func scanSQL(q string) ([]string, error) {
	var words []string
	ended := false // a top-level ';' was seen
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
			continue
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				return words, nil
			}
			i += j + 1
			continue
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				return nil, errors.New("unterminated comment")
			}
			i += j + 4
			continue
		case c == ';':
			ended = true
			i++
			continue
		}
		if ended {
			return nil, errors.New("more than one statement")
		}
		switch {
		case c == '\'':
			j, err := skipQuoted(q, i, '\'', false)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '"':
			j, err := skipQuoted(q, i, '"', false)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '$' && i+1 < len(q) && !isDigit(q[i+1]):
			// Dollar-quoted string: $tag$ ... $tag$.
			end := strings.IndexByte(q[i+1:], '$')
			if end < 0 {
				return nil, errors.New("unterminated dollar quote")
			}
			tag := q[i : i+end+2]
			if !isWordTag(tag[1 : len(tag)-1]) {
				i++
				continue
			}
			k := strings.Index(q[i+len(tag):], tag)
			if k < 0 {
				return nil, errors.New("unterminated dollar-quoted string")
			}
			i += len(tag) + k + len(tag)
		case isWordByte(c):
			j := i
			for j < len(q) && isWordByte(q[j]) {
				j++
			}
			// E'...' is a string with backslash escapes.
			if j-i == 1 && (c == 'E' || c == 'e') && j < len(q) && q[j] == '\'' {
				k, err := skipQuoted(q, j, '\'', true)
				if err != nil {
					return nil, err
				}
				i = k
				continue
			}
			if !isDigit(c) {
				words = append(words, strings.ToUpper(q[i:j]))
			}
			i = j
		default:
			i++
		}
	}
	return words, nil
}

// skipQuoted returns the index just after the literal opened by q[start] == quote. A doubled quote
// is an escaped quote; with backslash, a backslash escapes the next byte.
func skipQuoted(q string, start int, quote byte, backslash bool) (int, error) {
	for i := start + 1; i < len(q); i++ {
		switch {
		case backslash && q[i] == '\\':
			i++
		case q[i] == quote:
			if i+1 < len(q) && q[i+1] == quote {
				i++
				continue
			}
			return i + 1, nil
		}
	}
	return 0, errors.New("unterminated quoted text")
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isWordByte(c byte) bool {
	return c == '_' || isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isWordTag(tag string) bool {
	for i := 0; i < len(tag); i++ {
		if !isWordByte(tag[i]) {
			return false
		}
	}
	return tag == "" || !isDigit(tag[0])
}

// QueryReadOnly runs one read-only statement and returns its column names and at most maxRows rows
// (DefaultMaxRows when maxRows <= 0), with values converted by JSONValue. The statement must pass
// IsReadOnlySQL, and it runs inside a transaction that is always rolled back (read-only on
// PostgreSQL), so even a write the guard missed can never commit.
func QueryReadOnly(ctx context.Context, e Engine, query string, maxRows int) (columns []string, rows [][]any, err error) {
	if err := IsReadOnlySQL(query); err != nil {
		return nil, nil, err
	}
	if maxRows <= 0 {
		maxRows = DefaultMaxRows
	}
	conn, err := e.DB().Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("begin read-only query: %w", err)
	}
	defer func() { _ = conn.Close() }()
	if e.Dialect().Name() != "postgres" {
		return queryRolledBack(ctx, conn, nil, query, maxRows)
	}
	columns, rows, err = queryRolledBack(ctx, conn, &sql.TxOptions{ReadOnly: true}, query, maxRows)
	// A rollback ends everything a statement did but session-level advisory locks
	// (pg_advisory_lock is a SELECT): release them before the connection goes back to the pool,
	// or drop the connection.
	if _, uerr := conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock_all()"); uerr != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return columns, rows, err
}

// queryRolledBack runs query inside a transaction that it always rolls back.
func queryRolledBack(ctx context.Context, conn *sql.Conn, opts *sql.TxOptions, query string, maxRows int) ([]string, [][]any, error) {
	tx, err := conn.BeginTx(ctx, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("begin read-only query: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	rs, err := tx.QueryContext(ctx, query)
	if err != nil {
		return nil, nil, fmt.Errorf("run query: %w", err)
	}
	defer func() { _ = rs.Close() }()
	columns, err := rs.Columns()
	if err != nil {
		return nil, nil, fmt.Errorf("read columns: %w", err)
	}
	rows := [][]any{}
	size := 0
	for len(rows) < maxRows && rs.Next() {
		vals := make([]any, len(columns))
		ptrs := make([]any, len(columns))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return nil, nil, fmt.Errorf("read row: %w", err)
		}
		for i, v := range vals {
			vals[i] = JSONValue(v)
			size += approxSize(vals[i])
		}
		if size > MaxResultBytes {
			return nil, nil, fmt.Errorf("%w: the result passed %d MiB after %d rows; select fewer rows or columns, or aggregate",
				ErrResultTooLarge, MaxResultBytes>>20, len(rows))
		}
		rows = append(rows, vals)
	}
	if err := rs.Err(); err != nil {
		return nil, nil, fmt.Errorf("read rows: %w", err)
	}
	return columns, rows, nil
}

// MaxResultBytes bounds the (approximate) size of one read-only query's
// result held in memory, whatever its row count.
var MaxResultBytes = 16 << 20

// ErrResultTooLarge is returned when a result passes MaxResultBytes.
var ErrResultTooLarge = errors.New("query result too large")

// approxSize estimates the bytes a converted value takes in a response.
func approxSize(v any) int {
	switch x := v.(type) {
	case string:
		return len(x) + 2
	case json.Number:
		return len(x)
	case []any:
		n := 2
		for _, e := range x {
			n += approxSize(e) + 1
		}
		return n
	case map[string]any:
		n := 2
		for k, e := range x {
			n += len(k) + 4 + approxSize(e)
		}
		return n
	}
	return 8
}

// JSONValue converts a value scanned from a warehouse driver into one that encoding/json renders
// faithfully: times become RFC 3339 strings in UTC with nanoseconds, byte slices become strings,
// decimals and big integers become json.Number holding their exact digits, non-finite floats
// become strings, and lists, maps and structs are converted element by element.
func JSONValue(v any) any {
	switch x := v.(type) {
	case nil, bool, string, int64, int32, int16, int8, int, uint8, uint16, uint32, json.Number:
		return x
	case uint64:
		if x > math.MaxInt64 {
			return json.Number(strconv.FormatUint(x, 10))
		}
		return int64(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
		return x
	case float32:
		return JSONValue(float64(x))
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []byte:
		return string(x)
	case *big.Int:
		if x == nil {
			return nil
		}
		return json.Number(x.String())
	case duckdb.Decimal:
		if x.Value == nil {
			return nil
		}
		return json.Number(x.String())
	case duckdb.UUID:
		return x.String()
	case *duckdb.UUID:
		if x == nil {
			return nil
		}
		return x.String()
	case duckdb.Interval:
		return map[string]any{"months": x.Months, "days": x.Days, "micros": x.Micros}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = JSONValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = JSONValue(e)
		}
		return out
	case duckdb.Map:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(JSONValue(k))] = JSONValue(e)
		}
		return out
	case duckdb.Union:
		return JSONValue(x.Value)
	case fmt.Stringer:
		return x.String()
	default:
		return fmt.Sprint(x)
	}
}
