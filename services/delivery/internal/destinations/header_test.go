package destinations_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations"
)

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	hashed := func(id string) string {
		sum := sha256.Sum256([]byte(id))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	for _, tc := range []struct {
		name, id, want string
	}{
		{"a UUID is sent as it is", "0b9b1c5e-6a0e-4c2f-9a53-1f6c0c1a7e42", "0b9b1c5e-6a0e-4c2f-9a53-1f6c0c1a7e42"},
		{"printable ASCII with inner spaces is sent as it is", `ajs-next-1 "x" ~!@#$%^&*()`, `ajs-next-1 "x" ~!@#$%^&*()`},
		{"empty stays empty", "", ""},
		{"a control character is hashed", "one-ctl-\u0007", hashed("one-ctl-\u0007")},
		{"a NUL is hashed", "a\x00b", hashed("a\x00b")},
		{"CR LF is hashed", "a\r\nX-Injected: 1", hashed("a\r\nX-Injected: 1")},
		{"a tab is hashed", "a\tb", hashed("a\tb")},
		{"DEL is hashed", "a\x7fb", hashed("a\x7fb")},
		{"a leading space is hashed (Go trims it)", " a", hashed(" a")},
		{"a trailing space is hashed (Go trims it)", "a ", hashed("a ")},
		{"non-ASCII is hashed (Latin-1 on many servers)", "é-unicode", hashed("é-unicode")},
		{"invalid UTF-8 is hashed", "a\xffb", hashed("a\xffb")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := destinations.IdempotencyKey(tc.id)
			if got != tc.want {
				t.Errorf("IdempotencyKey(%q) = %q, want %q", tc.id, got, tc.want)
			}
			if got != tc.id && got != destinations.HashedKey(tc.id) {
				t.Errorf("IdempotencyKey(%q) = %q, want the id or HashedKey", tc.id, got)
			}
			req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/", nil)
			req.Header.Set("Idempotency-Key", got)
			if err := destinations.CheckRequest(req); err != nil {
				t.Errorf("the key %q is not a valid header value: %v", got, err)
			}
		})
	}
}

// TestDoHTTPRequestThatCannotBeSent checks that DoHTTP classifies a
// request the HTTP client would refuse as a final invalid_payload failure
// and sends nothing, where the client's own error used to count as a
// retryable network error.
func TestDoHTTPRequestThatCannotBeSent(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	client := destinations.NewHTTPClient(http.DefaultTransport.(*http.Transport).Clone(), 5*time.Second)
	for _, tc := range []struct {
		name   string
		url    string
		header [2]string
		want   string // in the error
	}{
		{"a control character in a value", srv.URL, [2]string{"X-Echo", "a\x07b"}, `header "X-Echo"`},
		{"a line break in a value", srv.URL, [2]string{"X-Echo", "a\r\nX-Injected: 1"}, `header "X-Echo"`},
		{"a space in a name", srv.URL, [2]string{"X Echo", "s3cret"}, `header name "X Echo"`},
		{"a URL without host", "http:///path", [2]string{"X-Echo", "s3cret"}, "no host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header[tc.header[0]] = []string{tc.header[1]}
			_, err = destinations.DoHTTP(t.Context(), client, req, []byte(`{}`))
			var f *destinations.Failure
			if !errors.As(err, &f) {
				t.Fatalf("err = %v, want a *Failure", err)
			}
			if f.Retryable || f.Reason != destinations.ReasonInvalid || f.Status != 0 {
				t.Errorf("failure = retryable %v reason %q status %d, want final invalid_payload 0", f.Retryable, f.Reason, f.Status)
			}
			if !strings.Contains(f.Error(), "build request") || !strings.Contains(f.Error(), tc.want) {
				t.Errorf("error = %q, want build request … %s", f.Error(), tc.want)
			}
			if strings.Contains(f.Error(), tc.header[1]) {
				t.Errorf("error = %q shows the header value (it may be a secret)", f.Error())
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the receiver got %d requests, want 0", n)
	}
	t.Run("a valid request is sent", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, nil)
		req.Header.Set("X-Echo", "fine, with UTF-8: é")
		if _, err := destinations.DoHTTP(t.Context(), client, req, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		if n := hits.Load(); n != 1 {
			t.Errorf("the receiver got %d requests, want 1", n)
		}
	})
}
