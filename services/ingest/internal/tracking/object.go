package tracking

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The full path's view of an event: decoded JSON whose objects keep their
// members in the order the client sent them. A map would sort the keys when
// the event is written back, and order carries meaning downstream: the
// warehouse lets the last of several keys that name one column ("Total",
// "total") win in document order (case wh-08), so an event must be stored
// in the order it was sent whichever path parsed it.

// object is a JSON object with its members in document order. Its keys are
// distinct: a key the text holds twice keeps its last value, at the place
// of its last occurrence (what a reader that lets the last key win sees in
// the text as sent).
type object struct {
	fields []field
}

// field is one member of an object. val is nil, bool, string, json.Number,
// []any or *object.
type field struct {
	key string
	val any
}

// index is the position of key k, -1 when absent.
func (o *object) index(k string) int {
	for i := range o.fields {
		if o.fields[i].key == k {
			return i
		}
	}
	return -1
}

func (o *object) get(k string) (any, bool) {
	if i := o.index(k); i >= 0 {
		return o.fields[i].val, true
	}
	return nil, false
}

// set replaces k's value where k is, or adds k at the end.
func (o *object) set(k string, v any) {
	if i := o.index(k); i >= 0 {
		o.fields[i].val = v
		return
	}
	o.fields = append(o.fields, field{k, v})
}

// setLast puts k, with value v, at the end (moving it when present).
func (o *object) setLast(k string, v any) {
	o.del(k)
	o.fields = append(o.fields, field{k, v})
}

func (o *object) del(k string) {
	if i := o.index(k); i >= 0 {
		o.fields = slices.Delete(o.fields, i, i+1)
	}
}

// dedupe keeps the last occurrence of each key, in place.
func (o *object) dedupe() {
	n := len(o.fields)
	if n < 2 {
		return
	}
	if n <= 16 {
		dup := false
		for i := 1; i < n && !dup; i++ {
			for j := 0; j < i; j++ {
				if o.fields[i].key == o.fields[j].key {
					dup = true
					break
				}
			}
		}
		if !dup {
			return
		}
	}
	last := make(map[string]int, n)
	for i, f := range o.fields {
		last[f.key] = i
	}
	if len(last) == n {
		return
	}
	out := o.fields[:0]
	for i, f := range o.fields {
		if last[f.key] == i {
			out = append(out, f)
		}
	}
	clear(o.fields[len(out):])
	o.fields = out
}

// keys returns a lookup of o's keys for the objects large enough that a
// scan per lookup would cost more than the map; nil for the others (use
// index).
func (o *object) keys() map[string]bool {
	if len(o.fields) <= 16 {
		return nil
	}
	m := make(map[string]bool, len(o.fields))
	for _, f := range o.fields {
		m[f.key] = true
	}
	return m
}

func (o *object) has(set map[string]bool, k string) bool {
	if set != nil {
		return set[k]
	}
	return o.index(k) >= 0
}

// MarshalJSON writes o with its members in order (shownJSON renders
// objects in messages with encoding/json).
func (o *object) MarshalJSON() ([]byte, error) { return appendJSON(nil, o), nil }

// decodeObject decodes a JSON object, members in document order, numbers
// as json.Number. It accepts what encoding/json accepts and gives the same
// values (escapes, lone surrogates and invalid UTF-8 as U+FFFD); NULs are
// kept (stripNUL). Its errors speak JSON's terms, never Go's.
func decodeObject(b []byte) (*object, error) {
	if !json.Valid(b) {
		return nil, decodeError(b)
	}
	d := decoder{s: string(b)}
	i := d.ws(0)
	if d.s[i] != '{' {
		return nil, &RequestError{Code: "invalid_json", Message: "body must be a JSON object, not " + rawKind(b)}
	}
	v, _ := d.value(i)
	return v.(*object), nil
}

// decodeValue decodes valid JSON text b (a RawMessage of a decoded body)
// as decodeObject does; nil for text that is not valid JSON.
func decodeValue(b []byte) any {
	if !json.Valid(b) {
		return nil
	}
	d := decoder{s: string(b)}
	v, _ := d.value(d.ws(0))
	return v
}

// decoder decodes JSON text that json.Valid accepted. Unescaped strings
// share the memory of s (one copy of the text per decode).
type decoder struct{ s string }

func (d *decoder) ws(i int) int {
	for i < len(d.s) && isWS(d.s[i]) {
		i++
	}
	return i
}

// value decodes the value at s[i] and returns it and the offset after it.
func (d *decoder) value(i int) (any, int) {
	switch d.s[i] {
	case '{':
		return d.object(i)
	case '[':
		var a []any
		i = d.ws(i + 1)
		if d.s[i] == ']' {
			return []any{}, i + 1
		}
		for {
			var v any
			v, i = d.value(i)
			a = append(a, v)
			i = d.ws(i)
			if d.s[i] == ']' {
				return a, i + 1
			}
			i = d.ws(i + 1) // ','
		}
	case '"':
		return d.str(i)
	case 't':
		return true, i + len("true")
	case 'f':
		return false, i + len("false")
	case 'n':
		return nil, i + len("null")
	}
	e := i
	for e < len(d.s) && (isDigit(d.s[e]) || d.s[e] == '-' || d.s[e] == '+' || d.s[e] == '.' || d.s[e] == 'e' || d.s[e] == 'E') {
		e++
	}
	return json.Number(d.s[i:e]), e
}

