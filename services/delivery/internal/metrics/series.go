package metrics

import "time"

// Point is one minute of a destination's metrics.
type Point struct {
	// Start is the minute's start.
	Start time.Time
	Summary
}

// Minutes returns the last n minutes of a destination's metrics, oldest
// first, one point per minute including empty ones (so a chart has a
// steady time axis); the current, unfinished minute is the last point.
func (r *Registry) Minutes(id string, n int) []Point {
	now := r.now().Unix() / 60
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.m[id]
	out := make([]Point, 0, n)
	for m := now - int64(n) + 1; m <= now; m++ {
		p := Point{Start: time.Unix(m*60, 0).UTC(), Summary: Summary{NotDelivered: map[string]uint64{}}}
		if d != nil {
			if b := d.minutes[m]; b != nil {
				p.Delivered, p.Retried, p.Filtered = b.delivered, b.retried, b.filtered
				for k, v := range b.notDelivered {
					p.NotDelivered[k] = v
				}
				p.P95, p.P99 = quantile(&b.hist, 0.95), quantile(&b.hist, 0.99)
			}
		}
		out = append(out, p)
	}
	return out
}
