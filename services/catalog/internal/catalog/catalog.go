// Package catalog is the control-plane logic: workspaces, users, API tokens,
// sources, destinations and warehouses, kept in a revisioned Store and
// mirrored in memory for reads and for the data plane's configuration watch.
package catalog

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Catalog serves reads from an in-memory mirror of the Store and writes
// through to it. The mirror is fed only by the Store's watch, plus the
// result of the catalog's own writes so a caller reads its own writes.
type Catalog struct {
	store  Store
	logger *slog.Logger
	now    func() time.Time

	mu       sync.RWMutex
	entries  map[Kind]map[string]entry
	revision uint64
	ready    chan struct{}
	subs     map[chan struct{}]struct{}
}

type entry struct {
	rev uint64
	msg proto.Message
}

// Options tune a Catalog.
type Options struct {
	// Now is the clock (time.Now when nil); tests inject a fake one.
	Now func() time.Time
}

// New returns a catalog over store; call Run to start mirroring it.
func New(store Store, logger *slog.Logger, opts ...Options) *Catalog {
	now := time.Now
	for _, o := range opts {
		if o.Now != nil {
			now = o.Now
		}
	}
	c := &Catalog{
		store:   store,
		logger:  logger,
		now:     now,
		entries: make(map[Kind]map[string]entry),
		ready:   make(chan struct{}),
		subs:    make(map[chan struct{}]struct{}),
	}
	for _, k := range Kinds {
		c.entries[k] = make(map[string]entry)
	}
	return c
}

// Run mirrors the store until ctx is done.
func (c *Catalog) Run(ctx context.Context) error {
	var once sync.Once
	err := c.store.Watch(ctx, c.apply, func() { once.Do(func() { close(c.ready) }) })
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// WaitReady blocks until the first full load of the store is mirrored.
func (c *Catalog) WaitReady(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ready reports whether the first full load is done.
func (c *Catalog) Ready() bool {
	select {
	case <-c.ready:
		return true
	default:
		return false
	}
}

func newMessage(k Kind) proto.Message {
	switch k {
	case KindWorkspace:
		return &catalogv1.Workspace{}
	case KindUser:
		return &catalogv1.User{}
	case KindToken:
		return &catalogv1.Principal{}
	case KindSource:
		return &catalogv1.Source{}
	case KindDestination:
		return &catalogv1.Destination{}
	case KindWarehouse:
		return &catalogv1.Warehouse{}
	case KindAudit:
		return &catalogv1.AuditEvent{}
	case KindView:
		return &catalogv1.View{}
	case KindIntegrationRequest:
		return &catalogv1.IntegrationRequest{}
	}
	panic("unknown kind " + string(k))
}

func (c *Catalog) apply(ch Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applyLocked(ch.Kind, ch.Key, ch.Revision, ch.Value, ch.Deleted)
}

// applyLocked records a value unless the mirror already holds a newer revision.
func (c *Catalog) applyLocked(k Kind, key string, rev uint64, value []byte, deleted bool) {
	cur, ok := c.entries[k][key]
	if ok && cur.rev >= rev {
		return
	}
	if deleted {
		delete(c.entries[k], key)
	} else {
		msg := newMessage(k)
		if err := protojson.Unmarshal(value, msg); err != nil {
			c.logger.Error("catalog: skip undecodable value", "kind", k, "key", key, "err", err)
			return
		}
		c.entries[k][key] = entry{rev: rev, msg: msg}
	}
	if !configKinds[k] {
		return
	}
	c.revision++
	for s := range c.subs {
		select {
		case s <- struct{}{}:
		default: // a change is already pending for this subscriber
		}
	}
}

// Subscribe returns a channel that receives a signal after every change,
// coalescing changes the subscriber has not consumed yet, and a cancel func.
func (c *Catalog) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	c.subs[ch] = struct{}{}
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		delete(c.subs, ch)
		c.mu.Unlock()
	}
}

var marshal = protojson.MarshalOptions{}

func (c *Catalog) create(ctx context.Context, k Kind, key string, msg proto.Message) error {
	_, err := c.createRev(ctx, k, key, msg)
	return err
}

// createRev stores a new key and returns its revision. Computed fields of msg
// (those filled on read) are never stored.
func (c *Catalog) createRev(ctx context.Context, k Kind, key string, msg proto.Message) (uint64, error) {
	b, err := encode(msg)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", k.singular(), err)
	}
	rev, err := c.store.Create(ctx, k, key, b)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.applyLocked(k, key, rev, b, false)
	c.mu.Unlock()
	return rev, nil
}

// encode marshals msg for storage without its computed fields.
func encode(msg proto.Message) ([]byte, error) {
	stored := proto.Clone(msg)
	stripComputed(stored)
	return marshal.Marshal(stored)
}

// stripComputed clears the fields that are filled on read.
func stripComputed(msg proto.Message) {
	switch m := msg.(type) {
	case *catalogv1.Source:
		m.Revision, m.Destinations, m.CreatedByEmail, m.WarehouseIds = 0, nil, "", nil
	case *catalogv1.Destination:
		m.Revision, m.Source, m.CreatedByEmail = 0, nil, ""
	case *catalogv1.Warehouse:
		m.Revision = 0
	case *catalogv1.User:
		m.Revision = 0
	case *catalogv1.View:
		m.Revision = 0
	}
}

