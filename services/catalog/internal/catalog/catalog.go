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
	"sort"
	"strings"
	"sync"
	"time"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
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

// New returns a catalog over store; call Run to start mirroring it.
func New(store Store, logger *slog.Logger) *Catalog {
	c := &Catalog{
		store:   store,
		logger:  logger,
		now:     time.Now,
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
	b, err := marshal.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode %s: %w", k.singular(), err)
	}
	rev, err := c.store.Create(ctx, k, key, b)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.applyLocked(k, key, rev, b, false)
	c.mu.Unlock()
	return nil
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
	return proto.Clone(e.msg).(*catalogv1.Principal), nil
}

func canWrite(p *catalogv1.Principal) error {
	switch p.GetRole() {
	case catalogv1.Role_ROLE_OWNER, catalogv1.Role_ROLE_EDITOR:
		return nil
	}
	return ErrPermissionDenied
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

// sortByCreation orders resources by creation time, then id, which is the
// stable order pagination cursors rely on.
func sortByCreation[T interface {
	GetCreatedAt() *timestamppb.Timestamp
	GetId() string
}](items []T) {
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i].GetCreatedAt().AsTime(), items[j].GetCreatedAt().AsTime()
		if !a.Equal(b) {
			return a.Before(b)
		}
		return items[i].GetId() < items[j].GetId()
	})
}

// Page is one page of a list.
type Page struct {
	Count  int32
	Cursor string
}

// PageInfo describes a returned page.
type PageInfo struct {
	Current string
	Next    string
	Total   int32
}

// paginate cuts a page out of items sorted by sortByCreation. The cursor is
// the id of the last item of the previous page, so pages stay stable when
// other items are created or deleted concurrently.
func paginate[T interface {
	GetCreatedAt() *timestamppb.Timestamp
	GetId() string
}](items []T, p Page) ([]T, PageInfo, error) {
	count := int(p.Count)
	switch {
	case count == 0:
		count = 50
	case count < 0 || count > 200:
		return nil, PageInfo{}, invalid("pagination.count", "PAGINATION_COUNT_RANGE", "must be between 1 and 200, got %d", count)
	}
	start := 0
	if p.Cursor != "" {
		after, err := decodeCursor(p.Cursor)
		if err != nil {
			return nil, PageInfo{}, invalid("pagination.cursor", "PAGINATION_CURSOR_INVALID", "is not a cursor this API returned")
		}
		start = sort.Search(len(items), func(i int) bool {
			t := items[i].GetCreatedAt().AsTime()
			return t.After(after.t) || (t.Equal(after.t) && items[i].GetId() > after.id)
		})
	}
	end := min(start+count, len(items))
	info := PageInfo{Current: p.Cursor, Total: int32(len(items))}
	if end < len(items) && end > 0 {
		info.Next = encodeCursor(items[end-1].GetCreatedAt().AsTime(), items[end-1].GetId())
	}
	return items[start:end], info, nil
}

type cursor struct {
	t  time.Time
	id string
}

func encodeCursor(t time.Time, id string) string {
	return hex.EncodeToString([]byte(t.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(s string) (cursor, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return cursor{}, err
	}
	ts, id, ok := strings.Cut(string(b), "|")
	if !ok {
		return cursor{}, errors.New("malformed cursor")
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return cursor{}, err
	}
	return cursor{t: t, id: id}, nil
}
