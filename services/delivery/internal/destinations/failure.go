package destinations

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Failure reasons (the "not delivered" breakdown of delivery metrics).
const (
	ReasonRejected  = "rejected"          // a non-retryable answer (4xx other than 408/423/429, 501, 3xx)
	ReasonRetryable = "retryable_status"  // 408, 423, 429 or 5xx other than 501
	ReasonTimeout   = "timeout"           // no answer within the delivery timeout
	ReasonNetwork   = "network"           // connection refused/reset, DNS, …
	ReasonInvalid   = "invalid_payload"   // the event cannot be turned into a request that can be sent
	ReasonExhausted = "retries_exhausted" // still failing when the retry window closed
)

// Failure is a failed delivery attempt with what was sent and answered.
type Failure struct {
	// Retryable tells whether another attempt may succeed.
	Retryable bool
	// Reason is one of the Reason* constants.
	Reason string
	// Status is the HTTP status (0 without an answer).
	Status int
	// RetryAfter is the wait the destination asked for (Retry-After), or 0.
	RetryAfter time.Duration
	// Request summarises the request (method, URL, body, truncated).
	Request string
	// Response summarises the answer (status line, body, truncated).
	Response string
	// Err is the underlying error, if any.
	Err error
}

func (f *Failure) Error() string {
	switch {
	case f.Status != 0:
		return fmt.Sprintf("destination answered %d: %s", f.Status, truncate(f.Response, 200))
	case f.Err != nil:
		return fmt.Sprintf("%s: %v", f.Reason, f.Err)
	}
	return f.Reason
}

func (f *Failure) Unwrap() error { return f.Err }

// AsFailure turns any error into a *Failure: errors that are not Failures
// are network-class and retryable.
func AsFailure(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	reason := ReasonNetwork
	if isTimeout(err) {
		reason = ReasonTimeout
	}
	return &Failure{Retryable: true, Reason: reason, Err: err}
}

// Permanent wraps err as a non-retryable failure of the payload itself.
func Permanent(err error) error {
	return &Failure{Retryable: false, Reason: ReasonInvalid, Err: err}
}

// RetryableStatus reports whether an HTTP status is worth retrying: 408,
// 423, 429 and 5xx except 501 (Segment's actions rules). Everything else
// that is not 2xx is final.
func RetryableStatus(status int) bool {
	switch {
	case status == 408, status == 423, status == 429:
		return true
	case status == 501:
		return false
	case status >= 500 && status <= 599:
		return true
	}
	return false
}

// MaxSample is how much of a request or response body a failure keeps.
const MaxSample = 2048

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// RequestSummary renders a request for error samples. Authorization-like
// headers are masked.
func RequestSummary(req *http.Request, body []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", req.Method, redactURL(req.URL.String()))
	keys := make([]string, 0, len(req.Header))
	for k := range req.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.Join(req.Header[k], ", ")
		lk := strings.ToLower(k)
		if lk == "authorization" || strings.Contains(lk, "secret") || strings.Contains(lk, "token") || strings.Contains(lk, "key") && lk != "idempotency-key" {
			v = "••••••"
		}
		fmt.Fprintf(&b, "%s: %s\n", k, v)
	}
	b.WriteString("\n")
	b.WriteString(truncate(string(body), MaxSample))
	return b.String()
}

func redactURL(u string) string {
	// api_secret / api_key query parameters never reach an error sample.
	for _, p := range []string{"api_secret=", "api_key=", "token="} {
		if i := strings.Index(u, p); i >= 0 {
			j := strings.IndexByte(u[i:], '&')
			if j < 0 {
				u = u[:i+len(p)] + "••••••"
			} else {
				u = u[:i+len(p)] + "••••••" + u[i+j:]
			}
		}
	}
	return u
}

// DoHTTP sends req (whose body is body) and returns nil for a 2xx answer,
// otherwise a classified *Failure. Redirects are not followed (the client
// of Config.HTTP stops at them), so a 3xx is a final failure. A request
// that cannot be sent as built (CheckRequest) is a final invalid_payload
// failure without any attempt: the client would refuse it before
// connecting, on every attempt, with an error that looks like a network
// error.
func DoHTTP(ctx context.Context, client *http.Client, req *http.Request, body []byte) ([]byte, error) {
	req = req.WithContext(ctx)
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	if err := CheckRequest(req); err != nil {
		return nil, &Failure{Retryable: false, Reason: ReasonInvalid, Request: RequestSummary(req, body), Err: fmt.Errorf("build request: %w", err)}
	}
	resp, err := client.Do(req)
	if err != nil {
		reason := ReasonNetwork
		if isTimeout(err) {
			reason = ReasonTimeout
		}
		return nil, &Failure{Retryable: true, Reason: reason, Request: RequestSummary(req, body), Err: err}
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return respBody, nil
	}
	f := &Failure{
		Retryable: RetryableStatus(resp.StatusCode),
		Reason:    ReasonRejected,
		Status:    resp.StatusCode,
		Request:   RequestSummary(req, body),
		Response:  fmt.Sprintf("%s\n\n%s", resp.Status, truncate(string(respBody), MaxSample)),
	}
	if f.Retryable {
		f.Reason = ReasonRetryable
		f.RetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		f.Response = fmt.Sprintf("%s\nLocation: %s\n\n%s", resp.Status, loc, truncate(string(respBody), MaxSample))
	}
	return respBody, f
}

// ParseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// NewHTTPClient returns a client with its own connection pool (so one
// destination's stuck connections never starve another), the given
// per-attempt timeout, and redirects not followed.
func NewHTTPClient(transport http.RoundTripper, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
