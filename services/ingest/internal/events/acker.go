package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/semaphore"
)

// acker publishes groups of JetStream messages asynchronously and counts
// their acknowledgements: every message of a group carries the group's
// reply subject (one wildcard subscription receives them all), and the
// group is complete when each message was acknowledged or refused. Per
// message this costs no goroutine, no future and no JSON decoding (a
// PubAck is recognised by its prefix); the number of messages awaiting an
// ack is bounded by the window, so memory stays bounded when JetStream
// slows down (publishers wait instead).
type acker struct {
	nc     *nats.Conn
	prefix string // "_INBOX.<unique>."
	sub    *nats.Subscription
	window *semaphore.Weighted

	mu     sync.Mutex
	next   uint64
	groups map[uint64]*ackGroup
}

// ackWindow bounds messages published and not yet acknowledged, over all
// requests. It must hold the largest group (one message per event of a
// 2,500-event batch, the most a request can publish).
const ackWindow = 8192

type ackGroup struct {
	reply   string
	size    int // messages, i.e. window slots held
	pending int
	failed  int
	dups    int    // acknowledged as duplicates: stored before, within JetStream's window
	first   string // the first refusal
	done    chan struct{}
}

func newAcker(nc *nats.Conn) (*acker, error) {
	a := &acker{nc: nc, prefix: nats.NewInbox() + ".", window: semaphore.NewWeighted(ackWindow), groups: map[uint64]*ackGroup{}}
	sub, err := nc.Subscribe(a.prefix+"*", a.handle)
	if err != nil {
		return nil, fmt.Errorf("subscribe to acknowledgements: %w", err)
	}
	// Acks are tiny; the window bounds how many can be pending.
	_ = sub.SetPendingLimits(4*ackWindow, 16<<20)
	a.sub = sub
	return a, nil
}

// handle counts one acknowledgement.
func (a *acker) handle(m *nats.Msg) {
	id, err := strconv.ParseUint(m.Subject[len(a.prefix):], 10, 64)
	if err != nil {
		return
	}
	ok := isPubAck(m)
	a.mu.Lock()
	g := a.groups[id]
	if g == nil { // abandoned: its slots were released then
		a.mu.Unlock()
		return
	}
	g.pending--
	if ok && isDuplicate(m.Data) {
		g.dups++
	}
	if !ok {
		g.failed++
		if g.first == "" {
			g.first = refusal(m)
		}
	}
	if g.pending == 0 {
		delete(a.groups, id)
		a.finish(g)
	}
	a.mu.Unlock()
	a.window.Release(1)
}

// finish signals a complete group; acker.mu is held.
func (a *acker) finish(g *ackGroup) {
	close(g.done)
}

// isPubAck reports whether m is a positive JetStream acknowledgement
// ({"stream":…,"seq":…}, possibly "duplicate":true: stored before).
func isPubAck(m *nats.Msg) bool {
	return bytes.HasPrefix(m.Data, []byte(`{"stream":`)) && !bytes.Contains(m.Data, []byte(`"error"`))
}

// isDuplicate reports whether a PubAck says the message was stored before
// (the server writes `"duplicate": true`).
func isDuplicate(ack []byte) bool {
	_, rest, found := bytes.Cut(ack, []byte(`"duplicate":`))
	return found && bytes.HasPrefix(bytes.TrimLeft(rest, " "), []byte("true"))
}

func refusal(m *nats.Msg) string {
	if len(m.Data) == 0 {
		if s := m.Header.Get("Status"); s != "" {
			return "status " + s + " " + m.Header.Get("Description")
		}
		return "empty reply"
	}
	return strings.TrimSpace(string(m.Data))
}

// start registers a group of n messages (n ≤ ackWindow) after taking n
// window slots.
func (a *acker) start(ctx context.Context, n int) (uint64, *ackGroup, error) {
	if err := a.window.Acquire(ctx, int64(n)); err != nil {
		return 0, nil, fmt.Errorf("wait for the publish window: %w", err)
	}
	g := &ackGroup{size: n, pending: n, done: make(chan struct{})}
	a.mu.Lock()
	a.next++
	id := a.next
	g.reply = a.prefix + strconv.FormatUint(id, 10)
	a.groups[id] = g
	a.mu.Unlock()
	return id, g, nil
}

// abandon drops a group that will not be waited for any more and gives
// back the slots of the messages still unacknowledged.
func (a *acker) abandon(id uint64) {
	a.mu.Lock()
	g := a.groups[id]
	if g != nil {
		delete(a.groups, id)
	}
	a.mu.Unlock()
	if g != nil && g.pending > 0 {
		a.window.Release(int64(g.pending))
	}
}

// publish sends msgs (at most ackWindow) as one group and waits until
// every message is acknowledged (nil), refused or ctx is done (an error).
// dups is how many were acknowledged as duplicates (JetStream's
// Nats-Msg-Id window: stored before, not stored again).
func (a *acker) publish(ctx context.Context, msgs []*nats.Msg) (dups int, err error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	if len(msgs) > ackWindow {
		return 0, fmt.Errorf("publish group of %d messages exceeds the window of %d", len(msgs), ackWindow)
	}
	id, g, err := a.start(ctx, len(msgs))
	if err != nil {
		return 0, err
	}
	for _, m := range msgs {
		m.Reply = g.reply
		if err := a.nc.PublishMsg(m); err != nil {
			a.abandon(id)
			return 0, fmt.Errorf("publish to %s: %w", m.Subject, err)
		}
	}
	select {
	case <-g.done:
		if g.failed > 0 {
			return 0, fmt.Errorf("%d of %d messages not stored; first: %s", g.failed, len(msgs), g.first)
		}
		return g.dups, nil
	case <-ctx.Done():
		a.abandon(id)
		return 0, fmt.Errorf("wait for acknowledgements: %w", ctx.Err())
	}
}

// errNoConn is returned when the JetStream context has no connection.
var errNoConn = errors.New("no NATS connection")
