// Package fql parses and evaluates Segment's Filter Query Language, the
// condition language of destination filters and subscription triggers
// (segment-docs: src/api/public-api/fql.md).
//
// Grammar: expressions combine comparisons with `and`, `or`, `!` and
// parentheses; comparisons are `=`, `!=`, `>`, `>=`, `<`, `<=` and `in`;
// operands are dot-separated paths into the event (characters outside
// [a-zA-Z0-9_-] escaped with `\`), single-quoted strings, numbers, `true`,
// `false`, `null`, lists `[…]` and function calls. `all` matches every
// event. `=` is strict: values of different types are never equal.
package fql

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Expr is a compiled FQL expression, safe for concurrent use.
type Expr struct {
	src  string
	root node
}

// String returns the source text.
func (e *Expr) String() string { return e.src }

// SyntaxError is an invalid expression.
type SyntaxError struct {
	// Pos is the byte offset of the problem.
	Pos int
	// Msg says what is wrong.
	Msg string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("fql: at %d: %s", e.Pos, e.Msg) }

// Compile parses src.
func Compile(src string) (*Expr, error) {
	if strings.TrimSpace(src) == "all" {
		return &Expr{src: src, root: lit{true}}, nil
	}
	p := &parser{src: src}
	p.next()
	n, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, &SyntaxError{Pos: p.tok.pos, Msg: fmt.Sprintf("unexpected %q", p.tok.text)}
	}
	return &Expr{src: src, root: n}, nil
}

// Match reports whether event satisfies the expression. Only the boolean
// true matches; any other result (null, a string, …) does not.
func (e *Expr) Match(event map[string]any) bool {
	v := e.root.eval(event)
	b, ok := v.(bool)
	return ok && b
}

// Eval returns the expression's value on event (for tests and mappings).
func (e *Expr) Eval(event map[string]any) any { return e.root.eval(event) }

// Lookup returns the value at a dot-separated path (no escapes) in event,
// or nil.
func Lookup(event map[string]any, path string) any {
	return lookup(event, strings.Split(path, "."))
}

func lookup(event map[string]any, parts []string) any {
	var cur any = event
	for _, p := range parts {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return norm(cur)
}

// norm turns json.Number into float64 so comparisons see one number type.
func norm(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return nil
		}
		return f
	case int:
		return float64(x)
	case int64:
		return float64(x)
	}
	return v
}

// ---------------------------------------------------------------- lexer

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tOp
	tLParen
	tRParen
	tLBrack
	tRBrack
	tComma
)

type token struct {
	kind tokKind
	text string // identifiers unescaped, strings unquoted
	pos  int
	num  float64
}

type parser struct {
	src string
	pos int
	tok token
	err error
}

func isIdentChar(r rune) bool {
	return r == '_' || r == '-' || r == '.' || r == '$' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

func (p *parser) next() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n' || p.src[p.pos] == '\r') {
		p.pos++
	}
	start := p.pos
	if p.pos >= len(p.src) {
		p.tok = token{kind: tEOF, pos: start}
		return
	}
	c := p.src[p.pos]
	switch {
	case c == '(':
		p.pos++
		p.tok = token{kind: tLParen, text: "(", pos: start}
	case c == ')':
		p.pos++
		p.tok = token{kind: tRParen, text: ")", pos: start}
	case c == '[':
		p.pos++
		p.tok = token{kind: tLBrack, text: "[", pos: start}
	case c == ']':
		p.pos++
		p.tok = token{kind: tRBrack, text: "]", pos: start}
	case c == ',':
		p.pos++
		p.tok = token{kind: tComma, text: ",", pos: start}
	case c == '\'' || c == '"':
		quote := c
		p.pos++
		var b strings.Builder
		for {
			if p.pos >= len(p.src) {
				p.fail(start, "unterminated string")
				return
			}
			ch := p.src[p.pos]
			if ch == '\\' && p.pos+1 < len(p.src) {
				b.WriteByte(p.src[p.pos+1])
				p.pos += 2
				continue
			}
			p.pos++
			if ch == quote {
				break
			}
			b.WriteByte(ch)
		}
		p.tok = token{kind: tString, text: b.String(), pos: start}
	case c == '=' || c == '!' || c == '<' || c == '>':
		p.pos++
		if p.pos < len(p.src) && p.src[p.pos] == '=' {
			p.pos++
		}
		op := p.src[start:p.pos]
		if op == "==" {
			op = "="
		}
		p.tok = token{kind: tOp, text: op, pos: start}
	case (c >= '0' && c <= '9') || (c == '-' && p.pos+1 < len(p.src) && p.src[p.pos+1] >= '0' && p.src[p.pos+1] <= '9'):
		p.pos++
		for p.pos < len(p.src) && strings.IndexByte("0123456789.eE+-", p.src[p.pos]) >= 0 {
			if (p.src[p.pos] == '+' || p.src[p.pos] == '-') && p.src[p.pos-1] != 'e' && p.src[p.pos-1] != 'E' {
				break
			}
			p.pos++
		}
		f, err := strconv.ParseFloat(p.src[start:p.pos], 64)
		if err != nil {
			p.fail(start, fmt.Sprintf("bad number %q", p.src[start:p.pos]))
			return
		}
		p.tok = token{kind: tNumber, text: p.src[start:p.pos], num: f, pos: start}
	default:
		var b strings.Builder
		for p.pos < len(p.src) {
			r, size := utf8.DecodeRuneInString(p.src[p.pos:])
			if r == '\\' && p.pos+1 < len(p.src) {
				r2, s2 := utf8.DecodeRuneInString(p.src[p.pos+1:])
				if r2 == '.' {
					b.WriteString("\\.") // an escaped dot stays inside one path segment
				} else {
					b.WriteRune(r2)
				}
				p.pos += 1 + s2
				continue
			}
			if !isIdentChar(r) {
				break
			}
			b.WriteRune(r)
			p.pos += size
		}
		if p.pos == start {
			p.fail(start, fmt.Sprintf("unexpected character %q", c))
			return
		}
		p.tok = token{kind: tIdent, text: b.String(), pos: start}
	}
}

