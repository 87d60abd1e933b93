// Package metrics keeps per-destination delivery metrics (delivered, not
// delivered by reason, retried, filtered, latency from receipt to
// acceptance) in minute and hour buckets, and the latest error samples.
//
// The counters live in the process's memory: each Delivery replica counts
// what it delivered and a restart starts from zero.
package metrics

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"math"
	"sort"
	"sync"
	"time"
)

// Windows are the periods metrics are reported for.
var Windows = map[string]time.Duration{
	"10m": 10 * time.Minute,
	"1h":  time.Hour,
	"24h": 24 * time.Hour,
	"7d":  7 * 24 * time.Hour,
}

// MaxSamples is how many error samples a destination keeps.
const MaxSamples = 10

// latency histogram: bin i holds latencies up to binBound(i).
const (
	bins      = 48
	binFactor = 1.45
)

func binBound(i int) time.Duration {
	return time.Duration(float64(time.Millisecond) * math.Pow(binFactor, float64(i)))
}

func binOf(d time.Duration) int {
	if d <= time.Millisecond {
		return 0
	}
	i := int(math.Ceil(math.Log(float64(d)/float64(time.Millisecond)) / math.Log(binFactor)))
	return min(i, bins-1)
}

type bucket struct {
	delivered, retried, filtered uint64
	notDelivered                 map[string]uint64
	hist                         [bins]uint64
}

func (b *bucket) add(o *bucket) {
	b.delivered += o.delivered
	b.retried += o.retried
	b.filtered += o.filtered
	for k, v := range o.notDelivered {
		if b.notDelivered == nil {
			b.notDelivered = map[string]uint64{}
		}
		b.notDelivered[k] += v
	}
	for i := range b.hist {
		b.hist[i] += o.hist[i]
	}
}

// Sample is one failed attempt with what was sent and answered.
type Sample struct {
	// Time is when the attempt failed.
	Time time.Time
	// MessageID is the event's messageId.
	MessageID string
	// Reason is the failure class.
	Reason string
	// Status is the HTTP status, or 0.
	Status int
	// Attempt is the delivery attempt number.
	Attempt uint64
	// Final is true when the event was dead-lettered, false when retried.
	Final bool
	// Event is what the source sent (the event JSON).
	Event string
	// Request is the request to the destination.
	Request string
	// Response is the destination's answer, or the error.
	Response string
}

type dest struct {
	minutes map[int64]*bucket
	hours   map[int64]*bucket
	samples []Sample
	total   bucket
}

// Registry holds every destination's metrics. The zero value is not
// usable; use New.
type Registry struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*dest
}

// New returns an empty registry; now is the clock (time.Now when nil).
func New(now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{now: now, m: map[string]*dest{}}
}

func (r *Registry) update(id string, f func(b *bucket)) {
	t := r.now()
	minute, hour := t.Unix()/60, t.Unix()/3600
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.m[id]
	if d == nil {
		d = &dest{minutes: map[int64]*bucket{}, hours: map[int64]*bucket{}}
		r.m[id] = d
	}
	mb := d.minutes[minute]
	if mb == nil {
		mb = &bucket{}
		d.minutes[minute] = mb
		for k := range d.minutes {
			if k < minute-24*60 {
				delete(d.minutes, k)
			}
		}
	}
	hb := d.hours[hour]
	if hb == nil {
		hb = &bucket{}
		d.hours[hour] = hb
		for k := range d.hours {
			if k < hour-7*24 {
				delete(d.hours, k)
			}
		}
	}
	f(mb)
	f(hb)
	f(&d.total)
}

// Delivered records an event the destination accepted, latency after it
// was received.
func (r *Registry) Delivered(id string, latency time.Duration) {
	r.update(id, func(b *bucket) { b.delivered++; b.hist[binOf(latency)]++ })
	exported.outcome(id, "delivered", "")
	exported.latency.Record(context.Background(), latency.Seconds(), metric.WithAttributes(attribute.String("destination", id)))
}

