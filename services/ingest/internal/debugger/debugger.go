// Package debugger keeps the latest events of every source, accepted or
// rejected with the reason, for the console's live event debugger.
//
// It is a fixed-size ring per source in this process's memory: bounded
// (Capacity events × MaxPayload bytes per source), lost on restart, and per
// replica when Ingest runs several (each shows what it received).
package debugger

import (
	"sync"
	"sync/atomic"
	"time"
)

// Capacity is how many events a source keeps; MaxPayload cuts payloads.
const (
	Capacity   = 200
	MaxPayload = 8 << 10
)

// Statuses of an entry.
const (
	Accepted  = "accepted"
	Rejected  = "rejected"
	Duplicate = "duplicate"
)

// Entry is one event as Ingest saw it.
type Entry struct {
	Seq        uint64
	ReceivedAt time.Time
	MessageID  string
	Type       string
	Event      string
	Status     string
	Code       string
	Reason     string
	Payload    string
}

// Debugger holds the rings. The zero value is ready to use.
type Debugger struct {
	seq   atomic.Uint64
	mu    sync.RWMutex
	rings map[string]*ring
}

type ring struct {
	mu      sync.Mutex
	entries [Capacity]Entry
	next    int
	full    bool
}

// Record keeps e as the newest entry of a source, assigning its seq.
func (d *Debugger) Record(sourceID string, e Entry) {
	if len(e.Payload) > MaxPayload {
		e.Payload = e.Payload[:MaxPayload]
	}
	d.mu.RLock()
	r := d.rings[sourceID]
	d.mu.RUnlock()
	if r == nil {
		d.mu.Lock()
		if d.rings == nil {
			d.rings = map[string]*ring{}
		}
		if r = d.rings[sourceID]; r == nil {
			r = &ring{}
			d.rings[sourceID] = r
		}
		d.mu.Unlock()
	}
	r.mu.Lock()
	// The seq is taken under the ring's lock so a ring is always in seq order.
	e.Seq = d.seq.Add(1)
	r.entries[r.next] = e
	r.next = (r.next + 1) % Capacity
	r.full = r.full || r.next == 0
	r.mu.Unlock()
}

// Since returns up to limit entries of a source with a seq above after,
// oldest first; with after 0 it returns the newest limit entries.
func (d *Debugger) Since(sourceID string, after uint64, limit int) []Entry {
	d.mu.RLock()
	r := d.rings[sourceID]
	d.mu.RUnlock()
	if r == nil || limit <= 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	start := 0
	if r.full {
		n, start = Capacity, r.next
	}
	out := make([]Entry, 0, min(n, limit))
	for i := range n {
		e := r.entries[(start+i)%Capacity]
		if e.Seq > after {
			out = append(out, e)
		}
	}
	if len(out) > limit {
		if after == 0 {
			out = out[len(out)-limit:]
		} else {
			out = out[:limit]
		}
	}
	return out
}

// LastSeq is the largest seq handed out so far (0 before the first event).
func (d *Debugger) LastSeq() uint64 { return d.seq.Load() }
