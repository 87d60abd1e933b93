package dispatch

import (
	"context"
	"sync"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// gate is ordered delivery per userId (the destination setting
// orderByUserId): of each user at most one event is in flight, the others
// wait in arrival order behind it, unacknowledged. A retried event is held
// in memory for its backoff instead of being nak'ed, so the user's later
// events cannot overtake it, while other users' events keep flowing.
// Held messages get an in-progress ack every heartbeat so JetStream does
// not redeliver them. On shutdown a held retry is nak'ed with its
// remaining delay and the user's waiting events slightly after it, so
// after a restart they come back in order (best effort: JetStream may
// redeliver earlier after a crash of the server itself).
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
// the user's head and returns false. A redelivery of a message already
// held is dropped (the held copy will ack it).
func (g *gate) acquire(t *tracked) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		_ = t.msg.Nak()
		return false
	}
	q := g.users[t.key]
	if q == nil {
		g.users[t.key] = &userQueue{head: t}
		return true
	}
	if t.seq != 0 {
		if q.head.seq == t.seq {
			return false
		}
		for _, p := range q.pending {
			if p.seq == t.seq {
				return false
			}
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
		nakInOrder(q.pending, 0)
		delete(g.users, t.key)
		return nil
	}
	q.head, q.pending = q.pending[0], q.pending[1:]
	return q.head
}

// abandon naks t, its user's head, which was never started, and the
// user's waiting events after it.
func (g *gate) abandon(t *tracked) {
	g.mu.Lock()
	defer g.mu.Unlock()
	_ = t.msg.Nak()
	if q := g.users[t.key]; q != nil && q.head == t {
		nakInOrder(q.pending, 0)
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
		_ = t.msg.NakWithDelay(delay)
		if q != nil && q.head == t {
			nakInOrder(q.pending, delay)
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

// close stops handing out events: held retries are nak'ed with their
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
		_ = q.head.msg.NakWithDelay(rem)
		nakInOrder(q.pending, rem)
		delete(g.users, key)
	}
}

// nakInOrder naks waiting events so they are redelivered after delay, in
// their order.
func nakInOrder(ts []*tracked, delay time.Duration) {
	for i, t := range ts {
		_ = t.msg.NakWithDelay(delay + time.Duration(i+1)*100*time.Millisecond)
	}
}

// held returns the messages waiting in memory (retries and queued
// events), which need in-progress acks.
func (g *gate) held() []natsjs.Msg {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []natsjs.Msg
	for _, q := range g.users {
		if q.retry != nil {
			out = append(out, q.head.msg)
		}
		for _, p := range q.pending {
			out = append(out, p.msg)
		}
	}
	return out
}

// heartbeat sends in-progress acks for the held messages every interval
// until ctx is done.
func (g *gate) heartbeat(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			for _, m := range g.held() {
				_ = m.InProgress()
			}
		}
	}
}

// ackWait is the consumers' AckWait: two attempts plus a batch wait and a
// margin.
func (d *Dispatcher) ackWait() time.Duration {
	return 2*d.opts.SendTimeout + d.opts.BatchWait + 30*time.Second
}

// heartbeatEvery is how often held messages are marked in progress.
func (s *session) heartbeatEvery() time.Duration { return s.d.ackWait() / 4 }
