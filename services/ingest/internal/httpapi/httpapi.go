// Package httpapi serves the Segment HTTP Tracking API.
package httpapi

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/switchyardhq/switchyard/services/ingest/internal/tracking"
)

// Publisher stores accepted events; it returns only after they are durable.
type Publisher interface {
	Publish(ctx context.Context, workspaceID, sourceID string, evs []tracking.Event) error
}

// Handler serves /v1/….
type Handler struct {
	Keys      *Keys
	Parser    *tracking.Parser
	Publisher Publisher
	Logger    *slog.Logger
}

// singleTypes maps the per-call paths, long and short (analytics.js posts to
// /v1/t, /v1/i, …), to the event type.
var singleTypes = map[string]string{
	"identify": "identify", "track": "track", "page": "page", "screen": "screen", "group": "group", "alias": "alias",
	"i": "identify", "t": "track", "p": "page", "s": "screen", "g": "group", "a": "alias",
}

// batchPaths are the batch endpoints: /v1/batch, analytics.js and mobile
// SDKs' /v1/b, and the undocumented /v1/import used by analytics-java.
var batchPaths = map[string]bool{"batch": true, "b": true, "import": true, "import/": true}

// ServeHTTP routes a Tracking API request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setCORS(w, r)
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/v1/")
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	if name == "m" { // analytics.js client metrics: accepted and discarded
		writeJSON(w, http.StatusOK, map[string]any{"success": true})
		return
	}
	typ, single := singleTypes[name]
	if !single && !batchPaths[name] {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no Tracking API endpoint %s", r.URL.Path))
		return
	}
	body, rerr := readBody(r)
	if rerr != nil {
		writeRequestError(w, rerr)
		return
	}
	var req *tracking.Request
	var err error
	if single {
		req, err = h.Parser.ParseSingle(body, typ)
	} else {
		req, err = h.Parser.ParseBatch(body)
	}
	if err != nil {
		var re *tracking.RequestError
		if errors.As(err, &re) {
			writeRequestError(w, re)
			return
		}
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	key := writeKey(r, req.WriteKey)
	if key == "" {
		writeError(w, http.StatusUnauthorized, "missing_write_key", "send the source's write key as the Basic auth username or as writeKey in the body")
		return
	}
	ref, ok := h.Keys.Lookup(key)
	if !ok {
		writeError(w, http.StatusUnauthorized, "invalid_write_key", "unknown write key")
		return
	}
	if !ref.Enabled {
		writeError(w, http.StatusForbidden, "source_disabled", "the source of this write key is disabled")
		return
	}
	if len(req.Events) > 0 {
		if err := h.Publisher.Publish(r.Context(), ref.WorkspaceID, ref.SourceID, req.Events); err != nil {
			h.Logger.Error("ingest: store events", "source", ref.SourceID, "events", len(req.Events), "err", err)
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "store_unavailable", "events were not stored; retry")
			return
		}
	}
	resp := map[string]any{"success": true}
	if len(req.Rejected) > 0 {
		resp["rejected"] = req.Rejected
	}
	writeJSON(w, http.StatusOK, resp)
}

// writeKey takes the key from Basic auth (username, password ignored),
// then from the body's writeKey (which a Bearer-authenticated call must carry).
func writeKey(r *http.Request, bodyKey string) string {
	if u, _, ok := r.BasicAuth(); ok && u != "" {
		return u
	}
	return bodyKey
}

// readBody reads at most MaxRequestBytes of (decompressed) body; decompression
// stops at the limit, so a gzip bomb costs at most that much memory.
func readBody(r *http.Request) ([]byte, *tracking.RequestError) {
	var src io.Reader = r.Body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, &tracking.RequestError{Code: "invalid_encoding", Message: "body is not valid gzip: " + err.Error()}
		}
		defer zr.Close()
		src = zr
	default:
		return nil, &tracking.RequestError{Code: "unsupported_encoding", Message: fmt.Sprintf("Content-Encoding %q is not supported (use gzip or none)", enc)}
	}
	b, err := io.ReadAll(io.LimitReader(src, tracking.MaxRequestBytes+1))
	if err != nil {
		return nil, &tracking.RequestError{Code: "invalid_encoding", Message: "body could not be read: " + err.Error()}
	}
	if len(b) > tracking.MaxRequestBytes {
		return nil, &tracking.RequestError{Code: "request_too_large", Message: fmt.Sprintf("request is over %d bytes (Exceed payload limit)", tracking.MaxRequestBytes)}
	}
	return b, nil
}

// setCORS lets browsers on any origin send events (analytics.js).
func setCORS(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	origin := r.Header.Get("Origin")
	if origin == "" {
		origin = "*"
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Content-Encoding, X-Retry-Count")
	h.Set("Access-Control-Max-Age", "86400")
}

func writeRequestError(w http.ResponseWriter, e *tracking.RequestError) {
	writeError(w, http.StatusBadRequest, e.Code, e.Message)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"code": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