func (p *parser) fail(pos int, msg string) {
	if p.err == nil {
		p.err = &SyntaxError{Pos: pos, Msg: msg}
	}
	p.tok = token{kind: tEOF, pos: pos}
	p.pos = len(p.src)
}

// ---------------------------------------------------------------- parser

func (p *parser) parseOr() (node, error) {
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.tok.kind == tIdent && p.tok.text == "or" {
		p.next()
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = orNode{l, r}
	}
	return l, p.err
}

func (p *parser) parseAnd() (node, error) {
	l, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for p.tok.kind == tIdent && p.tok.text == "and" {
		p.next()
		r, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		l = andNode{l, r}
	}
	return l, p.err
}

func (p *parser) parseUnary() (node, error) {
	if p.tok.kind == tOp && p.tok.text == "!" {
		p.next()
		n, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return notNode{n}, nil
	}
	return p.parseCmp()
}

func (p *parser) parseCmp() (node, error) {
	l, err := p.parsePrimary()
	if err != nil {
		return nil, err
	}
	switch {
	case p.tok.kind == tOp && p.tok.text != "!":
		op := p.tok.text
		p.next()
		r, err := p.parsePrimary()
		if err != nil {
			return nil, err
		}
		return cmpNode{op, l, r}, nil
	case p.tok.kind == tIdent && p.tok.text == "in":
		p.next()
		r, err := p.parsePrimary()
		if err != nil {
			return nil, err
		}
		return inNode{l, r}, nil
	}
	return l, nil
}

func (p *parser) parsePrimary() (node, error) {
	if p.err != nil {
		return nil, p.err
	}
	t := p.tok
	switch t.kind {
	case tLParen:
		p.next()
		n, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tRParen {
			return nil, &SyntaxError{Pos: p.tok.pos, Msg: "missing )"}
		}
		p.next()
		return n, nil
	case tString:
		p.next()
		return lit{t.text}, p.err
	case tNumber:
		p.next()
		return lit{t.num}, p.err
	case tLBrack:
		p.next()
		var items []node
		for p.tok.kind != tRBrack {
			n, err := p.parsePrimary()
			if err != nil {
				return nil, err
			}
			items = append(items, n)
			if p.tok.kind == tComma {
				p.next()
				continue
			}
			if p.tok.kind != tRBrack {
				return nil, &SyntaxError{Pos: p.tok.pos, Msg: "expected , or ] in list"}
			}
		}
		p.next()
		return listNode(items), p.err
	case tIdent:
		p.next()
		switch t.text {
		case "true":
			return lit{true}, p.err
		case "false":
			return lit{false}, p.err
		case "null":
			return lit{nil}, p.err
		case "and", "or", "in":
			return nil, &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("unexpected %q", t.text)}
		}
		if p.tok.kind == tLParen {
			fn, ok := functions[t.text]
			if !ok {
				return nil, &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("unknown function %q", t.text)}
			}
			p.next()
			var args []node
			for p.tok.kind != tRParen {
				n, err := p.parseOr()
				if err != nil {
					return nil, err
				}
				args = append(args, n)
				if p.tok.kind == tComma {
					p.next()
					continue
				}
				if p.tok.kind != tRParen {
					return nil, &SyntaxError{Pos: p.tok.pos, Msg: "expected , or ) in call"}
				}
			}
			p.next()
			if len(args) != fn.arity {
				return nil, &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("%s takes %d argument(s), got %d", t.text, fn.arity, len(args))}
			}
			return callNode{fn: fn, args: args}, p.err
		}
		return pathNode(splitPath(t.text)), p.err
	case tEOF:
		if p.err != nil {
			return nil, p.err
		}
		return nil, &SyntaxError{Pos: t.pos, Msg: "unexpected end of expression"}
	}
	return nil, &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("unexpected %q", t.text)}
}

