// Package schedule parses sync schedules — manual, an interval, or a
// 5-field cron expression read in an IANA time zone — and computes their
// next run time.
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// MinInterval is the shortest interval a schedule may have (Segment's UI
// offers 15 minutes and up; Switchyard allows shorter for small models).
const MinInterval = time.Minute

// Strategy is how a sync's runs start.
type Strategy int

// The strategies.
const (
	Manual Strategy = iota
	Interval
	Cron
)

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("invalid schedule")

// Schedule is a parsed schedule.
type Schedule struct {
	// Strategy is manual, interval or cron.
	Strategy Strategy
	// Every is the interval (Interval).
	Every time.Duration
	// Expr is the 5-field cron expression (Cron).
	Expr string
	// Location is the time zone of Expr (Cron; UTC by default).
	Location *time.Location

	cron cron.Schedule
}

var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse builds a schedule from its parts: strategy "manual", "interval"
// (interval is a Go duration, at least MinInterval) or "cron" (expr has 5
// fields or is a descriptor such as @daily; tz is an IANA zone, UTC when
// empty).
func Parse(strategy, interval, expr, tz string) (Schedule, error) {
	switch strategy {
	case "", "manual":
		return Schedule{Strategy: Manual}, nil
	case "interval":
		d, err := time.ParseDuration(strings.TrimSpace(interval))
		if err != nil {
			return Schedule{}, fmt.Errorf("%w: interval %q is not a duration such as 15m or 1h", ErrInvalid, interval)
		}
		if d < MinInterval {
			return Schedule{}, fmt.Errorf("%w: interval %s is shorter than %s", ErrInvalid, d, MinInterval)
		}
		return Schedule{Strategy: Interval, Every: d}, nil
	case "cron":
		loc := time.UTC
		if tz != "" {
			l, err := time.LoadLocation(tz)
			if err != nil {
				return Schedule{}, fmt.Errorf("%w: time zone %q is not an IANA time zone", ErrInvalid, tz)
			}
			loc = l
		}
		expr = strings.TrimSpace(expr)
		if strings.HasPrefix(expr, "@every") {
			return Schedule{}, fmt.Errorf("%w: use the interval strategy for %q", ErrInvalid, expr)
		}
		if strings.HasPrefix(expr, "CRON_TZ=") || strings.HasPrefix(expr, "TZ=") {
			return Schedule{}, fmt.Errorf("%w: give the time zone in time_zone, not in the expression", ErrInvalid)
		}
		c, err := parser.Parse(expr)
		if err != nil {
			return Schedule{}, fmt.Errorf("%w: cron expression %q: %v", ErrInvalid, expr, err)
		}
		return Schedule{Strategy: Cron, Expr: expr, Location: loc, cron: c}, nil
	}
	return Schedule{}, fmt.Errorf("%w: unknown strategy %q (manual, interval or cron)", ErrInvalid, strategy)
}

// ParseLegacy reads the one-string form of Sync.schedule: "" (manual),
// "@every <duration>", or a cron expression optionally prefixed with
// "CRON_TZ=<zone> ".
func ParseLegacy(s string) (Schedule, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == "manual":
		return Parse("manual", "", "", "")
	case strings.HasPrefix(s, "@every "):
		return Parse("interval", strings.TrimPrefix(s, "@every "), "", "")
	case strings.HasPrefix(s, "CRON_TZ="):
		tz, expr, _ := strings.Cut(strings.TrimPrefix(s, "CRON_TZ="), " ")
		return Parse("cron", "", expr, tz)
	}
	return Parse("cron", "", s, "")
}

// Legacy is the one-string form of s (see ParseLegacy).
func (s Schedule) Legacy() string {
	switch s.Strategy {
	case Interval:
		return "@every " + s.Every.String()
	case Cron:
		if s.Location != nil && s.Location != time.UTC {
			return "CRON_TZ=" + s.Location.String() + " " + s.Expr
		}
		return s.Expr
	}
	return ""
}

// Next is the first run time strictly after last; the zero time for a
// manual schedule. Intervals count from last; cron times are computed in
// the schedule's zone (so "0 6 * * *" in Europe/Paris is 06:00 Paris time
// in summer and in winter).
func (s Schedule) Next(last time.Time) time.Time {
	switch s.Strategy {
	case Interval:
		return last.Add(s.Every)
	case Cron:
		return s.cron.Next(last.In(s.Location))
	}
	return time.Time{}
}
