package destinations

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"golang.org/x/net/http/httpguts"
)

// HashedKeyPrefix starts the safe form of a messageId that cannot travel
// as a header value as it is (see IdempotencyKey).
const HashedKeyPrefix = "sha256:"

// HeaderSafe reports whether s reaches a receiver byte for byte as an HTTP
// header value: printable ASCII (0x20–0x7E) without a leading or trailing
// space. Go's client refuses control characters and line breaks, trims
// surrounding whitespace, and passes other bytes (UTF-8) on as opaque octets
// that many servers decode as Latin-1; none of those arrive as sent.
func HeaderSafe(s string) bool {
	if s == "" {
		return true
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// IdempotencyKey is the Idempotency-Key header value of an event: its
// messageId when HeaderSafe, otherwise "sha256:" and the lowercase hex
// SHA-256 of the messageId's UTF-8 bytes. A messageId is any string of up
// to 100 characters (as Segment accepts), so event data never makes the
// request unsendable, and the key of one event is the same on every attempt.
func IdempotencyKey(messageID string) string {
	if HeaderSafe(messageID) {
		return messageID
	}
	return HashedKey(messageID)
}

// HashedKey is the safe form of a messageId: "sha256:<hex>".
func HashedKey(messageID string) string {
	sum := sha256.Sum256([]byte(messageID))
	return HashedKeyPrefix + hex.EncodeToString(sum[:])
}

// CheckRequest returns an error when req cannot be sent as it is: a URL
// that is not absolute http(s) with a host, or a header whose name or
// value the HTTP client refuses (the transport's own rules, from
// golang.org/x/net/http/httpguts). Such a request fails the same way on
// every attempt. The error names the header, never its value (it may be a
// secret).
func CheckRequest(req *http.Request) error {
	if req.URL == nil || (req.URL.Scheme != "http" && req.URL.Scheme != "https") {
		return errors.New("URL is not an absolute http or https URL")
	}
	if req.URL.Host == "" {
		return errors.New("URL has no host")
	}
	names := make([]string, 0, len(req.Header))
	for k := range req.Header {
		names = append(names, k)
	}
	sort.Strings(names) // the same error for the same request
	for _, k := range names {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("header name %q is not a valid HTTP token", k)
		}
		for _, v := range req.Header[k] {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("header %q: value holds a control character or line break", k)
			}
		}
	}
	return nil
}