// Retried records a failed attempt that will be retried.
func (r *Registry) Retried(id string) {
	r.update(id, func(b *bucket) { b.retried++ })
	exported.outcome(id, "retrying", "")
}

// Filtered records an event a filter or the integrations object kept away.
func (r *Registry) Filtered(id string) {
	r.update(id, func(b *bucket) { b.filtered++ })
	exported.outcome(id, "filtered", "")
}

// NotDelivered records an event given up on (dead-lettered) for reason.
func (r *Registry) NotDelivered(id, reason string) {
	exported.outcome(id, "dead_lettered", reason)
	r.update(id, func(b *bucket) {
		if b.notDelivered == nil {
			b.notDelivered = map[string]uint64{}
		}
		b.notDelivered[reason]++
	})
}

// AddSample keeps s among the destination's latest error samples.
func (r *Registry) AddSample(id string, s Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.m[id]
	if d == nil {
		d = &dest{minutes: map[int64]*bucket{}, hours: map[int64]*bucket{}}
		r.m[id] = d
	}
	d.samples = append(d.samples, s)
	if len(d.samples) > MaxSamples {
		d.samples = d.samples[len(d.samples)-MaxSamples:]
	}
}

// Samples returns the latest error samples, newest first.
func (r *Registry) Samples(id string) []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.m[id]
	if d == nil {
		return nil
	}
	out := make([]Sample, len(d.samples))
	for i, s := range d.samples {
		out[len(d.samples)-1-i] = s
	}
	return out
}

// Summary is a destination's metrics over one window.
type Summary struct {
	// Delivered counts accepted events.
	Delivered uint64
	// NotDelivered counts dead-lettered events per reason.
	NotDelivered map[string]uint64
	// Retried counts failed attempts that were retried.
	Retried uint64
	// Filtered counts events filters or routing kept away.
	Filtered uint64
	// P95 is the 95th percentile of receipt-to-acceptance latency (an
	// upper bound from a log histogram), 0 without deliveries.
	P95 time.Duration
	// P99 is the 99th percentile, likewise.
	P99 time.Duration
}

// Window sums the buckets of the last window (at most 7 days; up to 24 h
// with minute resolution, beyond with hour resolution).
func (r *Registry) Window(id string, window time.Duration) Summary {
	t := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var sum bucket
	if d := r.m[id]; d != nil {
		if window <= 24*time.Hour {
			from := t.Add(-window).Unix() / 60
			for k, b := range d.minutes {
				if k > from {
					sum.add(b)
				}
			}
		} else {
			from := t.Add(-window).Unix() / 3600
			for k, b := range d.hours {
				if k >= from {
					sum.add(b)
				}
			}
		}
	}
	s := Summary{Delivered: sum.delivered, Retried: sum.retried, Filtered: sum.filtered, NotDelivered: map[string]uint64{}}
	for k, v := range sum.notDelivered {
		s.NotDelivered[k] = v
	}
	s.P95, s.P99 = quantile(&sum.hist, 0.95), quantile(&sum.hist, 0.99)
	return s
}

// Total is the destination's metrics since the process started.
func (r *Registry) Total(id string) Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.m[id]
	if d == nil {
		return Summary{NotDelivered: map[string]uint64{}}
	}
	s := Summary{Delivered: d.total.delivered, Retried: d.total.retried, Filtered: d.total.filtered, NotDelivered: map[string]uint64{}}
	for k, v := range d.total.notDelivered {
		s.NotDelivered[k] = v
	}
	return s
}

func quantile(h *[bins]uint64, q float64) time.Duration {
	var n uint64
	for _, c := range h {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	var acc uint64
	for i, c := range h {
		acc += c
		if acc >= rank {
			return binBound(i)
		}
	}
	return binBound(bins - 1)
}

// Reasons returns the keys of m sorted (stable output for APIs).
func Reasons(m map[string]uint64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
