package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Object is a decoded JSON object that keeps its members in document order, which decides which
// of several keys mapping to the same column wins. An empty object is nil.
type Object []Member

// Member is one key and value of an Object.
type Member struct {
	Key   string
	Value Node
}

// NodeKind is the type of a JSON value.
type NodeKind uint8

// The JSON value types. A boolean is NodeFalse or NodeTrue, so a Node needs no field for it.
const (
	NodeNull NodeKind = iota
	NodeFalse
	NodeTrue
	NodeNumber
	NodeString
	NodeObject
	NodeArray
)

// Node is one decoded JSON value. Scalars are held inline (no allocation per value); strings and
// number literals share the memory of the parsed input.
type Node struct {
	Kind NodeKind
	// Text is the decoded string of a NodeString, or the literal of a NodeNumber as written.
	Text string
	// Members holds the members of a NodeObject, or the elements of a NodeArray (with empty
	// keys); nil when empty. One field for both keeps a Member at 64 bytes.
	Members Object
}

// Get returns the value of key. When the key occurs more than once, the last occurrence wins, as
// with encoding/json.
func (o Object) Get(key string) (Node, bool) {
	for i := len(o) - 1; i >= 0; i-- {
		if o[i].Key == key {
			return o[i].Value, true
		}
	}
	return Node{}, false
}

// ParseObject decodes one JSON object, keeping member order and numbers as written. It accepts
// exactly what encoding/json accepts and decodes to the same values (invalid UTF-8 and lone
// surrogates become U+FFFD, no nesting limit), but is a single pass over the
// bytes: all unescaped strings of the event share one copy of the input.
func ParseObject(raw []byte) (Object, error) {
	var p parser
	return p.parse(raw)
}

// parse decodes raw as ParseObject does, keeping p's stack for the next call. The objects it
// returns are carved from p.slab: the caller must be done with them before the next parse (which
// reuses the slab) unless it resets p.slab itself.
func (p *parser) parse(raw []byte) (Object, error) {
	p.s, p.i = string(raw), 0
	clear(p.slab)
	p.slab = p.slab[:0]
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
	return v.Members, nil
}

// errEnd reports input that ends inside a value, as encoding/json does.
var errEnd = io.ErrUnexpectedEOF

// parser decodes JSON from s. members is a stack of the members (and elements) of the objects
// and arrays being decoded; each finished one is copied once into a slice of its exact size
// carved from slab, so a parse allocates nothing per value, and once slab is large enough,
// nothing per object either.
type parser struct {
	s       string
	i       int
	members []Member
	slab    []Member
}

// finish moves the members from mark to the top of the stack into the slab and returns them.
func (p *parser) finish(mark int) []Member {
	n := len(p.members) - mark
	if n > cap(p.slab)-len(p.slab) {
		// Earlier objects stay in the old slab; the new one serves the rest of this parse and
		// the following ones.
		p.slab = make([]Member, 0, max(2*cap(p.slab), n, len(p.s)/16))
	}
	start := len(p.slab)
	p.slab = p.slab[:start+n]
	out := p.slab[start : start+n : start+n]
	copy(out, p.members[mark:])
	clear(p.members[mark:])
	p.members = p.members[:mark]
	return out
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

func (p *parser) value() (Node, error) {
	p.skipWS()
	if p.i >= len(p.s) {
		return Node{}, errEnd
	}
	switch c := p.s[p.i]; {
	case c == '{':
		o, err := p.object()
		return Node{Kind: NodeObject, Members: o}, err
	case c == '[':
		a, err := p.array()
		return Node{Kind: NodeArray, Members: a}, err
	case c == '"':
		s, err := p.str()
		return Node{Kind: NodeString, Text: s}, err
	case c == '-' || (c >= '0' && c <= '9'):
		n, err := p.number()
		return Node{Kind: NodeNumber, Text: n}, err
	case c == 't':
		return Node{Kind: NodeTrue}, p.literal("true")
	case c == 'f':
		return Node{Kind: NodeFalse}, p.literal("false")
	case c == 'n':
		return Node{Kind: NodeNull}, p.literal("null")
	}
	return Node{}, p.syntax("looking for beginning of value")
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

func (p *parser) object() (Object, error) {
	p.i++ // '{'
	mark := len(p.members)
	p.skipWS()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return nil, nil
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
			return p.finish(mark), nil
		}
		return nil, p.syntax("after object key:value pair")
	}
}

func (p *parser) array() ([]Member, error) {
	p.i++ // '['
	mark := len(p.members)
	p.skipWS()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return nil, nil
	}
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		p.members = append(p.members, Member{Value: v})
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
			return p.finish(mark), nil
		}
		return nil, p.syntax("after array element")
	}
}

// number scans a JSON number (grammar checked as encoding/json does) and returns its text.
func (p *parser) number() (string, error) {
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
		return "", errEnd
	}
	switch c := p.s[p.i]; {
	case c == '0':
		p.i++
	case c >= '1' && c <= '9':
		digits()
	default:
		return "", p.syntax("in numeric literal")
	}
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return "", p.syntax("after decimal point in numeric literal")
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return "", p.syntax("in exponent of numeric literal")
		}
	}
	return p.s[start:p.i], nil
}

// str decodes a string at p.s[p.i] == '"'. A string without escapes and with valid UTF-8 is a
// slice of the input; anything else is rebuilt with encoding/json's rules.
func (p *parser) str() (string, error) {
	p.i++ // opening quote
	start := p.i
	plain := true
	for p.i < len(p.s) {
		// Skip the bytes that need no attention; a local index stays in a register.
		i, s := p.i, p.s
		for i < len(s) && plainByte[s[i]] {
			i++
		}
		p.i = i
		if p.i >= len(p.s) {
			break
		}
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

// plainByte holds the bytes a string can contain as they are: printable ASCII other than '"' and
// '\\'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

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

// jsonText renders an array or object as compact JSON, members in document order and without
// HTML escaping, for arrays stored as text columns.
func jsonText(n Node) string {
	var b bytes.Buffer
	writeJSON(&b, n)
	return b.String()
}

func writeJSON(b *bytes.Buffer, n Node) {
	switch n.Kind {
	case NodeObject:
		b.WriteByte('{')
		for i, m := range n.Members {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, m.Key)
			b.WriteByte(':')
			writeJSON(b, m.Value)
		}
		b.WriteByte('}')
	case NodeArray:
		b.WriteByte('[')
		for i, e := range n.Members {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, e.Value)
		}
		b.WriteByte(']')
	case NodeString:
		writeString(b, n.Text)
	case NodeNumber:
		b.WriteString(n.Text) // the literal as written, as encoding/json writes a json.Number
	case NodeTrue:
		b.WriteString("true")
	case NodeFalse:
		b.WriteString("false")
	default:
		b.WriteString("null")
	}
}

// writeString writes s as a JSON string the way encoding/json does without HTML escaping.
func writeString(b *bytes.Buffer, s string) {
	if plainASCII(s) {
		b.WriteByte('"')
		b.WriteString(s)
		b.WriteByte('"')
		return
	}
	writeEncoded(b, s)
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