func (d *decoder) object(i int) (*object, int) {
	o := &object{}
	i = d.ws(i + 1)
	if d.s[i] == '}' {
		return o, i + 1
	}
	for {
		var k string
		k, i = d.str(i)
		i = d.ws(d.ws(i) + 1) // ':'
		var v any
		v, i = d.value(i)
		o.fields = append(o.fields, field{k, v})
		i = d.ws(i)
		if d.s[i] == '}' {
			o.dedupe()
			return o, i + 1
		}
		i = d.ws(i + 1) // ','
	}
}

// str decodes the string at s[i] == '"'.
func (d *decoder) str(i int) (string, int) {
	j := i + 1
	plain, ascii := true, true
	for {
		c := d.s[j]
		if c == '"' {
			break
		}
		if c == '\\' {
			plain = false
			j += 2
			continue
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
		j++
	}
	s := d.s[i+1 : j]
	if plain && (ascii || utf8.ValidString(s)) {
		return s, j + 1
	}
	return unquote(s), j + 1
}

// unquote decodes the content of a JSON string as encoding/json does:
// escapes, surrogate pairs, and U+FFFD for a lone surrogate escape or a
// byte that is not UTF-8.
func unquote(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch e := s[i+1]; e {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(s[i+2 : i+6])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if dec := utf16.DecodeRune(r, hex4(s[i+2:i+6])); dec != unicode.ReplacementChar {
							b = utf8.AppendRune(b, dec)
							i += 6
							continue
						}
					}
					r = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, r)
				continue
			default: // '"', '\\', '/'
				b = append(b, e)
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			b = utf8.AppendRune(b, r) // RuneError for a byte that is not UTF-8
			i += size
		}
	}
	return string(b)
}

// hex4 reads the four hex digits of a \u escape (valid: json.Valid checked).
func hex4(h string) rune {
	var r rune
	for i := 0; i < 4; i++ {
		r = r<<4 | rune(unhex(h[i]))
	}
	return r
}

// hasNULEscape reports whether JSON text b may hold U+0000: the only way a
// valid JSON text can is the escape \u0000 (a false positive such as
// `\\u0000` only costs a walk of the decoded value).
func hasNULEscape(b []byte) bool { return bytes.Contains(b, []byte(`\u0000`)) }

// stripNUL removes U+0000 from every string and key of v, in place, and
// returns v. An object two of whose keys become the same keeps the last in
// document order, at its place (object).
func stripNUL(v any) any {
	switch t := v.(type) {
	case string:
		if strings.IndexByte(t, 0) >= 0 {
			return strings.ReplaceAll(t, "\x00", "")
		}
	case *object:
		renamed := false
		for i := range t.fields {
			f := &t.fields[i]
			f.val = stripNUL(f.val)
			if strings.IndexByte(f.key, 0) >= 0 {
				f.key = strings.ReplaceAll(f.key, "\x00", "")
				renamed = true
			}
		}
		if renamed {
			t.dedupe()
		}
	case []any:
		for i, x := range t {
			t[i] = stripNUL(x)
		}
	}
	return v
}

// appendJSON writes v compactly, objects in their members' order, strings
// as encoding/json writes them without HTML escaping except that U+2028
// and U+2029 are written as themselves (as the fast path keeps them).
func appendJSON(out []byte, v any) []byte {
	switch t := v.(type) {
	case nil:
		return append(out, "null"...)
	case bool:
		return strconv.AppendBool(out, t)
	case string:
		return appendString(out, t)
	case json.Number:
		if t == "" {
			return append(out, '0') // as encoding/json writes it
		}
		return append(out, t...)
	case []any:
		out = append(out, '[')
		for i, x := range t {
			if i > 0 {
				out = append(out, ',')
			}
			out = appendJSON(out, x)
		}
		return append(out, ']')
	case *object:
		out = append(out, '{')
		for i, f := range t.fields {
			if i > 0 {
				out = append(out, ',')
			}
			out = appendString(out, f.key)
			out = append(out, ':')
			out = appendJSON(out, f.val)
		}
		return append(out, '}')
	}
	// Not produced by the decoder; written as encoding/json would.
	b, err := marshal(v)
	if err != nil {
		return append(out, "null"...)
	}
	return append(out, b...)
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string (stringSize is its length).
func appendString(out []byte, s string) []byte {
	out = append(out, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			out = append(out, s[start:i]...)
			switch c {
			case '"', '\\':
				out = append(out, '\\', c)
			case '\b':
				out = append(out, '\\', 'b')
			case '\f':
				out = append(out, '\\', 'f')
			case '\n':
				out = append(out, '\\', 'n')
			case '\r':
				out = append(out, '\\', 'r')
			case '\t':
				out = append(out, '\\', 't')
			default:
				out = append(out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			out = append(out, s[start:i]...)
			out = append(out, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	out = append(out, s[start:]...)
	return append(out, '"')
}
