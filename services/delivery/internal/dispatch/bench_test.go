package dispatch

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
)

// countingHook is a local webhook that counts events (arrays count each
// element) and records each event's publish-to-receipt latency.
type countingHook struct {
	srv    *httptest.Server
	events atomic.Int64
	mu     sync.Mutex
	lat    []time.Duration
}

func newCountingHook(b *testing.B) *countingHook {
	h := &countingHook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		now := time.Now()
		type ev struct {
			Properties struct {
				SentNs int64 `json:"sentNs"`
			} `json:"properties"`
		}
		var evs []ev
		if len(body) > 0 && body[0] == '[' {
			_ = json.Unmarshal(body, &evs)
		} else {
			var one ev
			_ = json.Unmarshal(body, &one)
			evs = []ev{one}
		}
		h.mu.Lock()
		for _, e := range evs {
			if e.Properties.SentNs > 0 {
				h.lat = append(h.lat, now.Sub(time.Unix(0, e.Properties.SentNs)))
			}
		}
		h.mu.Unlock()
		h.events.Add(int64(len(evs)))
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(h.srv.Close)
	return h
}

func (h *countingHook) wait(b *testing.B, n int64, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for h.events.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("webhook got %d events after %v, want %d", h.events.Load(), timeout, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// packSize is how many events the benchmarks store per message, as
// Ingest stores a batch request of 100 events.
const packSize = 100

// prepublish stores n events in EVENTS as fast as JetStream takes them:
// packs of perMsg events (perMsg 1: single-event messages).
func prepublish(b *testing.B, e *env, prefix string, n, perMsg int) {
	subject := streams.EventsSubject(testWorkspace, testSource)
	h := jetstream.Headers{Workspace: testWorkspace, Source: testSource}
	for i := 0; i < n; i += 1000 {
		for j := i; j < min(i+1000, n); j += perMsg {
			evs := make([]jetstream.PackedEvent, 0, perMsg)
			for k := j; k < min(j+perMsg, n); k++ {
				id := fmt.Sprintf("%s-%d", prefix, k)
				evs = append(evs, jetstream.PackedEvent{MessageID: id, Type: "track",
					JSON: fmt.Appendf(nil, `{"type":"track","event":"Bench","userId":"u-%d","messageId":"%s","properties":{"i":%d}}`, k%100, id, k)})
			}
			var msg *nats.Msg
			if len(evs) == 1 {
				h.MsgID, h.EventType = evs[0].MessageID, "track"
				msg = jetstream.NewMsg(b.Context(), subject, evs[0].JSON, h)
			} else {
				msg = jetstream.PackMsg(subject, h, nats.Header{}, evs)
			}
			if _, err := e.js.PublishMsgAsync(msg); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-e.js.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			b.Fatal("publish stalled")
		}
	}
}

func benchThroughput(b *testing.B, batch, n, perMsg int) {
	e := newEnvB(b)
	hook := newCountingHook(b)
	prepublish(b, e, "tp", n, perMsg)
	b.ResetTimer()
	start := time.Now()
	extra := map[string]any{}
	if batch > 1 {
		extra["batchSize"] = float64(batch)
	}
	e.startB(b, Options{Concurrency: 32}, hookSpec("bench", hook.srv.URL, extra))
	hook.wait(b, int64(n), 5*time.Minute)
	el := time.Since(start)
	b.ReportMetric(float64(n)/el.Seconds(), "events/s")
	if batch > 1 {
		b.ReportMetric(float64(n)/float64(batch)/el.Seconds(), "requests/s")
	} else {
		b.ReportMetric(float64(n)/el.Seconds(), "requests/s")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkDeliveryBatched drains 100,000 stored events, in packs of 100,
// to a local webhook in batches of 100.
func BenchmarkDeliveryBatched(b *testing.B) {
	for range b.N {
		benchThroughput(b, 100, 100_000, packSize)
	}
}

// BenchmarkDeliveryBatchedSingles is BenchmarkDeliveryBatched with one
// event per message (as stored before packs, or by one-event requests).
func BenchmarkDeliveryBatchedSingles(b *testing.B) {
	for range b.N {
		benchThroughput(b, 100, 100_000, 1)
	}
}

// BenchmarkDeliveryUnbatched drains 20,000 stored events, in packs of 100,
// to a local webhook, one request per event.
func BenchmarkDeliveryUnbatched(b *testing.B) {
	for range b.N {
		benchThroughput(b, 1, 20_000, packSize)
	}
}

// BenchmarkDeliveryUnbatchedSingles is BenchmarkDeliveryUnbatched with one
// event per message.
func BenchmarkDeliveryUnbatchedSingles(b *testing.B) {
	for range b.N {
		benchThroughput(b, 1, 20_000, 1)
	}
}

// BenchmarkDeliveryLatency1000 publishes 1,000 events/s for 5 s (one
// synchronous JetStream publish each, as Ingest stores them) and reports
// the publish-to-webhook latency percentiles.
func BenchmarkDeliveryLatency1000(b *testing.B) {
	for range b.N {
		e := newEnvB(b)
		hook := newCountingHook(b)
		e.startB(b, Options{}, hookSpec("lat", hook.srv.URL, nil))
		const rate, secs = 1000, 5
		tick := time.NewTicker(time.Second / rate)
		for i := range rate * secs {
			<-tick.C
			raw := fmt.Appendf(nil, `{"type":"track","event":"Bench","userId":"u-%d","messageId":"lat-%d","properties":{"sentNs":%d}}`, i%100, i, time.Now().UnixNano())
			if _, err := jetstream.Publish(b.Context(), e.js, streams.EventsSubject(testWorkspace, testSource), raw,
				jetstream.Headers{MsgID: fmt.Sprintf("lat-%d", i), Workspace: testWorkspace, Source: testSource, EventType: "track"}); err != nil {
				b.Fatal(err)
			}
		}
		tick.Stop()
		hook.wait(b, rate*secs, time.Minute)
		hook.mu.Lock()
		lat := slices.Clone(hook.lat)
		hook.mu.Unlock()
		slices.Sort(lat)
		b.ReportMetric(float64(pct(lat, 0.5))/1e6, "p50-ms")
		b.ReportMetric(float64(pct(lat, 0.99))/1e6, "p99-ms")
		b.ReportMetric(float64(lat[len(lat)-1])/1e6, "max-ms")
		b.ReportMetric(0, "ns/op")
	}
}
