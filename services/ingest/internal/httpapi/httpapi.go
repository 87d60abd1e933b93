// Package httpapi serves the Segment HTTP Tracking API.
package httpapi

import (
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/switchyardhq/switchyard/services/ingest/internal/debugger"
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
	// PublicURL is Switchyard's address as browsers and apps reach it
	// (e.g. https://events.example.com); the settings endpoint returns it
	// as apiHost. Empty: the scheme and Host of the settings request.
	PublicURL string
	// TrustedProxies are the peers whose X-Forwarded-For is believed when
	// working out the client's IP; empty: the connection's address is used.
	TrustedProxies []netip.Prefix
	// Limiter, when set, applies the per-source rate limit (429).
	Limiter *RateLimiter
	// Sanctions, when set, refuses events from blocked countries (451).
	Sanctions *Sanctions
	// Debugger, when set, keeps each source's latest events and rejections
	// for the console's live event debugger.
	Debugger *debugger.Debugger
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
	if strings.HasPrefix(name, "projects/") {
		h.serveSettings(w, r, name)
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	if name == "m" { // analytics.js client metrics: accepted and discarded
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, tracking.MaxRequestBytes))
		writeJSON(w, http.StatusOK, map[string]any{"success": true})
		return
	}
	typ, single := singleTypes[name]
	if !single && !batchPaths[name] {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no Tracking API endpoint %s", r.URL.Path))
		return
	}
	if !h.Keys.Loaded() {
		writeConfigUnavailable(w)
		return
	}
	body, rerr := readBody(r)
	if rerr != nil {
		writeRequestError(w, rerr)
		return
	}
	ip := h.clientIP(r)
	meta := tracking.Meta{IP: ip.String()}
	if !ip.IsValid() {
		meta.IP = ""
	}
	var req *tracking.Request
	var err error
	if single {
		req, err = h.Parser.ParseSingle(body, typ, meta)
	} else {
		req, err = h.Parser.ParseBatch(body, meta)
	}
	bodyKey := ""
	if req != nil {
		bodyKey = req.WriteKey
	}
	if err != nil {
		var re *tracking.RequestError
		if errors.As(err, &re) {
			countRejected(re.Code, 1)
			// The source is known when the key came in the Authorization header.
			if key, _ := writeKey(r, ""); key != "" {
				if ref, ok := h.Keys.Lookup(key); ok {
					h.debugRejected(ref.SourceID, re.Code, re.Message, body)
				}
			}
			writeRequestError(w, re)
			return
		}
		writeError(w, http.StatusBadRequest, "invalid_request", "the request could not be parsed")
		return
	}
	key, malformed := writeKey(r, bodyKey)
	if key == "" && malformed != "" {
		writeError(w, http.StatusUnauthorized, "malformed_authorization", malformed)
		return
	}
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
		h.debugRejected(ref.SourceID, "source_disabled", "the source of this write key is disabled", body)
		writeError(w, http.StatusForbidden, "source_disabled", "the source of this write key is disabled")
		return
	}
	if h.Sanctions != nil {
		if country, blocked := h.Sanctions.Blocked(ip); blocked {
			writeError(w, http.StatusUnavailableForLegalReasons, "sanctioned_country", fmt.Sprintf("events from %s are not accepted (sanctions policy)", country))
			return
		}
	}
	if h.Limiter != nil {
		if wait, ok := h.Limiter.Allow(ref.SourceID, len(req.Events)); !ok {
			secs := strconv.Itoa(int(math.Ceil(wait.Seconds())))
			w.Header().Set("Retry-After", secs)
			w.Header().Set("X-RateLimit-Reset", secs)
			writeError(w, http.StatusTooManyRequests, "rate_limited", "the source's rate limit is exceeded; retry after "+secs+" s")
			return
		}
	}
	start := time.Now()
	var dups map[string]bool
	if rp, ok := h.Publisher.(reportingPublisher); ok {
		err = rp.PublishReporting(r.Context(), ref.WorkspaceID, ref.SourceID, req.Events, func(id string) {
			if dups == nil {
				dups = map[string]bool{}
			}
			dups[id] = true
		})
	} else {
		err = h.Publisher.Publish(r.Context(), ref.WorkspaceID, ref.SourceID, req.Events)
	}
	publishHist.Record(r.Context(), time.Since(start).Seconds())
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "ingest: store events", "source", ref.SourceID, "events", len(req.Events), "err", err)
		w.Header().Set("Retry-After", "1")
		h.debugRejected(ref.SourceID, "store_unavailable", StoreUnavailableMessage, body)
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", StoreUnavailableMessage)
		return
	}
	h.debugAccepted(ref.SourceID, req, body, single, dups)
	writeJSON(w, http.StatusOK, response{Success: true, Rejected: req.Rejected, Warnings: req.Warnings})
}

