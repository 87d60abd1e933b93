package geo

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/switchyardhq/switchyard/services/ingest/internal/geo/geotest"
)

func TestPolicy(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "country.mmdb")
	if err := geotest.Write(path, map[string]string{"203.0.113.0/24": "IR", "198.51.100.0/24": "DE", "192.0.2.128/25": "KP"}); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	p := NewPolicy(db, nil)
	tests := []struct {
		ip      string
		country string
		blocked bool
	}{
		{"203.0.113.9", "IR", true},
		{"192.0.2.200", "KP", true},
		{"192.0.2.10", "", false},
		{"198.51.100.1", "DE", false},
		{"127.0.0.1", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			c, b := p.Blocked(netip.MustParseAddr(tt.ip))
			if c != tt.country || b != tt.blocked {
				t.Errorf("Blocked(%s) = %q, %v; want %q, %v", tt.ip, c, b, tt.country, tt.blocked)
			}
		})
	}
	if p.Refused() != 2 {
		t.Errorf("Refused = %d, want 2", p.Refused())
	}
}
