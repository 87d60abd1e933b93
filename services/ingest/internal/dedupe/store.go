package dedupe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// StoreOptions configure a Store.
type StoreOptions struct {
	// Dir is the directory of the store's files; "" keeps them in memory
	// (tests: memory then grows with the ids).
	Dir string
	// Window is how long an id counts as seen (default 24 h).
	Window time.Duration
	// CacheBytes is the block cache shared by the generations (default
	// 16 MiB).
	CacheBytes int64
	// MemTableBytes is the size of one memtable (default 4 MiB; at most two
	// per generation are in memory).
	MemTableBytes uint64
	// Logger receives the storage engine's errors (default slog.Default()).
	Logger *slog.Logger
	// Clock drives generation rotation (default time.Now).
	Clock func() time.Time
}

// Store is the exact, durable record of the ids seen within the window,
// with memory bounded whatever the rate: an embedded LSM key-value store
// (Pebble) on local disk, whose memory is its block cache and memtables.
// An id maps to the time it was first seen. Ids are written in
// generations of one window each: writes go to the newest, lookups read
// the newest two, and a generation whose every id is older than the
// window is deleted as a whole (no per-key expiry work). Disk use is
// therefore at most about two windows of ids.
//
// The store keeps the sequence of the last EVENTS message whose ids it
// applied (see SetApplied); the write-ahead log is off, because after a
// crash the store is a consistent prefix of its writes and the ids after
// that sequence are read again from the stream.
type Store struct {
	o     StoreOptions
	cache *pebble.Cache
	fs    vfs.FS
	wo    *pebble.WriteOptions
	errs  *errorLimiter

	mu   sync.RWMutex
	gens []*generation // newest first
}

type generation struct {
	start time.Time
	name  string
	db    *pebble.DB
}

// appliedKey holds the applied sequence; it cannot collide with an id key
// (those start with a workspace id, never with a NUL byte).
var appliedKey = []byte("\x00applied")

// OpenStore opens (or creates) the store in o.Dir.
func OpenStore(o StoreOptions) (*Store, error) {
	if o.Window <= 0 {
		o.Window = 24 * time.Hour
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 16 << 20
	}
	if o.MemTableBytes == 0 {
		o.MemTableBytes = 4 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	s := &Store{o: o, cache: pebble.NewCache(o.CacheBytes), wo: pebble.NoSync, errs: &errorLimiter{}}
	root := o.Dir
	if root == "" {
		s.fs, root = vfs.NewMem(), "dedupe"
		s.o.Dir = root
	} else {
		s.fs = vfs.Default
	}
	if err := s.fs.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("dedupe store: %w", err)
	}
	names, err := s.fs.List(root)
	if err != nil {
		return nil, fmt.Errorf("dedupe store: %w", err)
	}
	var starts []int64
	for _, n := range names {
		if sec, err := strconv.ParseInt(n, 10, 64); err == nil && sec > 0 {
			starts = append(starts, sec)
		}
	}
	slices.Sort(starts)
	slices.Reverse(starts)
	for _, sec := range starts {
		g, err := s.open(time.Unix(sec, 0))
		if err != nil {
			s.Close()
			return nil, err
		}
		s.gens = append(s.gens, g)
	}
	if err := s.rotate(o.Clock()); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) open(start time.Time) (*generation, error) {
	name := strconv.FormatInt(start.Unix(), 10)
	opts := &pebble.Options{
		FS:                          s.fs,
		Cache:                       s.cache,
		MemTableSize:                s.o.MemTableBytes,
		MemTableStopWritesThreshold: 2,
		DisableWAL:                  true,
		Logger:                      pebbleLogger{l: s.o.Logger, limiter: s.errs},
	}
	opts.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	opts.EnsureDefaults()
	db, err := pebble.Open(s.fs.PathJoin(s.o.Dir, name), opts)
	if err != nil {
		return nil, fmt.Errorf("dedupe store: open generation %s: %w", name, err)
	}
	return &generation{start: start, name: name, db: db}, nil
}

// rotate starts a new generation when the newest is a window old, and
// deletes generations whose ids are all out of the window. s.mu is held
// by the caller or the store is not shared yet.
func (s *Store) rotate(now time.Time) error {
	if len(s.gens) == 0 || !now.Before(s.gens[0].start.Add(s.o.Window)) {
		var applied uint64
		if len(s.gens) > 0 {
			applied = s.appliedLocked()
		}
		g, err := s.open(now.Truncate(time.Second))
		if err != nil {
			return err
		}
		if applied > 0 {
			if err := g.db.Set(appliedKey, binary.BigEndian.AppendUint64(nil, applied), s.wo); err != nil {
				_ = g.db.Close()
				return fmt.Errorf("dedupe store: %w", err)
			}
		}
		s.gens = append([]*generation{g}, s.gens...)
	}
	// A generation started at t holds ids seen before the next one
	// started; once that start is a window old, all of them are.
	for len(s.gens) > 1 {
		last := len(s.gens) - 1
		if now.Sub(s.gens[last-1].start) < s.o.Window {
			break
		}
		g := s.gens[last]
		s.gens = s.gens[:last]
		if err := g.db.Close(); err != nil {
			s.o.Logger.Warn("dedupe store: close expired generation", "generation", g.name, "err", err)
		}
		if err := s.fs.RemoveAll(s.fs.PathJoin(s.o.Dir, g.name)); err != nil {
			s.o.Logger.Warn("dedupe store: remove expired generation", "generation", g.name, "err", err)
		}
	}
	return nil
}

