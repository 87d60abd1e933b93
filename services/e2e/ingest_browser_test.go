package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// analyticsNextLibrary is what @segment/analytics-next puts in
// context.library.name.
const analyticsNextLibrary = "analytics.js"

// TestIngestBrowserAnalyticsNext runs the real @segment/analytics-next
// bundle in headless Debian chromium against `switchyard dev`: a page served
// by a local test server (another origin than Switchyard, so every call is
// cross-origin) loads the bundle from node_modules with its CDN pointed at
// Switchyard; the SDK fetches /v1/projects/{writeKey}/settings from
// Switchyard, whose integrations["Segment.io"].apiHost sends the events back
// to Switchyard, and its identify/track/page calls land in the warehouse.
//
//   - standalone: the self-hosted snippet + dist/umd/standalone.js, CDN set on
//     the stub (_cdn), default per-event delivery (/v1/i, /v1/t, /v1/p), the
//     page call buffered by the stub before the bundle loaded.
//   - npm: dist/umd/index.js, AnalyticsBrowser.load({cdnURL: Switchyard}),
//     the batching delivery strategy (/v1/b), and a lazily loaded chunk (the
//     ajs_ query-string handler) fetched from the test server at
//     /analytics-next/bundles/, where the bundle expects it.
func TestIngestBrowserAnalyticsNext(t *testing.T) {
	t.Parallel()
	umd := filepath.Join(analyticsNextDir(t), "dist", "umd")
	// The ajs_ query-string handler is a lazily loaded chunk; its name
	// carries a content hash that changes with the SDK version.
	chunks, _ := filepath.Glob(filepath.Join(umd, "queryString.bundle.*.js"))
	if len(chunks) != 1 {
		t.Fatalf("want one queryString chunk in %s, found %v", umd, chunks)
	}
	queryStringChunk := filepath.Base(chunks[0])
	s := startSwitchyard(t)
	browser := ajsChromium(t)

	mux := http.NewServeMux()
	mux.Handle("/analytics-next/bundles/", http.StripPrefix("/analytics-next/bundles/", http.FileServer(http.Dir(umd))))
	pages := httptest.NewServer(mux)
	t.Cleanup(pages.Close)
	serveConfigured := func(route, file string, cfg map[string]any) {
		page, err := os.ReadFile(filepath.Join("testdata", "analytics_next", file))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		page = bytes.Replace(page, []byte("/*CONFIG*/null"), raw, 1)
		mux.HandleFunc(route, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(page)
		})
	}
	sy := s.baseURL()

	t.Run("settings answer the page's origin with CORS and apiHost = Switchyard", func(t *testing.T) {
		res := s.request(t, http.MethodGet, "/v1/projects/"+s.Boot.WriteKey+"/settings", nil,
			func(r *http.Request) { r.Header.Set("Origin", pages.URL) })
		if res.Status != http.StatusOK || res.Header.Get("Access-Control-Allow-Origin") != pages.URL {
			t.Fatalf("status %d, Access-Control-Allow-Origin %q, want 200 and %q: %s",
				res.Status, res.Header.Get("Access-Control-Allow-Origin"), pages.URL, res.Body)
		}
		var body struct {
			Integrations map[string]map[string]any `json:"integrations"`
		}
		decodeJSON(t, res.Body, &body)
		seg := body.Integrations["Segment.io"]
		if seg["apiKey"] != s.Boot.WriteKey || seg["apiHost"] != s.httpAddr+"/v1" || seg["protocol"] != "http" {
			t.Errorf(`integrations["Segment.io"] = %v, want apiKey %s, apiHost %s/v1, protocol http`, seg, s.Boot.WriteKey, s.httpAddr)
		}
		if len(body.Integrations) != 1 {
			t.Errorf("integrations = %v, want only Segment.io (anything else makes analytics.js load legacy destinations from the CDN)", body.Integrations)
		}
	})

	perEvent := map[string]string{"identify": "browser-std-identify", "track": "browser-std-track", "page": "browser-std-page"}
	batched := map[string]string{"identify": "browser-npm-identify", "track": "browser-npm-track", "page": "browser-npm-page"}
	serveConfigured("/standalone.html", "standalone.html", map[string]any{
		"writeKey": s.Boot.WriteKey, "cdn": sy, "loadOptions": map[string]any{}, "ids": perEvent,
	})
	serveConfigured("/npm.html", "npm.html", map[string]any{
		"writeKey": s.Boot.WriteKey, "cdn": sy, "ids": batched,
		"loadOptions": map[string]any{"integrations": map[string]any{"Segment.io": map[string]any{
			"deliveryStrategy": map[string]any{"strategy": "batching", "config": map[string]any{"size": 10, "timeout": 200}},
		}}},
	})

	tests := []struct {
		name string
		page string
		// want are the sorted "METHOD path status" requests to Switchyard and
		// to the page server; every request of the page must be to one of them.
		wantSwitchyard, wantPages []string
	}{
		{
			name: "standalone bundle, CDN on the snippet, per-event delivery",
			page: "/standalone.html",
			wantSwitchyard: []string{
				"GET /v1/projects/" + s.Boot.WriteKey + "/settings 200",
				"OPTIONS /v1/i 204", "OPTIONS /v1/p 204", "OPTIONS /v1/t 204", // CORS preflights (JSON bodies)
				"POST /v1/i 200", "POST /v1/p 200", "POST /v1/t 200",
			},
			wantPages: []string{"GET /analytics-next/bundles/standalone.js 200", "GET /standalone.html 200"},
		},
		{
			name: "npm bundle, cdnURL option, batching delivery, lazy chunk from the page server",
			page: "/npm.html?ajs_event=Campaign%20Landed&ajs_prop_campaign=spring-sale&ajs_aid=anon-qs-1",
			wantSwitchyard: []string{
				"GET /v1/projects/" + s.Boot.WriteKey + "/settings 200",
				"OPTIONS /v1/b 204",
				"POST /v1/b 200",
			},
			wantPages: []string{
				"GET /analytics-next/bundles/index.js 200",
				"GET /analytics-next/bundles/" + queryStringChunk + " 200",
				"GET /npm.html 200",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, log := ajsOpenPage(t, browser, pages.URL+tt.page, func(reqs []ajsRequest) bool {
				got := append(ajsPaths(reqs, sy), ajsPaths(reqs, pages.URL)...)
				for _, w := range append(slices.Clone(tt.wantSwitchyard), tt.wantPages...) {
					if !slices.Contains(got, w) {
						return false
					}
				}
				return true
			})
			reqs, console := log.snapshot()
			if !res.OK || !res.Initialized {
				t.Errorf("page result %+v\nconsole:\n  %s", res, strings.Join(console, "\n  "))
			}
			for _, r := range reqs {
				if r.Failed != "" || (!strings.HasPrefix(r.URL, sy+"/") && !strings.HasPrefix(r.URL, pages.URL+"/")) {
					t.Errorf("request %s: want only successful requests to Switchyard and the page server", r)
				}
			}
			if got := ajsPaths(reqs, sy); !slices.Equal(got, tt.wantSwitchyard) {
				t.Errorf("requests to Switchyard:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.wantSwitchyard, "\n  "))
			}
			if got := ajsPaths(reqs, pages.URL); !slices.Equal(got, tt.wantPages) {
				t.Errorf("requests to the page server:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.wantPages, "\n  "))
			}
		})
	}

	if t.Failed() {
		return
	}
	t.Run("every call is in the warehouse once with its properties", func(t *testing.T) {
		s.waitRowsOnce(t, "http_api.identifies", []string{perEvent["identify"], batched["identify"]})
		s.waitRowsOnce(t, "http_api.browser_checkout", []string{perEvent["track"], batched["track"]})
		s.waitRowsOnce(t, "http_api.pages", []string{perEvent["page"], batched["page"]})

		rows := []struct {
			sql  string
			want map[string]any
		}{
			{"select * from http_api.identifies where id = '" + perEvent["identify"] + "'",
				map[string]any{"user_id": "user-browser-1", "first_name": "Grace", "plan": "pro", "context_library_name": analyticsNextLibrary}},
			{"select * from http_api.identifies where id = '" + batched["identify"] + "'",
				map[string]any{"user_id": "user-browser-2", "first_name": "Alan", "plan": "team", "context_library_name": analyticsNextLibrary}},
			{"select * from http_api.browser_checkout where id = '" + perEvent["track"] + "'",
				map[string]any{"user_id": "user-browser-1", "event_text": "Browser Checkout", "order_total": 19.5, "currency": "EUR", "delivery": "per-event", "context_library_name": analyticsNextLibrary}},
			{"select * from http_api.browser_checkout where id = '" + batched["track"] + "'",
				map[string]any{"user_id": "user-browser-2", "event_text": "Browser Checkout", "order_total": float64(42), "currency": "GBP", "delivery": "batching", "context_library_name": analyticsNextLibrary}},
			{"select * from http_api.pages where id = '" + perEvent["page"] + "'",
				map[string]any{"name": "Pricing", "plan": "pro", "path": "/pricing", "context_library_name": analyticsNextLibrary}},
			{"select * from http_api.pages where id = '" + batched["page"] + "'",
				map[string]any{"name": "Docs", "plan": "team", "path": "/docs", "context_library_name": analyticsNextLibrary}},
		}
		for _, r := range rows {
			row := s.oneRow(t, r.sql)
			wantColumns(t, r.sql, row, r.want)
			wantNonEmpty(t, r.sql, row, "anonymous_id", "received_at", "timestamp", "sent_at", "context_ip", "context_user_agent", "context_page_url")
		}
		// The ajs_ query string of the npm page became a track call (its
		// messageId is the SDK's own).
		qr := s.pollQuery(t, "select anonymous_id, campaign, event_text, context_library_name from http_api.campaign_landed", warehouseWait,
			func(qr queryResult) bool { return len(qr.Rows) > 0 })
		if len(qr.Rows) != 1 {
			t.Fatalf("campaign_landed rows = %v, want 1", qr.Rows)
		}
		wantColumns(t, "campaign_landed", qr.Rows[0], map[string]any{
			"anonymous_id": "anon-qs-1", "campaign": "spring-sale", "event_text": "Campaign Landed", "context_library_name": analyticsNextLibrary,
		})
	})
}
