package gateway

import (
	"net/http"
	"strings"
)

// BracketQuery rewrites query keys written with brackets, as Segment's
// Public API clients send them (`pagination[count]=10`), into the dotted
// form grpc-gateway reads (`pagination.count=10`), then calls next.
func BracketQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.ContainsAny(r.URL.RawQuery, "[%") {
			q := r.URL.Query()
			changed := false
			for k, vs := range q {
				if !strings.Contains(k, "[") {
					continue
				}
				dotted := strings.NewReplacer("][", ".", "[", ".", "]", "").Replace(k)
				if dotted != k {
					delete(q, k)
					q[dotted] = append(q[dotted], vs...)
					changed = true
				}
			}
			if changed {
				r = r.Clone(r.Context())
				r.URL.RawQuery = q.Encode()
			}
		}
		next.ServeHTTP(w, r)
	})
}
