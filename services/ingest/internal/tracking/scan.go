package tracking

import (
	"bytes"
	"slices"
)

// A validating JSON scanner for the fast path. It never decodes: it checks
// the syntax, reports where values are, and says when the text must go
// through the full decode/re-encode path instead (ok == false) because
// keeping the client's text as is could differ from what the full path
// stores: an escape the full path rewrites (\u0000, a surrogate), a key
// with an escape, a key present twice in one object, very deep nesting —
// or simply invalid JSON, whose error message the full path words.

// kind is the JSON kind of a scanned value.
type kind uint8

const (
	kindNone kind = iota
	kindString
	kindNumber
	kindObject
	kindArray
	kindBool
	kindNull
)

// maxFastDepth bounds nesting on the fast path; deeper documents take the
// full path (encoding/json's own limit is 10,000).
const maxFastDepth = 200

// span is the byte range [s, e) of a value's text in the scanned buffer.
type span struct{ s, e int }

// member is one key/value pair of an object.
type member struct {
	key  span // the key's content, without quotes
	val  span // the value's text
	kind kind
	esc  bool // a string value holds escapes
}

// scanner holds scratch space reused across the events of a request.
type scanner struct {
	b     []byte
	keys  []span // keys of the objects being scanned (duplicate check)
	depth int
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *scanner) ws(i int) int {
	for i < len(s.b) && isWS(s.b[i]) {
		i++
	}
	return i
}

// str scans the string starting at b[i] == '"'; end is past the closing
// quote.
func (s *scanner) str(i int) (end int, esc, ok bool) {
	b := s.b
	i++
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, esc, true
		case c < 0x20:
			return 0, false, false
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return 0, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, false, false
				}
				v := 0
				for _, h := range b[i+2 : i+6] {
					d := unhex(h)
					if d < 0 {
						return 0, false, false
					}
					v = v<<4 | d
				}
				// NUL is removed and lone surrogates become U+FFFD on the
				// full path: leave those to it.
				if v == 0 || (v >= 0xD800 && v <= 0xDFFF) {
					return 0, false, false
				}
				i += 6
			default:
				return 0, false, false
			}
		default:
			i++
		}
	}
	return 0, false, false
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// number scans a JSON number.
func (s *scanner) number(i int) (int, bool) {
	b := s.b
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return 0, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return 0, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, true
}

// value scans the value starting at b[i] (no leading whitespace).
func (s *scanner) value(i int) (end int, k kind, esc, ok bool) {
	if i >= len(s.b) {
		return 0, kindNone, false, false
	}
	switch c := s.b[i]; {
	case c == '"':
		end, esc, ok = s.str(i)
		return end, kindString, esc, ok
	case c == '{':
		end, ok = s.object(i, nil)
		return end, kindObject, false, ok
	case c == '[':
		end, ok = s.array(i)
		return end, kindArray, false, ok
	case c == 't':
		return s.literal(i, "true", kindBool)
	case c == 'f':
		return s.literal(i, "false", kindBool)
	case c == 'n':
		return s.literal(i, "null", kindNull)
	case c == '-' || isDigit(c):
		end, ok = s.number(i)
		return end, kindNumber, false, ok
	}
	return 0, kindNone, false, false
}

func (s *scanner) literal(i int, lit string, k kind) (int, kind, bool, bool) {
	if bytes.HasPrefix(s.b[i:], []byte(lit)) {
		return i + len(lit), k, false, true
	}
	return 0, kindNone, false, false
}

// object scans the object starting at b[i] == '{'. When members is not
// nil, its members are appended to *members. Keys must be escape-free
// and distinct.
func (s *scanner) object(i int, members *[]member) (int, bool) {
	s.depth++
	defer func() { s.depth-- }()
	if s.depth > maxFastDepth {
		return 0, false
	}
	b := s.b
	base := len(s.keys)
	defer func() { s.keys = s.keys[:base] }()
	i = s.ws(i + 1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		kend, kesc, ok := s.str(i)
		if !ok || kesc {
			return 0, false
		}
		key := span{i + 1, kend - 1}
		s.keys = append(s.keys, key)
		i = s.ws(kend)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		i = s.ws(i + 1)
		vend, k, vesc, ok := s.value(i)
		if !ok {
			return 0, false
		}
		if members != nil {
			*members = append(*members, member{key: key, val: span{i, vend}, kind: k, esc: vesc})
		}
		i = s.ws(vend)
		if i >= len(b) {
			return 0, false
		}
		if b[i] == '}' {
			i++
			break
		}
		if b[i] != ',' {
			return 0, false
		}
		i = s.ws(i + 1)
	}
	if s.duplicates(s.keys[base:]) {
		return 0, false
	}
	return i, true
}

