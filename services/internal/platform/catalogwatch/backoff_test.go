package catalogwatch

import (
	"testing"
	"time"
)

// TestNextBackoff checks the reconnect waits: doubling from 100 ms to 5 s while Catalog cannot
// be reached, and back to 100 ms once a stream delivered a snapshot before it broke.
func TestNextBackoff(t *testing.T) {
	t.Parallel()
	var got []time.Duration
	b := time.Duration(0)
	for _, received := range []bool{false, false, false, false, false, false, false, false, true, false} {
		b = nextBackoff(b, received)
		got = append(got, b)
	}
	ms := time.Millisecond
	want := []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5000 * ms, 5000 * ms, 100 * ms, 200 * ms}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("waits = %v, want %v", got, want)
		}
	}
}
