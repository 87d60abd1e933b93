package dispatch

import (
	"sync"
	"time"
)

// gate is ordered delivery per userId (the destination setting
// orderByUserId): of each user at most one event is in flight, the others
// wait in arrival order behind it, unsettled (events of one pack in the
// pack's order). A retried event is held in memory for its backoff
// instead of being given back, so the user's later events cannot overtake
// it, while other users' events keep flowing. The messages of held events
// stay unacknowledged (a pack until all its events are settled) and get
// the session's in-progress heartbeat, so JetStream does not redeliver
// them. On shutdown a held retry is given back with its remaining delay
// and the user's waiting events slightly after it, so after a restart
// they come back in order (best effort: a message is nak'ed with the
// longest delay of its events, and JetStream may redeliver earlier after
// a crash of the server itself).
type gate struct {
	s      *session
	mu     sync.Mutex
	closed bool
	users  map[string]*userQueue
	// timers counts scheduled retries not yet run or cancelled.
	timers sync.WaitGroup
}

// userQueue is one user's events: head is in flight or waits for its
// retry (retry != nil, due at retryAt), pending wait behind it.
type userQueue struct {
	head    *tracked
	pending []*tracked
	retry   *time.Timer
	retryAt time.Time
}

func newGate(s *session) *gate { return &gate{s: s, users: map[string]*userQueue{}} }

// acquire makes t its user's head and returns true, or queues t behind
// the user's head and returns false. A redelivery of an event already
// held (same stream, sequence and index) is dropped: the held copy's
// outcome settles it too.
func (g *gate) acquire(t *tracked) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		g.s.settleEvent(t, true, 0)
		return false
	}
	q := g.users[t.key]
	if q == nil {
		g.users[t.key] = &userQueue{head: t}
		return true
	}
	if t.dedupeBase != "" {
		for _, held := range append([]*tracked{q.head}, q.pending...) {
			if held.dedupeBase != t.dedupeBase {
				continue
			}
			held.mu.Lock()
			done := held.settled
			if done == nil {
				held.dups = append(held.dups, t.c)
			}
			held.mu.Unlock()
			if done != nil { // settled, not yet released
				g.s.settle(t.c, done.back, done.delay)
			}
			return false
		}
	}
	q.pending = append(q.pending, t)
	return false
}

// release ends t's turn (it was acked or dead-lettered) and returns the
// user's next event, now the head, or nil.
func (g *gate) release(t *tracked) *tracked {
	g.mu.Lock()
	defer g.mu.Unlock()
	q := g.users[t.key]
	if q == nil || q.head != t {
		return nil
	}
	if len(q.pending) == 0 {
		delete(g.users, t.key)
		return nil
	}
	if g.closed {
		g.giveBackInOrder(q.pending, 0)
		delete(g.users, t.key)
		return nil
	}
	q.head, q.pending = q.pending[0], q.pending[1:]
	return q.head
}

// abandon gives back t, its user's head, which was never started, and
// the user's waiting events after it.
func (g *gate) abandon(t *tracked) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.s.settleEvent(t, true, 0)
	if q := g.users[t.key]; q != nil && q.head == t {
		g.giveBackInOrder(q.pending, 0)
		delete(g.users, t.key)
	}
}

// wait holds t, its user's head, for delay and then makes the next
// attempt.
func (g *gate) wait(t *tracked, delay time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	q := g.users[t.key]
	if g.closed || q == nil || q.head != t {
		g.s.settleEvent(t, true, delay)
		if q != nil && q.head == t {
			g.giveBackInOrder(q.pending, delay)
			delete(g.users, t.key)
		}
		return
	}
	g.timers.Add(1)
	q.retryAt = time.Now().Add(delay)
	q.retry = time.AfterFunc(delay, func() {
		defer g.timers.Done()
		g.mu.Lock()
		q.retry = nil
		g.mu.Unlock()
		t.attempt++
		g.s.sem <- struct{}{}
		defer func() { <-g.s.sem }()
		g.s.drive(t)
	})
}

// close stops handing out events: held retries are given back with their
// remaining delay, their users' waiting events just after.
func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for key, q := range g.users {
		if q.retry == nil || !q.retry.Stop() {
			continue // in flight: release naks the waiting events
		}
		g.timers.Done()
		rem := max(time.Until(q.retryAt), 0)
		g.s.settleEvent(q.head, true, rem)
		g.giveBackInOrder(q.pending, rem)
		delete(g.users, key)
	}
}

// giveBackInOrder gives back waiting events so they are redelivered after
// delay, in their order (events of one message share its delay).
func (g *gate) giveBackInOrder(ts []*tracked, delay time.Duration) {
	for i, t := range ts {
		g.s.settleEvent(t, true, delay+time.Duration(i+1)*100*time.Millisecond)
	}
}
