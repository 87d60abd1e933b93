package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Object is a decoded JSON object that keeps its members in document order, which decides which
// of several keys mapping to the same column wins. Values are nil, bool, json.Number, string,
// []any or Object.
type Object []Member

// Member is one key and value of an Object.
type Member struct {
	Key   string
	Value any
}

// Get returns the value of key. When the key occurs more than once, the last occurrence wins, as
// with encoding/json.
func (o Object) Get(key string) (any, bool) {
	for i := len(o) - 1; i >= 0; i-- {
		if o[i].Key == key {
			return o[i].Value, true
		}
	}
	return nil, false
}

// ParseObject decodes one JSON object, keeping member order and numbers as json.Number. It accepts
// exactly what encoding/json accepts and decodes to the same values (invalid UTF-8 and lone
// surrogates become U+FFFD, no nesting limit), but is a single pass over the
// bytes: all unescaped strings of the event share one copy of the input.
func ParseObject(raw []byte) (Object, error) {
	p := parser{s: string(raw)}
	p.skipWS()
	if p.i < len(p.s) && p.s[p.i] != '{' {
		// Decoded for the error message only: a valid value that is not an object says so.
		if _, err := p.value(); err != nil {
			return nil, fmt.Errorf("decode event: %w", err)
		}
		return nil, errors.New("decode event: not a JSON object")
	}
	v, err := p.value()
	if err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	p.skipWS()
	if p.i != len(p.s) {
		return nil, errors.New("decode event: trailing data after the object")
	}
	return v.(Object), nil
}

// errEnd reports input that ends inside a value, as encoding/json does.
var errEnd = io.ErrUnexpectedEOF

// parser decodes JSON from s. members is a stack of the members of the objects being decoded, so
// each finished object is copied once into a slice of its exact size.
type parser struct {
	s       string
	i       int
	members []Member
}

func (p *parser) skipWS() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) syntax(what string) error {
	if p.i >= len(p.s) {
		return errEnd
	}
	return fmt.Errorf("invalid character %q %s at offset %d", p.s[p.i], what, p.i)
}

func (p *parser) value() (any, error) {
	p.skipWS()
	if p.i >= len(p.s) {
		return nil, errEnd
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	}
	return nil, p.syntax("looking for beginning of value")
}

func (p *parser) literal(word string) error {
	for k := 0; k < len(word); k++ {
		if p.i >= len(p.s) {
			return errEnd
		}
		if p.s[p.i] != word[k] {
			return p.syntax("in literal " + word)
		}
		p.i++
	}
	return nil
}

func (p *parser) object() (any, error) {
	p.i++ // '{'
	mark := len(p.members)
	p.skipWS()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return Object{}, nil
	}
	for {
		p.skipWS()
		if p.i >= len(p.s) {
			return nil, errEnd
		}
		if p.s[p.i] != '"' {
			return nil, p.syntax("looking for beginning of object key string")
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		p.skipWS()
		if p.i >= len(p.s) {
			return nil, errEnd
		}
		if p.s[p.i] != ':' {
			return nil, p.syntax("after object key")
		}
		p.i++
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		p.members = append(p.members, Member{Key: key, Value: v})
		p.skipWS()
		if p.i >= len(p.s) {
			return nil, errEnd
		}
		switch p.s[p.i] {
		case ',':
			p.i++
			continue
		case '}':
			p.i++
			o := make(Object, len(p.members)-mark)
			copy(o, p.members[mark:])
			clear(p.members[mark:])
			p.members = p.members[:mark]
			return o, nil
		}
		return nil, p.syntax("after object key:value pair")
	}
}

func (p *parser) array() (any, error) {
	p.i++ // '['
	a := []any{}
	p.skipWS()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return a, nil
	}
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		p.skipWS()
		if p.i >= len(p.s) {
			return nil, errEnd
		}
		switch p.s[p.i] {
		case ',':
			p.i++
			continue
		case ']':
			p.i++
			return a, nil
		}
		return nil, p.syntax("after array element")
	}
}

// number scans a JSON number (grammar checked as encoding/json does) and returns its text.
func (p *parser) number() (any, error) {
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.s[p.i] == '-' {
		p.i++
	}
	if p.i >= len(p.s) {
		return nil, errEnd
	}
	switch c := p.s[p.i]; {
	case c == '0':
		p.i++
	case c >= '1' && c <= '9':
		digits()
	default:
		return nil, p.syntax("in numeric literal")
	}
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, p.syntax("after decimal point in numeric literal")
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, p.syntax("in exponent of numeric literal")
		}
	}
	return json.Number(p.s[start:p.i]), nil
}

