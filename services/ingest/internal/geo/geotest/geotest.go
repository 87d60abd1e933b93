// Package geotest writes tiny MaxMind-format (.mmdb) IPv4 databases for
// tests: a binary search tree over the given prefixes whose records are
// {"country":{"iso_code":CC}}, per the MaxMind DB format specification 2.0.
package geotest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
)

type node struct {
	child [2]*node
	data  int // offset into the data section + 1; 0 = none
}

// Write writes a database mapping each IPv4 prefix to an ISO country code.
func Write(path string, countries map[string]string) error {
	var data bytes.Buffer
	root := &node{}
	for cidr, cc := range countries {
		p, err := netip.ParsePrefix(cidr)
		if err != nil || !p.Addr().Is4() {
			return fmt.Errorf("geotest: %q is not an IPv4 prefix", cidr)
		}
		off := data.Len()
		writeMap(&data, map[string]any{"country": map[string]any{"iso_code": cc}})
		a := p.Addr().As4()
		n := root
		for i := range p.Bits() {
			bit := (a[i/8] >> (7 - i%8)) & 1
			if n.child[bit] == nil {
				n.child[bit] = &node{}
			}
			n = n.child[bit]
		}
		n.data = off + 1
	}
	// Number the inner nodes breadth-first; leaves become data records.
	var order []*node
	index := map[*node]int{}
	queue := []*node{root}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if n.data != 0 {
			continue
		}
		index[n] = len(order)
		order = append(order, n)
		for _, c := range n.child {
			if c != nil {
				queue = append(queue, c)
			}
		}
	}
	count := uint32(len(order))
	var out bytes.Buffer
	for _, n := range order {
		for _, c := range n.child {
			v := count // no data
			switch {
			case c == nil:
			case c.data != 0:
				v = count + 16 + uint32(c.data-1)
			default:
				v = uint32(index[c])
			}
			out.Write([]byte{byte(v >> 16), byte(v >> 8), byte(v)})
		}
	}
	out.Write(make([]byte, 16))
	out.Write(data.Bytes())
	out.WriteString("\xab\xcd\xefMaxMind.com")
	writeMap(&out, map[string]any{
		"node_count":                  uint32v(count),
		"record_size":                 uint16v(24),
		"ip_version":                  uint16v(4),
		"database_type":               "Switchyard-Test-Country",
		"languages":                   []any{"en"},
		"binary_format_major_version": uint16v(2),
		"binary_format_minor_version": uint16v(0),
		"build_epoch":                 uint64v(1700000000),
		"description":                 map[string]any{"en": "test database"},
	})
	return os.WriteFile(path, out.Bytes(), 0o644)
}

type (
	uint16v uint16
	uint32v uint32
	uint64v uint64
)

func control(b *bytes.Buffer, typ, size int) {
	if typ <= 7 {
		b.WriteByte(byte(typ<<5 | size))
		return
	}
	b.WriteByte(byte(size))
	b.WriteByte(byte(typ - 7))
}

func writeUint(b *bytes.Buffer, typ int, v uint64) {
	var be [8]byte
	binary.BigEndian.PutUint64(be[:], v)
	trimmed := bytes.TrimLeft(be[:], "\x00")
	control(b, typ, len(trimmed))
	b.Write(trimmed)
}

func writeMap(b *bytes.Buffer, m map[string]any) {
	control(b, 7, len(m))
	for k, v := range m {
		writeValue(b, k)
		writeValue(b, v)
	}
}

func writeValue(b *bytes.Buffer, v any) {
	switch t := v.(type) {
	case string:
		control(b, 2, len(t))
		b.WriteString(t)
	case uint16v:
		writeUint(b, 5, uint64(t))
	case uint32v:
		writeUint(b, 6, uint64(t))
	case uint64v:
		writeUint(b, 9, uint64(t))
	case []any:
		control(b, 11, len(t))
		for _, x := range t {
			writeValue(b, x)
		}
	case map[string]any:
		writeMap(b, t)
	default:
		panic(fmt.Sprintf("geotest: unsupported value %T", v))
	}
}
