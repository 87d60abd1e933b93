package tracking

import (
	"strings"
	"testing"
)

// benchItem is a ~400-byte track call, the load generator's shape.
const benchItem = `{"type":"track","userId":"u","event":"Order Completed","messageId":"m","properties":{"orderId":1,"total":42.5,"Total":43,"pad":"` +
	`xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx` +
	`xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx` +
	`"},"context":{"library":{"name":"analytics-node","version":"1.0"},"locale":"en-US"},"timestamp":"2026-12-03T11:59:59.000Z"}`

// unobserved stops TestMain's recording of parsed bodies for the rest of
// benchmark b: it would keep every iteration's body and compare them all.
func unobserved(b *testing.B) {
	saved := observeParse
	observeParse = nil
	b.Cleanup(func() { observeParse = saved })
}

func benchBatch() []byte {
	items := make([]string, 100)
	for i := range items {
		items[i] = benchItem
	}
	return []byte(`{"batch":[` + strings.Join(items, ",") + `],"sentAt":"2026-12-03T12:00:00Z"}`)
}

// BenchmarkParseBatch measures a 100-event batch on the fast path, on the
// full path (every item decoded and re-encoded), and with a batch-level
// context, which sends every item through the full path.
func BenchmarkParseBatch(b *testing.B) {
	unobserved(b)
	body := benchBatch()
	withContext := []byte(`{"context":{"app":{"name":"shop"}},` + string(body[1:]))
	for _, bc := range []struct {
		name     string
		body     []byte
		fullOnly bool
	}{
		{"fast", body, false},
		{"full", body, true},
		{"batch-context", withContext, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := NewParser()
			p.fullOnly = bc.fullOnly
			b.SetBytes(int64(len(bc.body)))
			for b.Loop() {
				req, err := p.ParseBatch(bc.body, Meta{IP: "127.0.0.1"})
				if err != nil || len(req.Events) != 100 {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkParseSingle measures one track call on each path.
func BenchmarkParseSingle(b *testing.B) {
	unobserved(b)
	body := []byte(benchItem)
	for _, fullOnly := range []bool{false, true} {
		name := "fast"
		if fullOnly {
			name = "full"
		}
		b.Run(name, func(b *testing.B) {
			p := NewParser()
			p.fullOnly = fullOnly
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := p.ParseSingle(body, "track", Meta{IP: "127.0.0.1"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