// str decodes a string at p.s[p.i] == '"'. A string without escapes and with valid UTF-8 is a
// slice of the input; anything else is rebuilt with encoding/json's rules.
func (p *parser) str() (string, error) {
	p.i++ // opening quote
	start := p.i
	plain := true
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			s := p.s[start:p.i]
			p.i++
			if plain {
				return s, nil
			}
			return unquote(s), nil
		case c == '\\':
			plain = false
			p.i++
			if p.i >= len(p.s) {
				return "", errEnd
			}
			switch p.s[p.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i++
			case 'u':
				p.i++
				for k := 0; k < 4; k++ {
					if p.i >= len(p.s) {
						return "", errEnd
					}
					if !isHex(p.s[p.i]) {
						return "", p.syntax("in \\u hexadecimal character escape")
					}
					p.i++
				}
			default:
				return "", p.syntax("in string escape code")
			}
		case c < 0x20:
			return "", p.syntax("in string literal")
		case c < utf8.RuneSelf:
			p.i++
		default:
			r, size := utf8.DecodeRuneInString(p.s[p.i:])
			if r == utf8.RuneError && size == 1 {
				plain = false
			}
			p.i += size
		}
	}
	return "", errEnd
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// unquote decodes the body of a string the scanner accepted, as encoding/json's unquote does:
// escapes resolved, surrogate pairs joined, lone surrogates and invalid UTF-8 become U+FFFD.
func unquote(s string) string {
	b := make([]byte, 0, len(s)+utf8.UTFMax)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			i++
			switch s[i] {
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
				r := hex4(s[i+1 : i+5])
				i += 4
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if i+7 <= len(s) && s[i+1] == '\\' && s[i+2] == 'u' && isHex4(s[i+3:i+7]) {
						r2 = hex4(s[i+3 : i+7])
					}
					if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
						i += 6
						r = dec
					} else {
						r = unicode.ReplacementChar
					}
				}
				b = utf8.AppendRune(b, r)
			default: // '"', '\\', '/'
				b = append(b, s[i])
			}
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			i += size
			b = utf8.AppendRune(b, r)
		}
	}
	return string(b)
}

func isHex4(s string) bool {
	return isHex(s[0]) && isHex(s[1]) && isHex(s[2]) && isHex(s[3])
}

// hex4 decodes four hex digits.
func hex4(s string) rune {
	var r rune
	for k := 0; k < 4; k++ {
		c := s[k]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r*16 + rune(c)
	}
	return r
}

// FromMap converts a map decoded by encoding/json into an Object. A map has no order, so members
// are sorted by key: for maps, the lexicographically last key wins a column collision.
func FromMap(m map[string]any) Object {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	o := make(Object, 0, len(keys))
	for _, k := range keys {
		o = append(o, Member{Key: k, Value: fromAny(m[k])})
	}
	return o
}

func fromAny(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return FromMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = fromAny(e)
		}
		return out
	default:
		return x
	}
}

// jsonText renders v as compact JSON, members in document order and without HTML escaping, for
// arrays stored as text columns.
func jsonText(v any) string {
	var b bytes.Buffer
	writeJSON(&b, v)
	return b.String()
}

func writeJSON(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case Object:
		b.WriteByte('{')
		for i, m := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, m.Key)
			b.WriteByte(':')
			writeJSON(b, m.Value)
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, e)
		}
		b.WriteByte(']')
	case string:
		if plainASCII(x) {
			b.WriteByte('"')
			b.WriteString(x)
			b.WriteByte('"')
			return
		}
		writeEncoded(b, x)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case nil:
		b.WriteString("null")
	default:
		writeEncoded(b, x)
	}
}

// plainASCII reports whether s holds only printable ASCII that JSON does not escape, so it can be
// quoted as it is.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// writeEncoded writes x as encoding/json encodes it without HTML escaping.
func writeEncoded(b *bytes.Buffer, x any) {
	var e bytes.Buffer
	enc := json.NewEncoder(&e)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		b.WriteString("null")
		return
	}
	b.Write(bytes.TrimRight(e.Bytes(), "\n"))
}
