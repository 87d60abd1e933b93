package pipeline

import (
	"testing"
	"time"

	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations"
)

func TestRetryableStatus(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]bool{
		400: false, 401: false, 403: false, 404: false, 413: false, 422: false, 301: false,
		408: true, 423: true, 429: true, 500: true, 501: false, 502: true, 503: true, 504: true, 599: true,
	} {
		if got := destinations.RetryableStatus(status); got != want {
			t.Errorf("RetryableStatus(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestDelayIsRandomisedExponentialAndHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	lo := RetryPolicy{Base: time.Second, Max: time.Minute, Rand: func() float64 { return 0 }}
	hi := RetryPolicy{Base: time.Second, Max: time.Minute, Rand: func() float64 { return 0.999999 }}
	for _, tc := range []struct {
		attempt        uint64
		retryAfter     time.Duration
		wantLo, wantHi time.Duration
	}{
		{1, 0, 500 * time.Millisecond, time.Second},
		{2, 0, time.Second, 2 * time.Second},
		{4, 0, 4 * time.Second, 8 * time.Second},
		{10, 0, 30 * time.Second, time.Minute}, // capped
		{1, 30 * time.Second, 30 * time.Second, 30 * time.Second},
	} {
		l, h := lo.Delay(tc.attempt, tc.retryAfter), hi.Delay(tc.attempt, tc.retryAfter)
		if l != tc.wantLo || h < tc.wantHi-time.Millisecond || h > tc.wantHi {
			t.Errorf("Delay(%d, %v) in [%v, %v], want [%v, %v]", tc.attempt, tc.retryAfter, l, h, tc.wantLo, tc.wantHi)
		}
	}
	p := RetryPolicy{MaxAge: 4 * time.Hour}
	rcv := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	if p.GiveUp(rcv, rcv.Add(3*time.Hour), time.Minute) {
		t.Error("GiveUp at 3h with a 1 min delay, want a retry within the 4 h window")
	}
	if !p.GiveUp(rcv, rcv.Add(4*time.Hour-30*time.Second), time.Minute) {
		t.Error("no GiveUp when the next attempt falls after 4 h")
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"30": 30 * time.Second, "0": 0, "": 0, "-5": 0, "soon": 0,
		"Mon, 01 Jan 2024 00:01:00 GMT": time.Minute,
	} {
		if got := destinations.ParseRetryAfter(in, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}
