package httpapi

import (
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimiter is the optional per-source rate limit: a token bucket of
// EventsPerSecond events per second per source, with a burst of at least
// one full batch. A request that would exceed it is refused whole with 429,
// Retry-After and X-RateLimit-Reset (seconds), which every Segment SDK
// honours (segment-compat.md §1.5, appendix 5).
type RateLimiter struct {
	// EventsPerSecond per source; 0 disables the limit.
	EventsPerSecond float64

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// Allow takes n events from source's bucket; when it cannot, it takes
// nothing and says how long to wait.
func (l *RateLimiter) Allow(source string, n int) (time.Duration, bool) {
	if l == nil || l.EventsPerSecond <= 0 {
		return 0, true
	}
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*rate.Limiter{}
	}
	lim, ok := l.m[source]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(l.EventsPerSecond), max(int(l.EventsPerSecond), 2500))
		l.m[source] = lim
	}
	l.mu.Unlock()
	now := time.Now()
	res := lim.ReserveN(now, n)
	if !res.OK() {
		return time.Second, false
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return max(d, time.Second), false
	}
	return 0, true
}

// peerIP is the address of the connection's peer.
func (h *Handler) peerIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
