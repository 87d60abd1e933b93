package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// vendorRequest is one request a vendor stub got.
type vendorRequest struct {
	Method, Path, Query string
	Header              http.Header
	Body                map[string]any
	Raw                 []byte
}

// vendorStub stands in for every HTTP vendor (Slack, Amplitude, Mixpanel,
// GA4): it answers 200 {"status":1} and records the requests by path.
type vendorStub struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []vendorRequest
}

func newVendorStub(t *testing.T) *vendorStub {
	t.Helper()
	v := &vendorStub{}
	v.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		req := vendorRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Raw: raw}
		_ = json.Unmarshal(raw, &req.Body)
		v.mu.Lock()
		v.reqs = append(v.reqs, req)
		v.mu.Unlock()
		_, _ = io.WriteString(w, `{"status":1}`)
	}))
	t.Cleanup(v.srv.Close)
	return v
}

// wait polls until a request to path arrived and returns the first.
func (v *vendorStub) wait(t *testing.T, path string, timeout time.Duration) vendorRequest {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v.mu.Lock()
		for _, r := range v.reqs {
			if r.Path == path {
				v.mu.Unlock()
				return r
			}
		}
		v.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no request to %s after %v", path, timeout)
		}
		time.Sleep(pollInterval)
	}
}

// catalogType and deliveryType are what the two registries list over REST.
type catalogType struct {
	Slug       string   `json:"slug"`
	Categories []string `json:"categories"`
	Options    []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		Required bool   `json:"required"`
		Secret   bool   `json:"secret"`
	} `json:"options"`
}

type deliveryType struct {
	Slug     string `json:"slug"`
	Category string `json:"category"`
	Settings []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		Required bool   `json:"required"`
	} `json:"settings"`
}

