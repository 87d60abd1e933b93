package sqlengine

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// CopyData holds rows encoded in PostgreSQL's binary COPY format, for CopyNew. Each value is
// written as the type the PostgreSQL dialect creates for its kind (text, bigint, double
// precision, boolean, timestamptz), so the target columns must have exactly those types
// (CopyableType). Encoding typed values straight into the wire format costs a fraction of the
// driver's generic path (a plan lookup and an interface value per field).
//
// Build a row with StartRow followed by exactly one call per field (Null, Text, Int, …). The zero
// value is ready to use; Reset empties it for reuse.
type CopyData struct {
	buf  []byte
	rows int
}

// copySignature starts binary COPY data: the signature, no flags, no header extension.
const copySignature = "PGCOPY\n\xff\r\n\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00"

// copyTrailer ends binary COPY data (a field count of -1).
const copyTrailer = "\xff\xff"

// postgresEpoch is 2000-01-01T00:00:00Z in Unix seconds: timestamptz counts microseconds from it.
const postgresEpoch = 946684800

// Reset empties d, keeping its memory.
func (d *CopyData) Reset() {
	d.buf = d.buf[:0]
	d.rows = 0
}

// Grow makes room for n more bytes.
func (d *CopyData) Grow(n int) {
	d.buf = slices.Grow(d.buf, n)
}

// Rows returns how many rows d holds.
func (d *CopyData) Rows() int { return d.rows }

// Len returns the encoded size of d's rows in bytes.
func (d *CopyData) Len() int { return len(d.buf) }

// StartRow starts a row of the given number of fields.
func (d *CopyData) StartRow(fields int) {
	d.buf = binary.BigEndian.AppendUint16(d.buf, uint16(fields))
	d.rows++
}

// Null writes a NULL field.
func (d *CopyData) Null() {
	d.buf = binary.BigEndian.AppendUint32(d.buf, math.MaxUint32) // length -1
}

// Text writes a text field. s must be valid UTF-8 without NUL (the server checks).
func (d *CopyData) Text(s string) {
	d.buf = binary.BigEndian.AppendUint32(d.buf, uint32(len(s)))
	d.buf = append(d.buf, s...)
}

// Int writes a bigint field.
func (d *CopyData) Int(v int64) {
	d.buf = binary.BigEndian.AppendUint32(d.buf, 8)
	d.buf = binary.BigEndian.AppendUint64(d.buf, uint64(v))
}

// Float writes a double precision field.
func (d *CopyData) Float(v float64) {
	d.buf = binary.BigEndian.AppendUint32(d.buf, 8)
	d.buf = binary.BigEndian.AppendUint64(d.buf, math.Float64bits(v))
}

// Bool writes a boolean field.
func (d *CopyData) Bool(v bool) {
	b := byte(0)
	if v {
		b = 1
	}
	d.buf = binary.BigEndian.AppendUint32(d.buf, 1)
	d.buf = append(d.buf, b)
}

// Timestamp writes a timestamptz field from Unix seconds and nanoseconds. PostgreSQL keeps
// microseconds; finer digits are dropped (toward the past), as the driver does.
func (d *CopyData) Timestamp(sec int64, nsec int32) {
	us := (sec-postgresEpoch)*1_000_000 + int64(nsec)/1000
	d.buf = binary.BigEndian.AppendUint32(d.buf, 8)
	d.buf = binary.BigEndian.AppendUint64(d.buf, uint64(us))
}

// CopyableType reports whether a PostgreSQL column whose information_schema.columns.data_type
// is dataType holds what CopyData writes for kind k: exactly the type the dialect creates for k.
func CopyableType(k ColumnKind, dataType string) bool {
	want := ""
	switch k {
	case KindString:
		want = "text"
	case KindInt:
		want = "bigint"
	case KindFloat:
		want = "double precision"
	case KindBool:
		want = "boolean"
	case KindTimestamp:
		want = "timestamp with time zone"
	}
	return want != "" && strings.EqualFold(strings.TrimSpace(dataType), want)
}

// ErrKeyExists is returned (wrapped) by CopyNew when a row's key is already in the table, stored
// before (a redelivered row) or by a concurrent transaction. The caller's transaction is then
// aborted: it must roll back and load the rows again with MergeInsert.
var ErrKeyExists = errors.New("a key of the rows is already in the table")

// CopyNew COPYs the rows of parts (in order) straight into schema.table (PostgreSQL), in the
// caller's transaction on conn: no staging table, no merge statement. cols names the fields of
// the rows in order, and their columns must be CopyableType. The table's unique key is what keeps each row once: a row
// whose key exists (a redelivery, or a key another transaction commits meanwhile, which the COPY
// waits for) makes the COPY fail with a unique violation, reported as ErrKeyExists, so no row is
// ever stored twice. It returns how many rows were written.
func CopyNew(ctx context.Context, conn *sql.Conn, schema, table string, cols []string, parts ...*CopyData) (int64, error) {
	readers := []io.Reader{strings.NewReader(copySignature)}
	for _, p := range parts {
		if p.rows > 0 {
			readers = append(readers, bytes.NewReader(p.buf))
		}
	}
	if len(readers) == 1 {
		return 0, nil
	}
	readers = append(readers, strings.NewReader(copyTrailer))
	d := PostgresDialect()
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = d.QuoteIdent(c)
	}
	stmt := fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT binary)", QualifiedName(d, schema, table), strings.Join(quoted, ", "))
	var n int64
	err := conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("no COPY for driver connection %T", dc)
		}
		tag, err := c.Conn().PgConn().CopyFrom(ctx, io.MultiReader(readers...), stmt)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" {
			return 0, fmt.Errorf("copy into %s.%s: %w: %w", schema, table, ErrKeyExists, err)
		}
		return 0, fmt.Errorf("copy into %s.%s: %w", schema, table, err)
	}
	return n, nil
}
