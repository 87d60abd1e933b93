package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestBracketQuery(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"pagination[count]=10&pagination[cursor]=abc", "pagination.count=10&pagination.cursor=abc"},
		{"pagination%5Bcount%5D=5", "pagination.count=5"},
		{"a[b][c]=1&plain=2", "a.b.c=1&plain=2"},
		{"sort=name:asc&filter=type:eq:ios", "sort=name:asc&filter=type:eq:ios"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			var got string
			h := BracketQuery(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r.URL.RawQuery }))
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/api/v1/sources?"+tt.in, nil))
			if got != tt.want {
				t.Errorf("query = %q, want %q", got, tt.want)
			}
		})
	}
}
