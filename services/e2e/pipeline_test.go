package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// libraryName is what @segment/analytics-node puts in context.library.name.
const libraryName = "@segment/analytics-node"

// TestPipeline follows events from the real Node SDK through `switchyard dev`
// to a webhook destination and to the embedded warehouse, then restarts the
// process on the same data dir and checks nothing is lost or redelivered.
func TestPipeline(t *testing.T) {
	t.Parallel()
	s := startSwitchyard(t)
	hook := newWebhookReceiver(t)
	destID := s.createWebhookDestination(t, "hook", hook.URL())

	evs := loadEvents(t, "pipeline_events.json")
	allIDs := messageIDs(evs, "", nil)
	trackIDs := messageIDs(evs, "type", "track")
	orderIDs := messageIDs(evs, "event", "Order Completed")
	viewIDs := messageIDs(evs, "event", "Product Viewed")
	identifyIDs := messageIDs(evs, "type", "identify")
	pageIDs := messageIDs(evs, "type", "page")
	if len(allIDs) != 30 || len(orderIDs) != 12 || len(viewIDs) != 8 || len(identifyIDs) != 6 || len(pageIDs) != 4 {
		t.Fatalf("fixture pipeline_events.json changed: %d events", len(allIDs))
	}

	sendWithSDK(t, s, evs)

	t.Run("warehouse rows once per messageId", func(t *testing.T) {
		s.waitRowsOnce(t, "http_api.tracks", trackIDs)
		s.waitRowsOnce(t, "http_api.order_completed", orderIDs)
		s.waitRowsOnce(t, "http_api.product_viewed", viewIDs)
		s.waitRowsOnce(t, "http_api.identifies", identifyIDs)
		s.waitRowsOnce(t, "http_api.pages", pageIDs)
	})

	t.Run("warehouse column values", func(t *testing.T) {
		common := []string{"received_at", "timestamp", "sent_at", "original_timestamp", "context_library_version"}

		row := s.oneRow(t, "select * from http_api.order_completed where id = 'e2e-order-01'")
		wantColumns(t, "order_completed e2e-order-01", row, map[string]any{
			"id":                   "e2e-order-01",
			"user_id":              "user-ada",
			"event":                "order_completed",
			"event_text":           "Order Completed",
			"order_id":             "order-01",
			"order_total":          float64(42),
			"currency":             "EUR",
			"coupon_used":          false,
			"shipping_method":      "express",
			"shipping_cost":        float64(5),
			"context_library_name": libraryName,
		})
		wantNonEmpty(t, "order_completed e2e-order-01", row, common...)

		row = s.oneRow(t, "select * from http_api.order_completed where id = 'e2e-order-03'")
		wantColumns(t, "order_completed e2e-order-03", row, map[string]any{
			"user_id":     "user-alan",
			"order_total": float64(43),
			"coupon_used": false,
		})

		row = s.oneRow(t, "select * from http_api.tracks where id = 'e2e-order-01'")
		wantColumns(t, "tracks e2e-order-01", row, map[string]any{
			"user_id":              "user-ada",
			"event":                "order_completed",
			"event_text":           "Order Completed",
			"context_library_name": libraryName,
		})
		wantNonEmpty(t, "tracks e2e-order-01", row, common...)

		row = s.oneRow(t, "select * from http_api.tracks where id = 'e2e-view-03'")
		wantColumns(t, "tracks e2e-view-03", row, map[string]any{
			"user_id":      nil,
			"anonymous_id": "anon-03",
			"event":        "product_viewed",
			"event_text":   "Product Viewed",
		})

		row = s.oneRow(t, "select * from http_api.product_viewed where id = 'e2e-view-03'")
		wantColumns(t, "product_viewed e2e-view-03", row, map[string]any{
			"anonymous_id":         "anon-03",
			"event":                "product_viewed",
			"event_text":           "Product Viewed",
			"product_id":           "sku-03",
			"price":                9.5,
			"category":             "books",
			"context_library_name": libraryName,
		})

		row = s.oneRow(t, "select * from http_api.identifies where id = 'e2e-identify-01'")
		wantColumns(t, "identifies e2e-identify-01", row, map[string]any{
			"user_id":              "user-ada",
			"first_name":           "Ada",
			"last_name":            "Lovelace",
			"email":                "user1@example.com",
			"address_city":         "London",
			"address_postal_code":  "NW1",
			"context_library_name": libraryName,
		})
		wantNonEmpty(t, "identifies e2e-identify-01", row, common...)

		row = s.oneRow(t, "select * from http_api.pages where id = 'e2e-page-02'")
		wantColumns(t, "pages e2e-page-02", row, map[string]any{
			"anonymous_id":         "anon-page-02",
			"name":                 "Pricing",
			"path":                 "/pricing",
			"referrer_code":        "spring-sale",
			"context_library_name": libraryName,
		})
		wantNonEmpty(t, "pages e2e-page-02", row, common...)

		// A nested object is flattened, never stored under its own name.
		qr := s.query(t, "select * from http_api.order_completed where id = 'e2e-order-02'")
		if slices.Contains(qr.Columns, "shipping") || slices.Contains(qr.Columns, "orderTotal") {
			t.Errorf("order_completed columns %v: want nested and camelCase keys flattened to snake_case", qr.Columns)
		}
	})

	t.Run("webhook got every event once", func(t *testing.T) {
		acc := hook.waitAccepted(t, allIDs, deliveryWait)
		hook.assertWellFormed(t)
		for id, n := range hook.attempts() {
			if n != 1 {
				t.Errorf("webhook: messageId %q delivered %d times, want 1", id, n)
			}
			if !slices.Contains(allIDs, id) {
				t.Errorf("webhook: unexpected messageId %q", id)
			}
		}

		body := acc["e2e-order-01"][0].Body
		wantFields(t, "webhook e2e-order-01", body, map[string]any{
			"messageId":                  "e2e-order-01",
			"type":                       "track",
			"event":                      "Order Completed",
			"userId":                     "user-ada",
			"properties.orderTotal":      float64(42),
			"properties.currency":        "EUR",
			"properties.shipping.method": "express",
			"context.library.name":       libraryName,
		})
		wantFieldsNonEmpty(t, "webhook e2e-order-01", body, "receivedAt", "timestamp")

		body = acc["e2e-identify-01"][0].Body
		wantFields(t, "webhook e2e-identify-01", body, map[string]any{
			"type":                 "identify",
			"userId":               "user-ada",
			"traits.firstName":     "Ada",
			"traits.address.city":  "London",
			"context.library.name": libraryName,
		})
		wantFieldsNonEmpty(t, "webhook e2e-identify-01", body, "receivedAt")

		body = acc["e2e-page-02"][0].Body
		wantFields(t, "webhook e2e-page-02", body, map[string]any{
			"type":                    "page",
			"anonymousId":             "anon-page-02",
			"name":                    "Pricing",
			"properties.referrerCode": "spring-sale",
		})
		wantFieldsNonEmpty(t, "webhook e2e-page-02", body, "receivedAt")
	})
	if t.Failed() {
		return
	}

	t.Run("restart keeps data and delivers nothing twice", func(t *testing.T) {
		s.restart(t)

		// Rows are durable: there right after the restart, still once each.
		s.assertRowsOnce(t, "http_api.tracks", trackIDs)
		s.assertRowsOnce(t, "http_api.order_completed", orderIDs)
		s.assertRowsOnce(t, "http_api.identifies", identifyIDs)
		s.assertRowsOnce(t, "http_api.pages", pageIDs)

		// Give a wrongly unacked backlog the chance to show up as redeliveries.
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			assertDeliveredOnce(t, hook, allIDs)
			if t.Failed() {
				return
			}
			time.Sleep(pollInterval)
		}

		found := false
		for _, d := range s.listDestinations(t) {
			if d["id"] == destID {
				found = true
				if d["name"] != "hook" {
					t.Errorf("destination %s name = %v after restart, want hook", destID, d["name"])
				}
			}
		}
		if !found {
			t.Errorf("destination %s not listed after restart", destID)
		}

		// The pipeline runs again after the restart.
		more := loadEvents(t, "after_restart_events.json")
		sendWithSDK(t, s, more)
		moreIDs := messageIDs(more, "", nil)
		hook.waitAccepted(t, moreIDs, deliveryWait)
		s.waitRowsOnce(t, "http_api.order_completed", append(slices.Clone(orderIDs), moreIDs...))
		assertDeliveredOnce(t, hook, append(slices.Clone(allIDs), moreIDs...))
	})
}