// splitPath splits on dots that were not escaped.
func splitPath(s string) []string {
	var parts []string
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && s[i+1] == '.' {
			b.WriteByte('.')
			i++
			continue
		}
		if s[i] == '.' {
			parts = append(parts, b.String())
			b.Reset()
			continue
		}
		b.WriteByte(s[i])
	}
	return append(parts, b.String())
}

// ---------------------------------------------------------------- evaluation

type node interface{ eval(ev map[string]any) any }

type lit struct{ v any }

func (l lit) eval(map[string]any) any { return l.v }

type pathNode []string

func (p pathNode) eval(ev map[string]any) any { return lookup(ev, p) }

type listNode []node

func (l listNode) eval(ev map[string]any) any {
	out := make([]any, len(l))
	for i, n := range l {
		out[i] = n.eval(ev)
	}
	return out
}

type andNode struct{ l, r node }

func (n andNode) eval(ev map[string]any) any { return truthy(n.l.eval(ev)) && truthy(n.r.eval(ev)) }

type orNode struct{ l, r node }

func (n orNode) eval(ev map[string]any) any { return truthy(n.l.eval(ev)) || truthy(n.r.eval(ev)) }

type notNode struct{ n node }

func (n notNode) eval(ev map[string]any) any { return !truthy(n.n.eval(ev)) }

func truthy(v any) bool { b, ok := v.(bool); return ok && b }

type cmpNode struct {
	op   string
	l, r node
}

func (n cmpNode) eval(ev map[string]any) any {
	l, r := n.l.eval(ev), n.r.eval(ev)
	switch n.op {
	case "=":
		return equal(l, r)
	case "!=":
		return !equal(l, r)
	}
	if lf, ok := l.(float64); ok {
		if rf, ok := r.(float64); ok {
			switch n.op {
			case ">":
				return lf > rf
			case ">=":
				return lf >= rf
			case "<":
				return lf < rf
			case "<=":
				return lf <= rf
			}
		}
		return false
	}
	if ls, ok := l.(string); ok {
		if rs, ok := r.(string); ok {
			switch n.op {
			case ">":
				return ls > rs
			case ">=":
				return ls >= rs
			case "<":
				return ls < rs
			case "<=":
				return ls <= rs
			}
		}
	}
	return false
}

type inNode struct{ l, r node }

func (n inNode) eval(ev map[string]any) any {
	l := n.l.eval(ev)
	list, ok := n.r.eval(ev).([]any)
	if !ok {
		return false
	}
	for _, x := range list {
		if equal(l, norm(x)) {
			return true
		}
	}
	return false
}

// equal is FQL's strict, type-sensitive equality.
func equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(norm(x[i]), norm(y[i])) {
				return false
			}
		}
		return true
	}
	return false
}

type function struct {
	arity int
	fn    func(args []any) any
}

type callNode struct {
	fn   function
	args []node
}

func (n callNode) eval(ev map[string]any) any {
	args := make([]any, len(n.args))
	for i, a := range n.args {
		args[i] = a.eval(ev)
	}
	return n.fn.fn(args)
}

func strArg(f func(string) string) func([]any) any {
	return func(a []any) any {
		s, ok := a[0].(string)
		if !ok {
			return nil
		}
		return f(s)
	}
}

var functions map[string]function

