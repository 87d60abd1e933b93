package jetstream

import (
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestConsumerMetrics(t *testing.T) {
	t.Parallel()
	_, conn := startServer(t, t.TempDir())
	ensureEvents(t, conn.JS)
	ensureConsumer(t, conn.JS, "delivery-d1")
	for i, id := range []string{"m1", "m2", "m3"} {
		if _, err := Publish(t.Context(), conn.JS, "events.w.s", []byte(`{}`), Headers{MsgID: id}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	if _, err := RegisterConsumerMetrics(mp.Meter("test"), conn.JS, "EVENTS", "MISSING"); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
				c, _ := dp.Attributes.Value("consumer")
				got[m.Name+"/"+c.AsString()] = dp.Value
			}
		}
	}
	want := map[string]int64{
		"jetstream.consumer.pending/delivery-d1":     3,
		"jetstream.consumer.ack_pending/delivery-d1": 0,
		"jetstream.consumer.redelivered/delivery-d1": 0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}
