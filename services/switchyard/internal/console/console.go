// Package console serves the web console. This first version is a landing
// page that points at the REST API; the Sources and Destinations pages come
// with their own issue.
package console

import (
	"io"
	"net/http"
)

const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Switchyard</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem}code{background:#f3f3f3;padding:0 .25rem}</style>
</head><body>
<h1>Switchyard</h1>
<p>A self-hostable customer data platform that speaks the Segment Tracking API.</p>
<ul>
<li>Tracking API: <code>POST /v1/track</code>, <code>/v1/identify</code>, <code>/v1/page</code>, <code>/v1/batch</code> (write key as Basic-auth username)</li>
<li>REST API: <code>/api/v1/sources</code>, <code>/api/v1/destinations</code>, <code>/api/v1/warehouses/{id}/query</code> (Bearer token)</li>
<li>Health: <a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>, metrics: <a href="/metrics">/metrics</a></li>
</ul>
<p>The console's Sources and Destinations pages are not built yet; use the REST API.</p>
</body></html>
`

// Handler serves the console.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, page)
	})
}
