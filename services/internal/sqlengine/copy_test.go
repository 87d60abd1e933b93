package sqlengine

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestCopyDataMatchesDriverEncoding checks every field CopyData writes against the driver's own
// binary encoding of the same value for the column type the dialect creates.
func TestCopyDataMatchesDriverEncoding(t *testing.T) {
	t.Parallel()
	m := pgtype.NewMap()
	ts := []time.Time{
		time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
	}
	type field struct {
		oid   uint32
		value any
		write func(d *CopyData)
	}
	var fields []field
	for _, s := range []string{"", "plain", "é中😀", "tab\tnew\nline\\"} {
		fields = append(fields, field{pgtype.TextOID, s, func(d *CopyData) { d.Text(s) }})
	}
	for _, i := range []int64{0, -1, 42, math.MaxInt64, math.MinInt64} {
		fields = append(fields, field{pgtype.Int8OID, i, func(d *CopyData) { d.Int(i) }})
	}
	for _, f := range []float64{0, -0.5, 4.99, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		fields = append(fields, field{pgtype.Float8OID, f, func(d *CopyData) { d.Float(f) }})
	}
	for _, b := range []bool{true, false} {
		fields = append(fields, field{pgtype.BoolOID, b, func(d *CopyData) { d.Bool(b) }})
	}
	for _, tm := range ts {
		fields = append(fields, field{pgtype.TimestamptzOID, tm, func(d *CopyData) { d.Timestamp(tm.Unix(), int32(tm.Nanosecond())) }})
	}
	for _, f := range fields {
		var d CopyData
		f.write(&d)
		want, err := m.Encode(f.oid, pgtype.BinaryFormatCode, f.value, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := d.buf
		if n := int32(binary.BigEndian.Uint32(got)); int(n) != len(want) || !bytes.Equal(got[4:], want) {
			t.Errorf("%T %v: CopyData wrote % x, the driver encodes % x", f.value, f.value, got, want)
		}
	}
	var d CopyData
	d.StartRow(2)
	d.Null()
	d.Int(1)
	if want := []byte{0, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1}; !bytes.Equal(d.buf, want) || d.Rows() != 1 {
		t.Errorf("row = % x (%d rows), want % x", d.buf, d.Rows(), want)
	}
	d.Reset()
	if d.Len() != 0 || d.Rows() != 0 {
		t.Error("Reset kept data")
	}
}

func TestCopyableType(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		k    ColumnKind
		typ  string
		want bool
	}{
		{KindString, "text", true},
		{KindString, "character varying", false},
		{KindInt, "bigint", true},
		{KindInt, "integer", false},
		{KindFloat, "double precision", true},
		{KindFloat, "numeric", false},
		{KindBool, "boolean", true},
		{KindTimestamp, "timestamp with time zone", true},
		{KindTimestamp, "timestamp without time zone", false},
	} {
		if got := CopyableType(tt.k, tt.typ); got != tt.want {
			t.Errorf("CopyableType(%v, %q) = %v, want %v", tt.k, tt.typ, got, tt.want)
		}
	}
}
