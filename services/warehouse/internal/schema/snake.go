// Package schema turns Segment events into warehouse rows laid out the way Segment's warehouses
// lay them out: one table per call type, one table per track event, snake_case column names,
// flattened nested objects, JSON-text arrays and reserved system columns. It is pure logic: it
// neither reads nor writes a database.
package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Snake converts a property, trait or event name to snake_case with the rules of
// segmentio/go-snakecase, which Segment's warehouses use:
//   - every run of characters other than ASCII letters and digits (non-ASCII included) is a
//     separator and becomes a single "_"; leading and trailing separators disappear;
//   - a word is a run of upper-case letters and digits followed by a run of lower-case letters and
//     digits, so an upper-case letter after a lower-case one starts a new word
//     ("inviteYourCustomers" → "invite_your_customers", "CamelCase123Key" → "camel_case123_key",
//     "iOS Version" → "i_os_version");
//   - a leading run that is already snake_case is kept as it is, and an upper-case word right after
//     a leading run of digits (or digits after its last "_") is glued to it ("2Fast" → "2fast").
func Snake(s string) string {
	n, glue := cleanPrefix(s)
	if n == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 4)
	b.WriteString(s[:n])
	i := n
	if glue && isUpper(s[i]) {
		i = appendWord(&b, s, i)
	}
	for i < len(s) {
		if !isAlnum(s[i]) {
			i++
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('_')
		}
		i = appendWord(&b, s, i)
	}
	return b.String()
}

// cleanPrefix returns the length of the leading part of s that is already snake_case (lower-case
// letters, digits, and underscores that sit between such characters) and whether an upper-case
// word that follows it continues the last word instead of starting a new one: that is the case
// when the last word so far holds no lower-case letter.
func cleanPrefix(s string) (n int, glue bool) {
	hasLower, hasUnderscore, lowerSinceUnderscore := false, false, false
	for n = 0; n < len(s); n++ {
		c := s[n]
		switch {
		case isLower(c):
			hasLower = true
			lowerSinceUnderscore = true
		case isDigit(c):
		case c == '_' && n > 0 && n+1 < len(s) && (isLower(s[n+1]) || isDigit(s[n+1])):
			hasUnderscore = true
			lowerSinceUnderscore = false
		default:
			return n, !hasLower || (hasUnderscore && !lowerSinceUnderscore)
		}
	}
	return n, false
}

// appendWord appends the word starting at s[i] in lower case and returns the index after it.
func appendWord(b *strings.Builder, s string, i int) int {
	for i < len(s) && (isUpper(s[i]) || isDigit(s[i])) {
		c := s[i]
		if isUpper(c) {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
		i++
	}
	for i < len(s) && (isLower(s[i]) || isDigit(s[i])) {
		b.WriteByte(s[i])
		i++
	}
	return i
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool { return isUpper(c) || isLower(c) || isDigit(c) }

// MaxIdentLen is the longest identifier, in bytes, the warehouse creates: PostgreSQL's limit
// (NAMEDATALEN-1). DuckDB gets the same names so both engines hold the same layout.
const MaxIdentLen = 63

// identHashLen is how many hex characters of the name's hash end a shortened identifier.
const identHashLen = 8

// Ident turns a snake_case name into the identifier the warehouse uses for a schema, table or
// column. An empty name stays empty (callers drop it). A name starting with a digit gets a "_"
// prefix. A name longer than MaxIdentLen bytes is cut to its first 54 bytes followed by "_" and the
// first 8 hex characters of the SHA-256 of the whole name, so the result is stable across loads and
// engines and two long names sharing a prefix stay distinct.
func Ident(name string) string {
	if name == "" {
		return ""
	}
	if isDigit(name[0]) {
		name = "_" + name
	}
	if len(name) <= MaxIdentLen {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	keep := MaxIdentLen - 1 - identHashLen
	return name[:keep] + "_" + hex.EncodeToString(sum[:])[:identHashLen]
}
