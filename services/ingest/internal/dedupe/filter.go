// Package dedupe holds the in-memory front of Ingest's messageId
// de-duplication: a time-bucketed Bloom filter that answers "certainly
// never seen" for most new ids, so only ids it might have seen cost a
// lookup in the durable store (a JetStream KV bucket, see package events).
//
// The filter never decides that an id is a duplicate: a "maybe" is always
// confirmed against the store, so it can never drop a non-duplicate. Its
// memory is fixed at construction (Buckets+1 bit arrays of Bits bits); at
// rates beyond what it was sized for it only gets less selective (more
// lookups), never bigger.
package dedupe

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// FilterOptions size a Filter.
type FilterOptions struct {
	// Window is how long an id counts as seen.
	Window time.Duration
	// Buckets splits the window into this many time slices; a slice is
	// cleared as a whole when it falls out of the window. Default 24.
	Buckets int
	// Bits is the size of each slice's bit array, rounded up to a power of
	// two. Default 2^23 (1 MiB per slice): about 2.4% false positives with
	// 1M ids per slice.
	Bits uint64
}

// Filter is a time-bucketed Bloom filter of message ids. It is safe for
// concurrent use.
type Filter struct {
	seed  maphash.Seed
	span  int64 // nanoseconds per slice
	n     int64 // live slices (Buckets+1, so a full window is always covered)
	mask  uint64
	mu    sync.RWMutex
	slots []slot
	warm  atomic.Bool
}

type slot struct {
	epoch int64 // time index of the slice this slot holds; -1 when empty
	words []atomic.Uint64
}

// hashes per id.
const k = 4

// NewFilter returns an empty, cold filter (see SetWarm).
func NewFilter(o FilterOptions) *Filter {
	if o.Buckets <= 0 {
		o.Buckets = 24
	}
	if o.Bits == 0 {
		o.Bits = 1 << 23
	}
	bits := uint64(64)
	for bits < o.Bits {
		bits <<= 1
	}
	span := int64(o.Window) / int64(o.Buckets)
	if span <= 0 {
		span = 1
	}
	f := &Filter{seed: maphash.MakeSeed(), span: span, n: int64(o.Buckets) + 1, mask: bits - 1}
	f.slots = make([]slot, f.n)
	for i := range f.slots {
		f.slots[i] = slot{epoch: -1, words: make([]atomic.Uint64, bits/64)}
	}
	return f
}

// MemoryBytes is the filter's fixed memory for its bit arrays.
func (f *Filter) MemoryBytes() int { return len(f.slots) * len(f.slots[0].words) * 8 }

// SetWarm records whether the filter holds every id of the store's window
// (after the store's ids were replayed into it). A cold filter answers
// "maybe" for everything.
func (f *Filter) SetWarm(w bool) { f.warm.Store(w) }

// Warm reports SetWarm's last value.
func (f *Filter) Warm() bool { return f.warm.Load() }

func (f *Filter) positions(id string) [k]uint64 {
	h := maphash.String(f.seed, id)
	h1, h2 := h&0xffffffff, h>>32|1
	var p [k]uint64
	for i := range p {
		p[i] = (h1 + uint64(i)*h2 + uint64(i*i)) & f.mask
	}
	return p
}

// Add records id as seen at time at. Ids older than the window are ignored.
func (f *Filter) Add(id string, at time.Time) {
	epoch := at.UnixNano() / f.span
	s := f.slotFor(epoch)
	if s == nil {
		return
	}
	for _, p := range f.positions(id) {
		s.words[p/64].Or(1 << (p % 64))
	}
	f.mu.RUnlock()
}

// slotFor returns the slot of epoch with the read lock held, clearing a
// stale slot first; nil (no lock held) when epoch is out of the window.
func (f *Filter) slotFor(epoch int64) *slot {
	now := time.Now().UnixNano() / f.span
	if epoch <= now-f.n {
		return nil
	}
	// A future time (clock skew between replicas) counts as now, so it
	// cannot clear a slice that is still inside the window.
	epoch = min(epoch, now)
	i := epoch % f.n
	f.mu.RLock()
	if f.slots[i].epoch == epoch {
		return &f.slots[i]
	}
	f.mu.RUnlock()
	f.mu.Lock()
	if f.slots[i].epoch < epoch {
		for w := range f.slots[i].words {
			f.slots[i].words[w].Store(0)
		}
		f.slots[i].epoch = epoch
	}
	ok := f.slots[i].epoch == epoch
	f.mu.Unlock()
	if !ok {
		return nil
	}
	f.mu.RLock()
	return &f.slots[i]
}

// MayContain reports false only when id was certainly not added within the
// window (and the filter is warm); true means "look it up".
func (f *Filter) MayContain(id string, now time.Time) bool {
	if !f.warm.Load() {
		return true
	}
	cur := now.UnixNano() / f.span
	pos := f.positions(id)
	f.mu.RLock()
	defer f.mu.RUnlock()
	for i := range f.slots {
		s := &f.slots[i]
		if s.epoch <= cur-f.n {
			continue
		}
		hit := true
		for _, p := range pos {
			if s.words[p/64].Load()&(1<<(p%64)) == 0 {
				hit = false
				break
			}
		}
		if hit {
			return true
		}
	}
	return false
}
