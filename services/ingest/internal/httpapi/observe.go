package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchyardhq/switchyard/services/ingest/internal/debugger"
	"github.com/switchyardhq/switchyard/services/ingest/internal/tracking"
)

// cut returns at most debugger.MaxPayload bytes of b as a string (a copy,
// so the debugger never holds request buffers).
func cut(b []byte) string { return string(b[:min(len(b), debugger.MaxPayload)]) }

// Ingest's metrics (exported at /metrics):
//   - switchyard.ingest.requests{endpoint, code}: Tracking API requests by
//     HTTP status;
//   - switchyard.ingest.events{outcome, reason}: events accepted, rejected
//     (reason = the rule) or dropped as duplicates of stored messageIds;
//   - switchyard.ingest.publish.duration: seconds until JetStream
//     acknowledged a request's events.
var (
	meter              = otel.Meter("github.com/switchyardhq/switchyard/services/ingest")
	requestsCounter, _ = meter.Int64Counter("switchyard.ingest.requests", metric.WithDescription("Tracking API requests by status"), metric.WithUnit("{request}"))
	eventsCounter, _   = meter.Int64Counter("switchyard.ingest.events", metric.WithDescription("Events accepted or rejected"), metric.WithUnit("{event}"))
	publishHist, _     = meter.Float64Histogram("switchyard.ingest.publish.duration", metric.WithDescription("Time until JetStream acknowledged a request's events"),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
	accepted  = metric.WithAttributes(attribute.String("outcome", "accepted"))
	duplicate = metric.WithAttributes(attribute.String("outcome", "duplicate"))
)

func countRejected(code string, n int) {
	eventsCounter.Add(context.Background(), int64(n), metric.WithAttributes(attribute.String("outcome", "rejected"), attribute.String("reason", code)))
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Instrument counts every Tracking API request by endpoint and status.
func Instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		endpoint := strings.TrimPrefix(r.URL.Path, "/v1/")
		if strings.HasPrefix(endpoint, "projects/") {
			endpoint = "settings"
		} else if _, ok := singleTypes[endpoint]; !ok && !batchPaths[endpoint] && endpoint != "m" {
			endpoint = "other"
		}
		requestsCounter.Add(r.Context(), 1, metric.WithAttributes(attribute.String("endpoint", endpoint), attribute.String("code", strconv.Itoa(rec.code))))
	})
}

// reportingPublisher is a Publisher that also says which events it
// dropped as duplicates of earlier requests (events.Publisher is one).
type reportingPublisher interface {
	PublishReporting(ctx context.Context, workspaceID, sourceID string, evs []tracking.Event, seenBefore func(messageID string)) error
}

// debugRejected records a refused request of a known source.
func (h *Handler) debugRejected(sourceID, code, reason string, body []byte) {
	if h.Debugger == nil {
		return
	}
	h.Debugger.Record(sourceID, debugger.Entry{ReceivedAt: time.Now(), Status: debugger.Rejected, Code: code, Reason: reason, Payload: cut(body)})
}

// debugAccepted records a stored request's events and its rejected items.
// A rejected batch item has no payload of its own here; a rejected single
// call never reaches this point (it is a request error).
//
// dups holds the messageIds the publisher dropped because an earlier
// request stored them; a repeat of an id inside this request is a
// duplicate too (the first occurrence is the one stored).
func (h *Handler) debugAccepted(sourceID string, req *tracking.Request, body []byte, single bool, dups map[string]bool) {
	now := time.Now()
	inRequest := make(map[string]bool, len(req.Events))
	var nAccepted, nDup int64
	for _, ev := range req.Events {
		status := debugger.Accepted
		if dups[ev.MessageID] || inRequest[ev.MessageID] {
			status = debugger.Duplicate
			nDup++
		} else {
			nAccepted++
		}
		inRequest[ev.MessageID] = true
		if h.Debugger != nil {
			e := debugger.Entry{ReceivedAt: now, MessageID: ev.MessageID, Type: ev.Type, Status: status, Payload: cut(ev.JSON)}
			if status == debugger.Duplicate {
				e.Reason = "messageId already stored within the dedupe window: dropped"
			}
			h.Debugger.Record(sourceID, e)
		}
	}
	eventsCounter.Add(context.Background(), nAccepted, accepted)
	if nDup > 0 {
		eventsCounter.Add(context.Background(), nDup, duplicate)
	}
	for _, rej := range req.Rejected {
		countRejected(rej.Code, 1)
	}
	if h.Debugger == nil {
		return
	}
	for _, rej := range req.Rejected {
		e := debugger.Entry{ReceivedAt: now, Status: debugger.Rejected, Code: rej.Code, Reason: rej.Message}
		if single {
			e.Payload = cut(body)
		}
		h.Debugger.Record(sourceID, e)
	}
}