// Seen reports, for each key, whether it was added within the window
// before now.
func (s *Store) Seen(keys [][]byte, now time.Time) ([]bool, error) {
	out := make([]bool, len(keys))
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i, k := range keys {
		for _, g := range s.gens {
			v, closer, err := g.db.Get(k)
			if errors.Is(err, pebble.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("dedupe store: %w", err)
			}
			at := int64(binary.BigEndian.Uint64(v))
			_ = closer.Close()
			if now.UnixNano()-at < int64(s.o.Window) {
				out[i] = true
			}
			break // the newest record of the key decides
		}
	}
	return out, nil
}

// Add records keys as seen at. applied, when non-zero, is the stream
// sequence up to which every message's ids are now recorded; it is stored
// in the same write.
func (s *Store) Add(keys [][]byte, at time.Time, applied uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.rotate(s.o.Clock()); err != nil {
		return err
	}
	b := s.gens[0].db.NewBatch()
	defer b.Close()
	v := binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))
	for _, k := range keys {
		if err := b.Set(k, v, nil); err != nil {
			return fmt.Errorf("dedupe store: %w", err)
		}
	}
	if applied > 0 {
		if err := b.Set(appliedKey, binary.BigEndian.AppendUint64(nil, applied), nil); err != nil {
			return fmt.Errorf("dedupe store: %w", err)
		}
	}
	if err := b.Commit(s.wo); err != nil {
		return fmt.Errorf("dedupe store: %w", err)
	}
	return nil
}

// Applied is the last sequence passed to Add (0 when none).
func (s *Store) Applied() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.appliedLocked()
}

func (s *Store) appliedLocked() uint64 {
	var best uint64
	for _, g := range s.gens {
		v, closer, err := g.db.Get(appliedKey)
		if err != nil {
			continue
		}
		best = max(best, binary.BigEndian.Uint64(v))
		_ = closer.Close()
	}
	return best
}

// Scan calls fn with every key recorded within the window before now and
// the time it was recorded (newest generation last, so a key recorded
// again is reported with its latest time last). It stops at ctx's end.
func (s *Store) Scan(ctx context.Context, now time.Time, fn func(key []byte, at time.Time)) error {
	s.mu.RLock()
	gens := slices.Clone(s.gens)
	s.mu.RUnlock()
	slices.Reverse(gens)
	for _, g := range gens {
		it, err := g.db.NewIter(nil)
		if err != nil {
			return fmt.Errorf("dedupe store: %w", err)
		}
		n := 0
		for ok := it.First(); ok; ok = it.Next() {
			k := it.Key()
			if len(k) > 0 && k[0] == 0 { // the applied sequence
				continue
			}
			v := it.Value()
			if len(v) != 8 {
				continue
			}
			at := time.Unix(0, int64(binary.BigEndian.Uint64(v)))
			if now.Sub(at) < s.o.Window {
				fn(k, at)
			}
			if n++; n%4096 == 0 && ctx.Err() != nil {
				break
			}
		}
		err = errors.Join(it.Error(), it.Close())
		if err != nil {
			return fmt.Errorf("dedupe store: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// Flush writes the memtables to disk (the store survives a restart up to
// here).
func (s *Store) Flush() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, g := range s.gens {
		if err := g.db.Flush(); err != nil {
			return fmt.Errorf("dedupe store: %w", err)
		}
	}
	return nil
}

// Generations is the number of open generations (for tests and metrics).
func (s *Store) Generations() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.gens)
}

// DiskBytes is the size of the store's files.
func (s *Store) DiskBytes() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int64
	for _, g := range s.gens {
		m := g.db.Metrics()
		n += int64(m.DiskSpaceUsage())
	}
	return n
}

// Close flushes and closes every generation.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, g := range s.gens {
		if err := g.db.Flush(); err != nil {
			errs = append(errs, err)
		}
		if err := g.db.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.gens = nil
	if s.cache != nil {
		s.cache.Unref()
		s.cache = nil
	}
	return errors.Join(errs...)
}

// DefaultDir is where a service keeps the store under its data dir.
func DefaultDir(dataDir string) string { return filepath.Join(dataDir, "ingest-dedupe") }

// pebbleLogger sends the storage engine's messages to slog (info lines at
// debug level). Errors are logged at most once a second with the number
// suppressed since: a failing disk makes the engine retry in a loop.
type pebbleLogger struct {
	l       *slog.Logger
	limiter *errorLimiter
}

type errorLimiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("dedupe store: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	lim := p.limiter
	lim.mu.Lock()
	now := time.Now()
	if now.Sub(lim.last) < time.Second {
		lim.suppressed++
		lim.mu.Unlock()
		return
	}
	n := lim.suppressed
	lim.last, lim.suppressed = now, 0
	lim.mu.Unlock()
	p.l.Error("dedupe store: "+fmt.Sprintf(format, args...), "suppressed_since_last", n)
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("dedupe store: " + fmt.Sprintf(format, args...))
	os.Exit(1)
}