// duplicates reports whether two keys are the same text. Keys are
// escape-free, so equal text is equal keys.
func (s *scanner) duplicates(keys []span) bool {
	if len(keys) < 2 {
		return false
	}
	b := s.b
	if len(keys) <= 12 {
		for i := 1; i < len(keys); i++ {
			ki := b[keys[i].s:keys[i].e]
			for j := 0; j < i; j++ {
				if bytes.Equal(ki, b[keys[j].s:keys[j].e]) {
					return true
				}
			}
		}
		return false
	}
	slices.SortFunc(keys, func(x, y span) int { return bytes.Compare(b[x.s:x.e], b[y.s:y.e]) })
	for i := 1; i < len(keys); i++ {
		if bytes.Equal(b[keys[i].s:keys[i].e], b[keys[i-1].s:keys[i-1].e]) {
			return true
		}
	}
	return false
}

// array scans the array starting at b[i] == '['.
func (s *scanner) array(i int) (int, bool) {
	s.depth++
	defer func() { s.depth-- }()
	if s.depth > maxFastDepth {
		return 0, false
	}
	b := s.b
	i = s.ws(i + 1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		vend, _, _, ok := s.value(i)
		if !ok {
			return 0, false
		}
		i = s.ws(vend)
		if i >= len(b) {
			return 0, false
		}
		if b[i] == ']' {
			return i + 1, true
		}
		if b[i] != ',' {
			return 0, false
		}
		i = s.ws(i + 1)
	}
}

// topObject scans b as one JSON object with nothing but whitespace around
// it and returns its members.
func (s *scanner) topObject(b []byte, members []member) ([]member, bool) {
	s.b, s.depth, s.keys = b, 0, s.keys[:0]
	i := s.ws(0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	end, ok := s.object(i, &members)
	if !ok || s.ws(end) != len(b) {
		return nil, false
	}
	return members, true
}

// item is one element of a batch array: its text and, for an object, the
// range [m0, m1) of its members in the members slice.
type item struct {
	val    span
	kind   kind
	m0, m1 int
}

// batchBody scans b as a batch request: one JSON object with nothing but
// whitespace around it. It returns the object's members; when the batch
// member is an array, its elements are listed in *items and the members of
// those that are objects are appended to *members (one pass over the body).
func (s *scanner) batchBody(b []byte, top []member, items *[]item, members *[]member) ([]member, bool) {
	s.b, s.depth, s.keys = b, 1, s.keys[:0]
	i := s.ws(0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	i = s.ws(i + 1)
	if i < len(b) && b[i] == '}' {
		return top, s.ws(i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, false
		}
		kend, kesc, ok := s.str(i)
		if !ok || kesc {
			return nil, false
		}
		key := span{i + 1, kend - 1}
		s.keys = append(s.keys, key)
		i = s.ws(kend)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		i = s.ws(i + 1)
		var (
			vend int
			k    kind
			vesc bool
		)
		if string(b[key.s:key.e]) == "batch" && i < len(b) && b[i] == '[' {
			vend, ok = s.batchArray(i, items, members)
			k = kindArray
		} else {
			vend, k, vesc, ok = s.value(i)
		}
		if !ok {
			return nil, false
		}
		top = append(top, member{key: key, val: span{i, vend}, kind: k, esc: vesc})
		i = s.ws(vend)
		if i >= len(b) {
			return nil, false
		}
		if b[i] == '}' {
			i++
			break
		}
		if b[i] != ',' {
			return nil, false
		}
		i = s.ws(i + 1)
	}
	if s.duplicates(s.keys) || s.ws(i) != len(b) {
		return nil, false
	}
	return top, true
}

// batchArray scans the batch array at b[i] == '['.
func (s *scanner) batchArray(i int, items *[]item, members *[]member) (int, bool) {
	b := s.b
	i = s.ws(i + 1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		var (
			vend int
			k    kind
			ok   bool
		)
		m0 := len(*members)
		if i < len(b) && b[i] == '{' {
			vend, ok = s.object(i, members)
			k = kindObject
		} else {
			vend, k, _, ok = s.value(i)
		}
		if !ok {
			return 0, false
		}
		*items = append(*items, item{val: span{i, vend}, kind: k, m0: m0, m1: len(*members)})
		i = s.ws(vend)
		if i >= len(b) {
			return 0, false
		}
		if b[i] == ']' {
			return i + 1, true
		}
		if b[i] != ',' {
			return 0, false
		}
		i = s.ws(i + 1)
	}
}