func init() {
	functions = map[string]function{
		"contains": {2, func(a []any) any {
			s, ok1 := a[0].(string)
			sub, ok2 := a[1].(string)
			return ok1 && ok2 && strings.Contains(s, sub)
		}},
		"length": {1, func(a []any) any {
			switch x := a[0].(type) {
			case string:
				return float64(len(x)) // bytes, as Segment's FQL
			case []any:
				return float64(len(x))
			case map[string]any:
				return float64(len(x))
			}
			return float64(0)
		}},
		"lowercase": {1, strArg(strings.ToLower)},
		"uppercase": {1, strArg(strings.ToUpper)},
		"snakecase": {1, strArg(func(s string) string { return strings.Join(words(s, strings.ToLower), "_") })},
		"kebabcase": {1, strArg(func(s string) string { return strings.Join(words(s, strings.ToLower), "-") })},
		"titlecase": {1, strArg(func(s string) string {
			return strings.Join(words(s, func(w string) string {
				r, size := utf8.DecodeRuneInString(w)
				return string(unicode.ToUpper(r)) + strings.ToLower(w[size:])
			}), " ")
		})},
		"typeof": {1, func(a []any) any { return typeOf(a[0]) }},
		"match": {2, func(a []any) any {
			s, ok1 := a[0].(string)
			pat, ok2 := a[1].(string)
			return ok1 && ok2 && Glob(pat, s)
		}},
		"bool": {1, func(a []any) any {
			switch x := a[0].(type) {
			case bool:
				return x
			case float64:
				return x != 0
			case string:
				return x == "true"
			}
			return false
		}},
		"string": {1, func(a []any) any {
			switch x := a[0].(type) {
			case nil:
				return "null"
			case string:
				return x
			case float64:
				return strconv.FormatFloat(x, 'f', -1, 64)
			case bool:
				return strconv.FormatBool(x)
			}
			b, _ := json.Marshal(a[0])
			return string(b)
		}},
		"number": {1, func(a []any) any {
			switch x := a[0].(type) {
			case float64:
				return x
			case bool:
				if x {
					return float64(1)
				}
				return float64(0)
			case string:
				f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
				if err != nil || math.IsNaN(f) {
					return nil
				}
				return f
			}
			return nil
		}},
	}
}

func typeOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "list"
	}
	return "object"
}

// words splits s into words at non-alphanumerics and lower→upper case
// changes, each passed through f.
func words(s string, f func(string) string) []string {
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			out = append(out, f(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
		case unicode.IsUpper(r) && i > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]) || (i+1 < len(rs) && unicode.IsUpper(rs[i-1]) && unicode.IsLower(rs[i+1]))):
			flush()
			cur = append(cur, r)
		default:
			cur = append(cur, r)
		}
	}
	flush()
	return out
}

// ErrBadPattern is a malformed glob.
var ErrBadPattern = errors.New("fql: bad glob pattern")

// Glob reports whether s fully matches pattern: `*` any run, `?` one
// character, `[abc]`, `[a-z]`, `[!…]` classes and `\x` escapes;
// case-sensitive. A malformed pattern matches nothing.
func Glob(pattern, s string) bool {
	px, sx := 0, 0
	nextPx, nextSx := -1, -1
	pr, sr := []rune(pattern), []rune(s)
	for px < len(pr) || sx < len(sr) {
		if px < len(pr) {
			switch c := pr[px]; c {
			case '*':
				nextPx, nextSx = px, sx+1
				px++
				continue
			case '?':
				if sx < len(sr) {
					px++
					sx++
					continue
				}
			case '[':
				if sx < len(sr) {
					ok, end := matchClass(pr, px, sr[sx])
					if end < 0 {
						return false
					}
					if ok {
						px = end
						sx++
						continue
					}
				}
			case '\\':
				if px+1 < len(pr) && sx < len(sr) && pr[px+1] == sr[sx] {
					px += 2
					sx++
					continue
				}
			default:
				if sx < len(sr) && sr[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if nextSx > 0 && nextSx <= len(sr) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}

// matchClass matches r against the class starting at pr[i]=='['; it returns
// the index after the class, or -1 when the class is not closed.
func matchClass(pr []rune, i int, r rune) (bool, int) {
	i++
	neg := false
	if i < len(pr) && (pr[i] == '!' || pr[i] == '^') {
		neg = true
		i++
	}
	matched := false
	first := true
	for i < len(pr) && (pr[i] != ']' || first) {
		first = false
		lo := pr[i]
		if lo == '\\' && i+1 < len(pr) {
			i++
			lo = pr[i]
		}
		hi := lo
		if i+2 < len(pr) && pr[i+1] == '-' && pr[i+2] != ']' {
			hi = pr[i+2]
			i += 2
		}
		if lo <= r && r <= hi {
			matched = true
		}
		i++
	}
	if i >= len(pr) {
		return false, -1
	}
	return matched != neg, i + 1
}