// storeUpdate replaces key at revision rev (compare-and-set) and returns the
// new revision.
func (c *Catalog) storeUpdate(ctx context.Context, k Kind, key string, msg proto.Message, rev uint64) (uint64, error) {
	b, err := encode(msg)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", k.singular(), err)
	}
	n, err := c.store.Update(ctx, k, key, b, rev)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.applyLocked(k, key, n, b, false)
	c.mu.Unlock()
	return n, nil
}

// refresh loads key's latest revision from the store into the mirror, for
// when a compare-and-set found the mirror behind.
func (c *Catalog) refresh(ctx context.Context, k Kind, key string) error {
	b, rev, err := c.store.Get(ctx, k, key)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.applyLocked(k, key, rev, b, false)
	c.mu.Unlock()
	return nil
}

// maxMergeAttempts bounds the server-side retries of a merged update; each
// lost attempt means another writer won, so the loop always progresses.
const maxMergeAttempts = 200

// mutate is the one read-modify-write of the catalog. With expect != 0 the
// write is conditional: it fails with a RevisionError unless the stored
// revision is expect. With expect == 0 the change is a field merge: fn is
// re-applied to the latest revision after every lost compare-and-set, so
// concurrent writers never lose an update. fn must only change the clone it
// is given and may be called several times.
func mutate[T interface {
	proto.Message
	GetWorkspaceId() string
}](ctx context.Context, c *Catalog, k Kind, ws, id string, expect uint64, fn func(T) error) (T, uint64, error) {
	var zero T
	if id == "" {
		return zero, 0, invalid(k.singular()+"Id", "REQUIRED", "is required")
	}
	for attempt := 0; ; attempt++ {
		e, ok := c.get(k, id)
		if expect != 0 && (!ok || e.rev != expect) {
			// The mirror may lag behind the store: the store decides.
			if err := c.refresh(ctx, k, id); err != nil && !errors.Is(err, ErrNotFound) {
				return zero, 0, err
			}
			e, ok = c.get(k, id)
		}
		if !ok || (ws != "" && e.msg.(T).GetWorkspaceId() != ws) {
			return zero, 0, &NotFoundError{Kind: k, ID: id}
		}
		if expect != 0 && e.rev != expect {
			return zero, 0, &RevisionError{Kind: k, ID: id, Want: expect, Current: e.rev}
		}
		v := proto.Clone(e.msg).(T)
		if err := fn(v); err != nil {
			return zero, 0, err
		}
		rev, err := c.storeUpdate(ctx, k, id, v, e.rev)
		if err == nil {
			return v, rev, nil
		}
		if !errors.Is(err, ErrConflict) {
			return zero, 0, err
		}
		if expect != 0 {
			_ = c.refresh(ctx, k, id)
			cur, _ := c.get(k, id)
			return zero, 0, &RevisionError{Kind: k, ID: id, Want: expect, Current: cur.rev}
		}
		if attempt >= maxMergeAttempts {
			return zero, 0, fmt.Errorf("update %s %q: %w after %d attempts", k.singular(), id, ErrConflict, attempt+1)
		}
		if err := c.refresh(ctx, k, id); err != nil {
			return zero, 0, err
		}
	}
}

func (c *Catalog) remove(ctx context.Context, k Kind, key string, rev uint64) error {
	if err := c.store.Delete(ctx, k, key, rev); err != nil {
		return err
	}
	c.mu.Lock()
	// A delete tombstone's revision is later than rev; rev+1 is enough to win.
	c.applyLocked(k, key, rev+1, nil, true)
	c.mu.Unlock()
	return nil
}

func (c *Catalog) get(k Kind, key string) (entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[k][key]
	return e, ok
}

// list returns clones of the kind's values that match keep.
func list[T proto.Message](c *Catalog, k Kind, keep func(T) bool) []T {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]T, 0, len(c.entries[k]))
	for _, e := range c.entries[k] {
		v := e.msg.(T)
		if keep(v) {
			out = append(out, proto.Clone(v).(T))
		}
	}
	return out
}

// NewID returns a random id with the given prefix, e.g. "src_2k…".
func NewID(prefix string) string { return prefix + "_" + randomString(20) }

// NewSecret returns a random secret of n characters.
func NewSecret(n int) string { return randomString(n) }

const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// TokenKey is the storage key of an API token: its SHA-256, so secrets are
// never stored.
func TokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Authenticate resolves an API token.
func (c *Catalog) Authenticate(token string) (*catalogv1.Principal, error) {
	if token == "" {
		return nil, ErrUnauthenticated
	}
	e, ok := c.get(KindToken, TokenKey(token))
	if !ok {
		return nil, ErrUnauthenticated
	}
	pr := proto.Clone(e.msg).(*catalogv1.Principal)
	// A token never has more rights than its user has now.
	u, ok := c.get(KindUser, pr.GetUserId())
	if !ok {
		return nil, ErrUnauthenticated
	}
	if role := u.msg.(*catalogv1.User).GetRole(); rank(role) < rank(pr.GetRole()) {
		pr.Role = role
	}
	pr.Hint = ""
	return pr, nil
}

// Slugify turns a display name into a lower-case slug of letters, digits and
// underscores that is safe as a warehouse schema name.
func Slugify(name string) string {
	var b strings.Builder
	sep := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			if sep && b.Len() > 0 {
				b.WriteByte('_')
			}
			sep = false
			b.WriteRune(r)
		default:
			sep = true
		}
	}
	s := b.String()
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		s = "_" + s
	}
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}