// assertDeliveredOnce checks that the receiver got each id of ids exactly
// once and nothing else.
func assertDeliveredOnce(t *testing.T, hook *webhookReceiver, ids []string) {
	t.Helper()
	att := hook.attempts()
	for _, id := range ids {
		if att[id] != 1 {
			t.Errorf("webhook: messageId %q delivered %d times, want 1", id, att[id])
		}
	}
	for id, n := range att {
		if !slices.Contains(ids, id) {
			t.Errorf("webhook: unexpected messageId %q (%d times)", id, n)
		}
	}
}

// field returns the value at a dotted path of a decoded JSON object.
func field(body map[string]any, path string) (any, bool) {
	var cur any = body
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// wantFields checks dotted paths of body against want (float64 compares numerically).
func wantFields(t *testing.T, what string, body map[string]any, want map[string]any) {
	t.Helper()
	for path, w := range want {
		got, ok := field(body, path)
		if !ok {
			t.Errorf("%s: no field %s in body", what, path)
			continue
		}
		if wf, isNum := w.(float64); isNum {
			if got == nil || asFloat(t, got) != wf {
				t.Errorf("%s: %s = %v, want %v", what, path, got, wf)
			}
		} else if got != w {
			t.Errorf("%s: %s = %#v, want %#v", what, path, got, w)
		}
	}
}

// wantFieldsNonEmpty checks that each dotted path holds a non-empty value.
func wantFieldsNonEmpty(t *testing.T, what string, body map[string]any, paths ...string) {
	t.Helper()
	for _, path := range paths {
		if v, ok := field(body, path); !ok || v == nil || v == "" {
			t.Errorf("%s: %s = %#v, want a value", what, path, v)
		}
	}
}