// ConfigUnavailableMessage is the 503 (gRPC: Unavailable) message before
// the write-key map received its first configuration from Catalog.
const ConfigUnavailableMessage = "Switchyard is starting: the source configuration is not loaded yet; retry"

// writeConfigUnavailable answers a request that needs the write-key map
// before it is loaded: 503 + Retry-After, never a 4xx, which SDKs would
// not retry (a valid key is not known yet, not unknown), and before the
// body is read (nothing of it can be judged or stored yet).
func writeConfigUnavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "config_unavailable", ConfigUnavailableMessage)
}

// StoreUnavailableMessage is the 503 (gRPC: Unavailable) message. A publish
// that timed out may still have been stored, so it does not claim the
// events were lost; a retry with the same messageIds is safe because
// repeats are dropped.
const StoreUnavailableMessage = "events may not have been stored; retry with the same messageIds (duplicates are dropped)"

// response is the 200 answer: Segment's {"success":true} plus the items
// that were not accepted and those accepted with a warning.
type response struct {
	Success  bool                 `json:"success"`
	Rejected []tracking.Rejection `json:"rejected,omitempty"`
	Warnings []tracking.Rejection `json:"warnings,omitempty"`
}

// clientIP is the connection's address, or, when the connection comes from
// a trusted proxy, the right-most X-Forwarded-For address that is not a
// trusted proxy itself (left-most entries are client-supplied and spoofable).
func (h *Handler) clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	// Zones ("fe80::1%eth0") are local to a host, and an X-Forwarded-For
	// one could be of any length: context.ip never carries one.
	ip := ap.Addr().Unmap().WithZone("")
	if !h.trusted(ip) {
		return ip
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return ip
		}
		hop = hop.Unmap().WithZone("")
		if !h.trusted(hop) {
			return hop
		}
		ip = hop
	}
	return ip
}

func (h *Handler) trusted(ip netip.Addr) bool {
	for _, p := range h.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// writeKey takes the key from Basic auth, then from the body's writeKey
// (which a Bearer-authenticated call must carry). In Basic auth the key is
// the username and the password is ignored: "key:" and "key" without a
// colon both work (the Segment docs show both). malformed says what is
// wrong with a Basic header that holds no usable key (not base64, empty, or
// the key sent as the password); the body's writeKey still applies then.
func writeKey(r *http.Request, bodyKey string) (key, malformed string) {
	scheme, cred, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if strings.EqualFold(scheme, "basic") {
		user, problem := basicUser(strings.TrimSpace(cred))
		if problem == "" {
			return user, ""
		}
		malformed = problem
	}
	return bodyKey, malformed
}

// basicUser decodes Basic credentials and returns the username, or what is
// wrong with them.
func basicUser(cred string) (string, string) {
	const how = `; send base64("WRITE_KEY:") with the write key as the username`
	if cred == "" {
		return "", "the Basic credentials are empty" + how
	}
	raw, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		// Some clients leave out the padding.
		if raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(cred, "=")); err != nil {
			return "", "the Basic credentials are not base64" + how
		}
	}
	user, pass, _ := strings.Cut(string(raw), ":")
	switch {
	case user != "":
		return user, ""
	case pass != "":
		return "", "the Basic-auth username is empty and the password is set: the write key goes in the username" + how
	default:
		return "", "the Basic credentials hold no write key" + how
	}
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
			return nil, &tracking.RequestError{Code: "invalid_encoding", Message: "body is not gzip data (it is sent with Content-Encoding: gzip)"}
		}
		defer zr.Close()
		src = zr
	default:
		return nil, &tracking.RequestError{Code: "unsupported_encoding", Message: fmt.Sprintf("Content-Encoding %q is not supported (use gzip or none)", enc)}
	}
	b, err := io.ReadAll(io.LimitReader(src, tracking.MaxRequestBytes+1))
	if err != nil {
		if src != r.Body {
			return nil, &tracking.RequestError{Code: "invalid_encoding", Message: "gzip body is corrupt or truncated"}
		}
		return nil, &tracking.RequestError{Code: "invalid_request", Message: "body could not be read completely"}
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
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	// Echo what the preflight asks for: analytics.js can add custom
	// delivery headers (deliveryStrategy.config.headers).
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
	} else {
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Content-Encoding, X-Retry-Count")
	}
	h.Set("Access-Control-Expose-Headers", "Retry-After, X-RateLimit-Reset")
	h.Set("Access-Control-Max-Age", "86400")
}

func writeRequestError(w http.ResponseWriter, e *tracking.RequestError) {
	if len(e.Rejected) > 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": e.Code, "message": e.Message, "rejected": e.Rejected})
		return
	}
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
