package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape reads /metrics and returns the value of every sample whose name
// and labels match: the key is the metric name followed by the selected
// label values, e.g. metric{outcome="delivered"} sums every matching series.
func (s *switchyard) scrape(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	res := s.request(t, http.MethodGet, "/metrics", nil, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("/metrics: status %d", res.Status)
	}
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(string(res.Body)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for k, v := range labels {
			if !strings.Contains(line, fmt.Sprintf("%s=%q", k, v)) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		sum += f
	}
	return sum
}

// TestMetricsCountKnownTraffic sends known traffic and checks the counts
// /metrics reports for Ingest, Delivery, Warehouse and the JetStream
// consumers.
func TestMetricsCountKnownTraffic(t *testing.T) {
	t.Parallel()
	sy := startSwitchyard(t)
	recv := newWebhookReceiver(t, 500) // the first attempt fails once
	dest := sy.createWebhookDestination(t, "metrics hook", recv.URL())

	var ids []string
	var batch []string
	for i := range 5 {
		id := fmt.Sprintf("metrics-%d", i)
		ids = append(ids, id)
		batch = append(batch, fmt.Sprintf(`{"type":"track","userId":"u-%d","event":"Metered","messageId":%q}`, i, id))
	}
	batch = append(batch, `{"type":"track","userId":"u-x"}`) // rejected: missing_event
	res := sy.request(t, http.MethodPost, "/v1/batch", `{"batch":[`+strings.Join(batch, ",")+`]}`, basicWriteKey(sy.Boot.WriteKey))
	if res.Status != http.StatusOK {
		t.Fatalf("batch: %d %s", res.Status, res.Body)
	}
	if res := sy.request(t, http.MethodPost, "/v1/track", `{"userId":`, basicWriteKey(sy.Boot.WriteKey)); res.Status != http.StatusBadRequest {
		t.Fatalf("bad JSON track: %d %s", res.Status, res.Body)
	}
	recv.waitAccepted(t, ids, deliveryWait)
	sy.waitRowsOnce(t, "http_api.metered", ids)

	deadline := time.Now().Add(10 * time.Second)
	for {
		delivered := sy.scrape(t, "switchyard_delivery_events_total", map[string]string{"destination": dest, "outcome": "delivered"})
		retrying := sy.scrape(t, "switchyard_delivery_events_total", map[string]string{"destination": dest, "outcome": "retrying"})
		// tracks + metered: every event is one row in each table.
		loaded := sy.scrape(t, "switchyard_warehouse_events_total", map[string]string{"warehouse": sy.Boot.WarehouseID, "schema": "http_api"})
		pending := sy.scrape(t, "jetstream_consumer_pending", map[string]string{"consumer": "delivery-" + dest})
		if delivered == 5 && retrying == 1 && loaded == 5 && pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics: delivered=%v (want 5) retrying=%v (want 1) warehouse events=%v (want 5) pending=%v (want 0)",
				delivered, retrying, loaded, pending)
		}
		time.Sleep(pollInterval)
	}
	if lat := sy.scrape(t, "switchyard_delivery_latency_seconds_count", map[string]string{"destination": dest}); lat != 5 {
		t.Errorf("delivery latency observations = %v, want 5", lat)
	}
	t.Run("delivery metrics over time: one point per minute", func(t *testing.T) {
		res := sy.admin(t, http.MethodGet, "/api/v1/destinations/"+dest+"/delivery-metrics", nil)
		if res.Status != http.StatusOK {
			t.Fatalf("delivery-metrics: %d %s", res.Status, res.Body)
		}
		var out struct {
			Minutes []struct {
				Start     string `json:"start"`
				Delivered string `json:"delivered"`
				Retried   string `json:"retried"`
			} `json:"minutes"`
		}
		decodeJSON(t, res.Body, &out)
		if len(out.Minutes) != 60 {
			t.Fatalf("minutes = %d points, want 60", len(out.Minutes))
		}
		var delivered, retried int
		for _, m := range out.Minutes {
			d, _ := strconv.Atoi(m.Delivered)
			r, _ := strconv.Atoi(m.Retried)
			delivered, retried = delivered+d, retried+r
		}
		if delivered != 5 || retried != 1 {
			t.Errorf("sum over the minutes: delivered %d retried %d, want 5 and 1", delivered, retried)
		}
	})
	ingest := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"switchyard_ingest_events_total", map[string]string{"outcome": "accepted"}, 5},
		{"switchyard_ingest_events_total", map[string]string{"outcome": "rejected", "reason": "missing_event"}, 1},
		{"switchyard_ingest_events_total", map[string]string{"outcome": "rejected", "reason": "invalid_json"}, 1},
		{"switchyard_ingest_requests_total", map[string]string{"endpoint": "batch", "code": "200"}, 1},
		{"switchyard_ingest_requests_total", map[string]string{"endpoint": "track", "code": "400"}, 1},
		{"switchyard_ingest_publish_duration_seconds_count", nil, 2}, // the batch and the repeated track
	}
	t.Run("a repeated messageId is counted and shown as a duplicate", func(t *testing.T) {
		if res := sy.request(t, http.MethodPost, "/v1/track", `{"type":"track","userId":"u-0","event":"Metered","messageId":"metrics-0"}`, basicWriteKey(sy.Boot.WriteKey)); res.Status != http.StatusOK {
			t.Fatalf("repeat: %d %s", res.Status, res.Body)
		}
		if got := sy.scrape(t, "switchyard_ingest_events_total", map[string]string{"outcome": "duplicate"}); got != 1 {
			t.Errorf("duplicates counted = %v, want 1", got)
		}
		res := sy.admin(t, http.MethodGet, "/api/v1/sources/"+sy.Boot.SourceID+"/events?limit=1", nil)
		var out struct {
			Events []struct {
				MessageID string `json:"messageId"`
				Status    string `json:"status"`
				Event     string `json:"event"`
			} `json:"events"`
		}
		decodeJSON(t, res.Body, &out)
		if len(out.Events) != 1 || out.Events[0].MessageID != "metrics-0" || out.Events[0].Status != "duplicate" || out.Events[0].Event != "Metered" {
			t.Errorf("debugger's latest event = %+v, want metrics-0 as a duplicate", out.Events)
		}
	})
	for _, m := range ingest {
		if got := sy.scrape(t, m.name, m.labels); got != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
}
