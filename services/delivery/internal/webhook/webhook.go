// Package webhook sends events to HTTP endpoints: one POST of the event's
// JSON per event.
package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Sender posts events. The zero value is not usable; use New.
type Sender struct {
	client *http.Client
}

// New returns a sender whose requests go through transport (e.g. an
// otelhttp transport, so the trace continues to the destination).
func New(transport http.RoundTripper, timeout time.Duration) *Sender {
	return &Sender{client: &http.Client{Transport: transport, Timeout: timeout}}
}

// StatusError is a non-2xx answer.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("endpoint answered %d: %s", e.Status, e.Body)
}

// Send posts body to url with headers; nil means the endpoint answered 2xx.
func (s *Sender) Send(ctx context.Context, url string, headers map[string]string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Switchyard-Webhook/1")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{Status: resp.StatusCode, Body: string(snippet)}
	}
	return nil
}
