package metrics

import (
	"testing"
	"time"
)

func TestMinutes(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 3, 15, 10, 30, 0, time.UTC)
	clock := now.Add(-2 * time.Minute)
	r := New(func() time.Time { return clock })
	r.Delivered("d", 5*time.Millisecond)
	r.Delivered("d", 5*time.Millisecond)
	clock = now
	r.Retried("d")
	r.NotDelivered("d", "rejected_4xx")
	pts := r.Minutes("d", 5)
	if len(pts) != 5 {
		t.Fatalf("points = %d, want 5", len(pts))
	}
	if !pts[4].Start.Equal(time.Date(2026, 12, 3, 15, 10, 0, 0, time.UTC)) || !pts[0].Start.Equal(time.Date(2026, 12, 3, 15, 6, 0, 0, time.UTC)) {
		t.Errorf("axis %s … %s, want 15:06 … 15:10", pts[0].Start, pts[4].Start)
	}
	if pts[2].Delivered != 2 || pts[4].Retried != 1 || pts[4].NotDelivered["rejected_4xx"] != 1 || pts[3].Delivered != 0 {
		t.Errorf("points = %+v", pts)
	}
	if got := r.Minutes("unknown", 3); len(got) != 3 || got[2].Delivered != 0 {
		t.Errorf("unknown destination: %+v", got)
	}
}
