package schedule_test

import (
	"errors"
	"testing"
	"time"

	"github.com/switchyardhq/switchyard/services/reverseetl/internal/schedule"
)

func TestNext(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name                     string
		strategy, iv, expr, zone string
		last                     string
		want                     string
	}{
		{"manual never runs by itself", "manual", "", "", "", "2025-01-01T00:00:00Z", ""},
		{"interval counts from the last run", "interval", "15m", "", "", "2025-01-01T10:07:00Z", "2025-01-01T10:22:00Z"},
		{"cron in UTC by default", "cron", "", "0 6 * * *", "", "2025-01-01T07:00:00Z", "2025-01-02T06:00:00Z"},
		{"cron in a zone in winter (UTC+1)", "cron", "", "0 6 * * *", "Europe/Paris", "2025-01-01T07:00:00Z", "2025-01-02T05:00:00Z"},
		{"cron in a zone in summer (UTC+2)", "cron", "", "0 6 * * *", "Europe/Paris", "2025-07-01T07:00:00Z", "2025-07-02T04:00:00Z"},
		{"cron weekdays skips the weekend", "cron", "", "30 9 * * 1-5", "UTC", "2025-01-03T10:00:00Z", "2025-01-06T09:30:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := schedule.Parse(tc.strategy, tc.iv, tc.expr, tc.zone)
			if err != nil {
				t.Fatal(err)
			}
			got := s.Next(at(tc.last))
			if tc.want == "" {
				if !got.IsZero() {
					t.Fatalf("Next = %v, want zero", got)
				}
				return
			}
			if !got.Equal(at(tc.want)) {
				t.Fatalf("Next = %v, want %v", got.UTC(), tc.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, strategy, iv, expr, zone string }{
		{"an interval under a minute", "interval", "30s", "", ""},
		{"an interval that is not a duration", "interval", "often", "", ""},
		{"a cron with 6 fields", "cron", "", "0 0 6 * * *", ""},
		{"an unknown zone", "cron", "", "0 6 * * *", "Mars/Olympus"},
		{"an unknown strategy", "hourly", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := schedule.Parse(tc.strategy, tc.iv, tc.expr, tc.zone); !errors.Is(err, schedule.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestLegacyRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "@every 1h0m0s", "0 6 * * 1-5", "CRON_TZ=Europe/Paris 0 6 * * *"} {
		p, err := schedule.ParseLegacy(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if got := p.Legacy(); got != s {
			t.Errorf("Legacy(ParseLegacy(%q)) = %q", s, got)
		}
	}
}
