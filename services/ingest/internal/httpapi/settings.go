package httpapi

import (
	"net/http"
	"net/url"
	"strings"
)

// serveSettings answers GET /v1/projects/{writeKey}/settings: the settings
// object analytics.js and the mobile SDKs load from their CDN
// (segment-compat.md §3.1). Its integrations["Segment.io"].apiHost is
// Switchyard's public address plus /v1 (no scheme), and protocol its
// scheme, so the SDK sends its events back here. Unknown key: 404 (the
// SDKs then abort loading, or fall back to their defaults); before the
// write-key map is loaded: 503 + Retry-After (no key is known yet).
func (h *Handler) serveSettings(w http.ResponseWriter, r *http.Request, name string) {
	rest := strings.TrimPrefix(name, "projects/")
	key, tail, _ := strings.Cut(rest, "/")
	if tail != "settings" || key == "" {
		writeError(w, http.StatusNotFound, "not_found", "no Tracking API endpoint "+r.URL.Path)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		return
	}
	if !h.Keys.Loaded() {
		writeConfigUnavailable(w)
		return
	}
	key, err := url.PathUnescape(key)
	if err != nil {
		writeError(w, http.StatusNotFound, "invalid_write_key", "unknown write key")
		return
	}
	if _, ok := h.Keys.Lookup(key); !ok {
		writeError(w, http.StatusNotFound, "invalid_write_key", "unknown write key")
		return
	}
	scheme, host := h.publicAddress(r)
	apiHost := host + "/v1"
	w.Header().Set("Cache-Control", "public, max-age=60")
	writeJSON(w, http.StatusOK, map[string]any{
		"integrations": map[string]any{
			"Segment.io": map[string]any{
				"apiKey":                key,
				"apiHost":               apiHost,
				"protocol":              scheme,
				"retryQueue":            true,
				"addBundledMetadata":    true,
				"unbundledIntegrations": []string{},
				"maybeBundledConfigIds": map[string]any{},
				"versionSettings":       map[string]any{"version": "4.4.7", "componentTypes": []string{"browser"}},
			},
		},
		"plan": map[string]any{
			"track":    map[string]any{"__default": map[string]any{"enabled": true, "integrations": map[string]any{}}},
			"identify": map[string]any{"__default": map[string]any{"enabled": true}},
			"group":    map[string]any{"__default": map[string]any{"enabled": true}},
		},
		"middlewareSettings":        map[string]any{},
		"enabledMiddleware":         map[string]any{},
		"metrics":                   map[string]any{"sampleRate": 0, "host": apiHost},
		"legacyVideoPluginsEnabled": false,
		"remotePlugins":             []any{},
		"consentSettings":           map[string]any{"allCategories": []string{}},
		"edgeFunction":              map[string]any{},
		"analyticsNextEnabled":      true,
	})
}

// publicAddress is the scheme and host[/path] SDKs should send to:
// PublicURL when configured, else the request's own (X-Forwarded-Proto and
// X-Forwarded-Host only from trusted proxies).
func (h *Handler) publicAddress(r *http.Request) (scheme, host string) {
	if h.PublicURL != "" {
		if u, err := url.Parse(h.PublicURL); err == nil && u.Host != "" {
			return u.Scheme, u.Host + strings.TrimRight(u.Path, "/")
		}
	}
	scheme, host = "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if ip := h.peerIP(r); ip.IsValid() && h.trusted(ip) {
		if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
			scheme = p
		}
		if fh := r.Header.Get("X-Forwarded-Host"); fh != "" {
			host = fh
		}
	}
	return scheme, host
}
