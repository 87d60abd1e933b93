package e2e

import (
	"net/http"
	"testing"
)

// TestCatalogBracketPagination checks that Segment Public API clients'
// bracket query form (pagination[count]) works like the dotted one.
func TestCatalogBracketPagination(t *testing.T) {
	t.Parallel()
	sy := startSwitchyard(t)
	for _, name := range []string{"Second Source", "Third Source"} {
		if res := sy.admin(t, http.MethodPost, "/api/v1/sources", map[string]any{"name": name}); res.Status != http.StatusOK {
			t.Fatalf("create %s: %d %s", name, res.Status, res.Body)
		}
	}
	for _, q := range []string{"pagination[count]=2", "pagination.count=2", "pagination%5Bcount%5D=2"} {
		res := sy.admin(t, http.MethodGet, "/api/v1/sources?"+q, nil)
		var out struct {
			Sources    []map[string]any `json:"sources"`
			Pagination struct {
				Next         string `json:"next"`
				TotalEntries int    `json:"totalEntries"`
			} `json:"pagination"`
		}
		decodeJSON(t, res.Body, &out)
		if res.Status != http.StatusOK || len(out.Sources) != 2 || out.Pagination.Next == "" || out.Pagination.TotalEntries != 3 {
			t.Errorf("%s: status %d, %d sources, next %q, total %d; want 2 of 3 with a next cursor",
				q, res.Status, len(out.Sources), out.Pagination.Next, out.Pagination.TotalEntries)
		}
	}
}
