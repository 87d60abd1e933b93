package dedupe

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func keys(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(fmt.Sprintf("ws\x00%s-%d", prefix, i))
	}
	return out
}

func TestStoreRemembersIdsWithinTheWindowAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(StoreOptions{Dir: dir, Window: time.Hour, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.Add(keys("a", 1000), now, 42); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(keys("old", 1), now.Add(-2*time.Hour), 0); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store, when string) {
		t.Helper()
		got, err := s.Seen(append(keys("a", 1000), []byte("ws\x00b-0"), []byte("other\x00a-0"), keys("old", 1)[0]), now.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 1000 {
			if !got[i] {
				t.Fatalf("%s: a-%d not seen", when, i)
			}
		}
		if got[1000] || got[1001] || got[1002] {
			t.Fatalf("%s: unknown id, other workspace or an id older than the window reported seen: %v", when, got[1000:])
		}
		if s.Applied() != 42 {
			t.Fatalf("%s: applied %d, want 42", when, s.Applied())
		}
	}
	check(s, "open")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenStore(StoreOptions{Dir: dir, Window: time.Hour, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s, "reopened")
	// Past the window the same ids are new again.
	got, err := s.Seen(keys("a", 1), now.Add(time.Hour+time.Second))
	if err != nil || got[0] {
		t.Fatalf("a-0 one window later: %v %v, want not seen", got, err)
	}
}

func TestStoreRotatesGenerationsAndDeletesExpiredOnes(t *testing.T) {
	dir := t.TempDir()
	window := time.Hour
	clock := time.Now()
	s, err := OpenStore(StoreOptions{Dir: dir, Window: window, Logger: quiet(), Clock: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Add(keys("g1", 10), clock, 1); err != nil {
		t.Fatal(err)
	}
	first := s.gens[0].name
	clock = clock.Add(window + time.Second)
	if err := s.Add(keys("g2", 10), clock, 2); err != nil {
		t.Fatal(err)
	}
	if s.Generations() != 2 {
		t.Fatalf("%d generations after one window, want 2", s.Generations())
	}
	if got, _ := s.Seen(append(keys("g2", 1), keys("g1", 1)...), clock); !got[0] || got[1] {
		t.Fatalf("seen %v, want g2-0 (new generation) and not g1-0 (a window old)", got)
	}
	if s.Applied() != 2 {
		t.Fatalf("applied %d, want 2", s.Applied())
	}
	clock = clock.Add(window + time.Second)
	if err := s.Add(keys("g3", 1), clock, 3); err != nil {
		t.Fatal(err)
	}
	if s.Generations() != 2 {
		t.Fatalf("%d generations, want 2 (the first expired)", s.Generations())
	}
	if _, err := os.Stat(dir + "/" + first); !os.IsNotExist(err) {
		t.Fatalf("expired generation %s still on disk: %v", first, err)
	}
}
