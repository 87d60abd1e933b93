package dedupe

import (
	"fmt"
	"testing"
	"time"
)

func TestFilter(t *testing.T) {
	t.Parallel()
	now := time.Now()
	f := NewFilter(FilterOptions{Window: time.Hour, Buckets: 4, Bits: 1 << 16})
	t.Run("a cold filter answers maybe for everything", func(t *testing.T) {
		if !f.MayContain("never-added", now) {
			t.Error("cold filter said no")
		}
	})
	f.SetWarm(true)
	for i := range 1000 {
		f.Add(fmt.Sprintf("id-%d", i), now)
	}
	f.Add("old-but-in-window", now.Add(-50*time.Minute))
	f.Add("outside-window", now.Add(-2*time.Hour))
	t.Run("every added id is reported as maybe seen", func(t *testing.T) {
		for i := range 1000 {
			if id := fmt.Sprintf("id-%d", i); !f.MayContain(id, now) {
				t.Fatalf("%s: false negative", id)
			}
		}
		if !f.MayContain("old-but-in-window", now) {
			t.Error("id added 50 minutes ago (window 1h) not found")
		}
	})
	t.Run("most never-added ids are certainly new", func(t *testing.T) {
		fp := 0
		for i := range 10000 {
			if f.MayContain(fmt.Sprintf("other-%d", i), now) {
				fp++
			}
		}
		// 1002 ids in 65,536 bits with 4 hashes: about 0.003% false positives.
		if fp > 20 {
			t.Errorf("%d false positives in 10,000", fp)
		}
		if f.MayContain("outside-window", now) {
			t.Error("an id older than the window was recorded")
		}
	})
	t.Run("memory is fixed", func(t *testing.T) {
		if got := f.MemoryBytes(); got != 5*(1<<16)/8 {
			t.Errorf("MemoryBytes = %d", got)
		}
	})
}

func BenchmarkFilter(b *testing.B) {
	f := NewFilter(FilterOptions{Window: 24 * time.Hour})
	f.SetWarm(true)
	now := time.Now()
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprintf("node-next-1733230000000-%08d-aaaa-bbbb-cccc", i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := ids[i%len(ids)]
		if !f.MayContain(id, now) {
			f.Add(id, now)
		}
	}
}
