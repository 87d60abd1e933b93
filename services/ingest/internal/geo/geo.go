// Package geo resolves client IPs to countries with a MaxMind-format
// database (GeoLite2/GeoIP2 Country or City, or any .mmdb whose records
// carry country.iso_code) and applies the sanctions policy.
package geo

import (
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/oschwald/maxminddb-golang/v2"
)

// DefaultBlocked are the countries refused when a database is configured
// and no list is given: Cuba, Iran, Syria, North Korea.
var DefaultBlocked = []string{"CU", "IR", "SY", "KP"}

// DB is an open MaxMind database.
type DB struct {
	r *maxminddb.Reader
}

// Open opens the database at path.
func Open(path string) (*DB, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open GeoIP database %s: %w", path, err)
	}
	return &DB{r: r}, nil
}

// Close releases the database.
func (d *DB) Close() error { return d.r.Close() }

// Country returns the ISO 3166-1 alpha-2 code of ip's country ("" when the
// database has no record for it).
func (d *DB) Country(ip netip.Addr) (string, error) {
	var rec struct {
		Country struct {
			ISOCode string `maxminddb:"iso_code"`
		} `maxminddb:"country"`
	}
	if err := d.r.Lookup(ip).Decode(&rec); err != nil {
		return "", fmt.Errorf("look up %s: %w", ip, err)
	}
	return rec.Country.ISOCode, nil
}

// Policy refuses events whose client IP resolves to a blocked country.
type Policy struct {
	db      *DB
	blocked map[string]bool
	refused atomic.Int64
}

// NewPolicy blocks the given ISO codes (DefaultBlocked when empty).
func NewPolicy(db *DB, blocked []string) *Policy {
	if len(blocked) == 0 {
		blocked = DefaultBlocked
	}
	m := make(map[string]bool, len(blocked))
	for _, c := range blocked {
		m[strings.ToUpper(strings.TrimSpace(c))] = true
	}
	return &Policy{db: db, blocked: m}
}

// Blocked reports whether ip is in a blocked country, and which; each
// blocked answer is counted. An IP the database does not know, or cannot
// look up, is not blocked.
func (p *Policy) Blocked(ip netip.Addr) (string, bool) {
	if p == nil || !ip.IsValid() {
		return "", false
	}
	c, err := p.db.Country(ip)
	if err != nil || !p.blocked[c] {
		return c, false
	}
	p.refused.Add(1)
	return c, true
}

// Refused counts the requests refused so far.
func (p *Policy) Refused() int64 { return p.refused.Load() }
