package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(Handler())
	t.Cleanup(srv.Close)

	tests := []struct {
		name        string
		method      string
		path        string
		wantStatus  int
		wantType    string
		wantContain string
	}{
		{"root serves the single page", http.MethodGet, "/", 200, "text/html; charset=utf-8", `<script type="module" src="/assets/app.js">`},
		{"app.js is served as JavaScript", http.MethodGet, "/assets/app.js", 200, "text/javascript; charset=utf-8", "const MAX_COLUMNS = 5;"},
		{"app.css is served as CSS", http.MethodGet, "/assets/app.css", 200, "text/css; charset=utf-8", ".tablewrap"},
		{"unknown asset is 404", http.MethodGet, "/assets/nope.js", 404, "", ""},
		{"index.html is only at /", http.MethodGet, "/assets/index.html", 404, "", ""},
		{"path traversal is 404", http.MethodGet, "/assets/../console.go", 404, "", ""},
		{"other paths are 404, not the page", http.MethodGet, "/sources", 404, "", ""},
		{"HEAD of root has no body", http.MethodHead, "/", 200, "text/html; charset=utf-8", ""},
		{"POST is refused", http.MethodPost, "/", 405, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Keep the raw path: the client would otherwise clean "/../".
			req.URL.Opaque = tc.path
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantType != "" {
				if got := resp.Header.Get("Content-Type"); got != tc.wantType {
					t.Errorf("Content-Type = %q, want %q", got, tc.wantType)
				}
				if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "script-src 'self'") || !strings.Contains(got, "connect-src 'self'") {
					t.Errorf("Content-Security-Policy = %q, want same-origin scripts and API calls only", got)
				}
				if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
					t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
				}
			}
			if !strings.Contains(string(body), tc.wantContain) {
				t.Errorf("body does not contain %q", tc.wantContain)
			}
			if tc.method == http.MethodHead && len(body) != 0 {
				t.Errorf("HEAD body has %d bytes, want 0", len(body))
			}
		})
	}
}

// TestNoNetworkAssets checks the page loads nothing from another origin and
// keeps the token out of persistent browser storage.
func TestNoNetworkAssets(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"static/index.html", "static/app.js", "static/app.css"} {
		raw, err := static.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		s := string(raw)
		for _, bad := range []string{"http://", "https://", "localStorage", "sessionStorage", "document.cookie", "indexedDB"} {
			if strings.Contains(s, bad) && !(bad == "http://" && strings.Contains(s, "http://www.w3.org/2000/svg") && strings.Count(s, "http://") == strings.Count(s, "http://www.w3.org/2000/svg")) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
}