// TestDeliveryTypesThroughCatalog: Catalog's integration catalog and
// Delivery's destination types list the same types and settings; every
// Delivery type is created through POST /api/v1/destinations and then
// delivers; Slack and Amplitude get their vendors' request shapes.
func TestDeliveryTypesThroughCatalog(t *testing.T) {
	s := startSwitchyard(t)
	var cat struct {
		Destinations []catalogType `json:"destinations"`
	}
	var del struct {
		DestinationTypes []deliveryType `json:"destinationTypes"`
	}
	for path, v := range map[string]any{"/api/v1/catalog/destinations": &cat, "/api/v1/delivery/destination-types": &del} {
		res := s.admin(t, http.MethodGet, path, nil)
		if res.Status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, res.Status, res.Body)
		}
		decodeJSON(t, res.Body, v)
	}
	t.Run("Catalog and Delivery list the same types, settings and flags", func(t *testing.T) {
		// Delivery's API names a secret string or URL "secret" and a map
		// "object" (its proto has no secret flag); the rest must be equal.
		describe := func(name, typ string, required, secret bool) string {
			return fmt.Sprintf("%s:%s:required=%v:secret=%v", name, typ, required, secret)
		}
		cats := map[string][]string{}
		for _, c := range cat.Destinations {
			for _, o := range c.Options {
				typ := o.Type
				switch {
				case o.Secret && (typ == "string" || typ == "url"):
					typ = "secret"
				case typ == "map":
					typ = "object"
				case typ == "select":
					typ = "string"
				}
				cats[c.Slug+"/"+c.Categories[0]] = append(cats[c.Slug+"/"+c.Categories[0]], describe(o.Name, typ, o.Required, o.Secret && typ == "secret"))
			}
		}
		dels := map[string][]string{}
		for _, d := range del.DestinationTypes {
			for _, st := range d.Settings {
				dels[d.Slug+"/"+d.Category] = append(dels[d.Slug+"/"+d.Category], describe(st.Name, st.Type, st.Required, st.Type == "secret"))
			}
		}
		for _, m := range []map[string][]string{cats, dels} {
			for k := range m {
				sort.Strings(m[k])
			}
		}
		if len(cats) != 7 || fmt.Sprint(cats) != fmt.Sprint(dels) {
			t.Errorf("Catalog:  %v\nDelivery: %v", cats, dels)
		}
	})

	vendor := newVendorStub(t)
	prefix := fmt.Sprintf("e2e-%d:", time.Now().UnixNano())
	settings := map[string]map[string]any{
		"webhook":            {"url": vendor.srv.URL + "/hook", "method": "PUT", "signatureAlgorithm": "sha256", "sharedSecret": "k"},
		"slack":              {"webhookUrl": vendor.srv.URL + "/services/T1/B1/X1", "template": "{{userId}} did *{{event}}* for {{properties.total}}", "channel": "#growth"},
		"amplitude":          {"apiKey": "AMP-KEY", "endpoint": vendor.srv.URL + "/2/httpapi"},
		"mixpanel":           {"projectToken": "MP-TOKEN", "apiSecret": "MP-SECRET", "apiHost": vendor.srv.URL},
		"google-analytics-4": {"measurementId": "G-E2E", "apiSecret": "GA-SECRET", "endpoint": vendor.srv.URL + "/mp/collect"},
		"redis":              {"address": "127.0.0.1:6379", "database": 13, "keyPrefix": prefix},
		"rabbitmq":           {"url": "amqp://guest:guest@127.0.0.1:5672/", "routingKey": "e2e.{{type}}"},
	}
	ids := map[string]string{}
	t.Run("every Delivery type is created through Catalog", func(t *testing.T) {
		for _, d := range del.DestinationTypes {
			st, ok := settings[d.Slug]
			if !ok {
				t.Errorf("type %s has no settings in this test: add it", d.Slug)
				continue
			}
			res := s.admin(t, http.MethodPost, "/api/v1/destinations", map[string]any{
				"name": "e2e " + d.Slug, "type": d.Slug, "sourceId": s.Boot.SourceID, "enabled": true, "settings": st,
			})
			if res.Status != http.StatusOK {
				t.Errorf("create %s: %d %s", d.Slug, res.Status, res.Body)
				continue
			}
			var out struct {
				Destination struct{ ID string } `json:"destination"`
			}
			decodeJSON(t, res.Body, &out)
			ids[d.Slug] = out.Destination.ID
		}
	})
	if len(ids) != len(settings) {
		t.Fatalf("created %d of %d types", len(ids), len(settings))
	}
	// Wait until each destination's worker runs, then send.
	for slug, id := range ids {
		deadline := time.Now().Add(15 * time.Second)
		for {
			var st struct {
				Running bool   `json:"running"`
				Error   string `json:"error"`
			}
			res := s.admin(t, http.MethodGet, "/api/v1/destinations/"+id+"/delivery", nil)
			decodeJSON(t, res.Body, &st)
			if st.Running {
				break
			}
			if st.Error != "" || time.Now().After(deadline) {
				t.Fatalf("%s is not running: %s", slug, res.Body)
			}
			time.Sleep(pollInterval)
		}
	}
	for _, ev := range []map[string]any{
		{"type": "track", "userId": "u-77", "event": "Order Completed", "messageId": "e2e-track-1", "properties": map[string]any{"total": 42.5}},
		{"type": "identify", "userId": "u-77", "messageId": "e2e-identify-1", "traits": map[string]any{"email": "ada@example.com"}},
		{"type": "page", "userId": "u-77", "name": "Cart", "messageId": "e2e-page-1", "context": map[string]any{"page": map[string]any{"url": "https://shop.example/cart"}}},
	} {
		if res := s.request(t, http.MethodPost, "/v1/"+ev["type"].(string), ev, basicWriteKey(s.Boot.WriteKey)); res.Status != http.StatusOK {
			t.Fatalf("send %v: %d %s", ev["type"], res.Status, res.Body)
		}
	}
	t.Run("every type delivers", func(t *testing.T) {
		slugs := make([]string, 0, len(ids))
		for slug := range ids {
			slugs = append(slugs, slug)
		}
		slices.Sort(slugs)
		for _, slug := range slugs {
			deadline := time.Now().Add(20 * time.Second)
			for {
				var st struct {
					Delivered json.Number `json:"delivered"`
				}
				res := s.admin(t, http.MethodGet, "/api/v1/destinations/"+ids[slug]+"/delivery", nil)
				decodeJSON(t, res.Body, &st)
				if n, _ := st.Delivered.Int64(); n >= 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("%s delivered nothing: %s", slug, res.Body)
					break
				}
				time.Sleep(pollInterval)
			}
		}
	})
	t.Run("Slack gets an incoming-webhook message from the template", func(t *testing.T) {
		r := vendor.wait(t, "/services/T1/B1/X1", 10*time.Second)
		if r.Body["text"] != "u-77 did *Order Completed* for 42.5" || r.Body["channel"] != "#growth" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			t.Errorf("Slack request = %s %v", r.Raw, r.Header)
		}
	})
	t.Run("Amplitude gets an HTTP V2 API request", func(t *testing.T) {
		r := vendor.wait(t, "/2/httpapi", 10*time.Second)
		evs, _ := r.Body["events"].([]any)
		if r.Body["api_key"] != "AMP-KEY" || len(evs) != 1 {
			t.Fatalf("Amplitude request = %s", r.Raw)
		}
		e, _ := evs[0].(map[string]any)
		props, _ := e["event_properties"].(map[string]any)
		if e["user_id"] != "u-77" || (e["event_type"] != "Order Completed" && e["event_type"] != "$identify" && e["event_type"] != "Viewed Cart Page") || e["insert_id"] == "" {
			t.Errorf("Amplitude event = %v", e)
		}
		if e["event_type"] == "Order Completed" && props["total"] != 42.5 {
			t.Errorf("Amplitude event_properties = %v", props)
		}
	})
	t.Run("the webhook's method and signature settings apply", func(t *testing.T) {
		r := vendor.wait(t, "/hook", 10*time.Second)
		if r.Method != http.MethodPut {
			t.Errorf("webhook method = %s, want PUT", r.Method)
		}
		if r.Header.Get("X-Signature") == "" || len(r.Header.Get("X-Signature")) != 64 {
			t.Errorf("webhook X-Signature = %q, want a hex SHA-256 HMAC", r.Header.Get("X-Signature"))
		}
	})
}
