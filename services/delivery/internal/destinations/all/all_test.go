package all_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	amqp "github.com/rabbitmq/amqp091-go"
	goredis "github.com/redis/go-redis/v9"
	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations"
	_ "github.com/switchyardhq/switchyard/services/delivery/internal/destinations/all"
	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations/webhook"
	"github.com/switchyardhq/switchyard/services/delivery/internal/pipeline"
)

const trackJSON = `{"type":"track","event":"Order Completed","userId":"u-1","anonymousId":"a-1","messageId":"m-1",
"timestamp":"2024-05-01T10:00:00.123Z","properties":{"total":42.5,"currency":"EUR","items":[{"sku":"x"}]},
"context":{"ip":"203.0.113.9","page":{"url":"https://shop.example/cart","title":"Cart"}}}`

const identifyJSON = `{"type":"identify","userId":"u-1","anonymousId":"a-1","messageId":"m-2",
"timestamp":"2024-05-01T10:00:00Z","traits":{"email":"ada@example.com","plan":"pro","logins":3,"address":{"city":"Oslo"}}}`

const pageJSON = `{"type":"page","name":"Cart","userId":"u-1","anonymousId":"a-1","messageId":"m-3",
"timestamp":"2024-05-01T10:00:00Z","properties":{"path":"/cart"},"context":{"page":{"url":"https://shop.example/cart","title":"Cart","referrer":"https://google.com/"}}}`

// captured is one request a vendor stub got.
type captured struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
}

type vendor struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []captured
	body string
}

func newVendor(t *testing.T, answer string) *vendor {
	v := &vendor{body: answer}
	v.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		v.mu.Lock()
		v.reqs = append(v.reqs, captured{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), b})
		v.mu.Unlock()
		_, _ = io.WriteString(w, v.body)
	}))
	t.Cleanup(v.srv.Close)
	return v
}

// deliver runs ev through the type's default subscriptions and sends it.
func deliver(t *testing.T, slug string, settings map[string]any, raw string) {
	t.Helper()
	plan, err := pipeline.Compile(pipeline.Spec{ID: "d-1", Name: "d", Type: slug, Settings: settings})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	inst, err := plan.Type.New(destinations.Config{DestinationID: "d-1", Settings: plan.Settings, HTTP: destinations.NewHTTPClient(http.DefaultTransport, 5*time.Second)})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	defer inst.Close()
	var ev map[string]any
	_ = json.Unmarshal([]byte(raw), &ev)
	out, err := plan.Prepare([]byte(raw), ev["messageId"].(string), false)
	if err != nil || out.Skipped || len(out.Sends) != 1 {
		t.Fatalf("prepare: %+v %v, want one send", out, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := inst.Send(ctx, out.Sends[0].Action, []destinations.Payload{out.Sends[0].Payload}); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func jsonEq(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body is not JSON: %s", got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("body =\n%s\nwant\n%s", gb, wb)
	}
}

func TestWebhook(t *testing.T) {
	t.Parallel()
	v := newVendor(t, "ok")
	deliver(t, "webhook", map[string]any{"url": v.srv.URL + "/hook", "headers": map[string]any{"X-Team": "growth"}, "sharedSecret": "s3cret"}, trackJSON)
	r := v.reqs[0]
	t.Run("POST of the event as received, with headers, idempotency key and HMAC-SHA1 signature", func(t *testing.T) {
		if r.Method != "POST" || r.Path != "/hook" || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Team") != "growth" {
			t.Errorf("request = %s %s %v", r.Method, r.Path, r.Header)
		}
		jsonEq(t, r.Body, trackJSON)
		if got := r.Header.Get("Idempotency-Key"); got != "m-1" {
			t.Errorf("Idempotency-Key = %q, want m-1", got)
		}
		if got, want := r.Header.Get("X-Signature"), webhook.Sign(sha1.New, []byte("s3cret"), r.Body); got != want || len(got) != 40 {
			t.Errorf("X-Signature = %q, want %q", got, want)
		}
	})
	t.Run("batching sends a JSON array", func(t *testing.T) {
		v := newVendor(t, "ok")
		plan, err := pipeline.Compile(pipeline.Spec{ID: "d", Type: "webhook", Settings: map[string]any{"url": v.srv.URL, "batchSize": float64(2)}})
		if err != nil {
			t.Fatal(err)
		}
		inst, _ := plan.Type.New(destinations.Config{Settings: plan.Settings, HTTP: http.DefaultClient})
		if inst.BatchSize() != 2 {
			t.Fatalf("BatchSize = %d", inst.BatchSize())
		}
		err = inst.Send(context.Background(), "send", []destinations.Payload{{MessageID: "m-1", Raw: []byte(`{"a":1}`)}, {MessageID: "m-2", Raw: []byte(`{"b":2}`)}})
		if err != nil {
			t.Fatal(err)
		}
		jsonEq(t, v.reqs[0].Body, `[{"a":1},{"b":2}]`)
		if k := v.reqs[0].Header.Get("Idempotency-Key"); !strings.HasPrefix(k, "batch-") {
			t.Errorf("batch Idempotency-Key = %q, want batch-…", k)
		}
	})
	t.Run("settings are validated against the schema", func(t *testing.T) {
		for _, s := range []map[string]any{{}, {"url": "ftp://x"}, {"url": "http://x", "nope": 1}, {"url": "http://x", "batchSize": float64(5000)},
			// Headers the HTTP client would refuse on every request.
			{"url": "http://x", "headers": map[string]any{"Authorization": "Bearer x\n"}},
			{"url": "http://x", "headers": map[string]any{"X Team": "growth"}},
			{"url": "http://x", "sharedSecret": "s", "signatureHeader": "X Signature"}} {
			plan, err := pipeline.Compile(pipeline.Spec{Type: "webhook", Settings: s})
			if err == nil {
				_, err = plan.Type.New(destinations.Config{Settings: plan.Settings, HTTP: http.DefaultClient})
			}
			if _, ok := err.(*destinations.SettingsError); !ok {
				t.Errorf("settings %v: error %v, want a SettingsError", s, err)
			}
		}
	})
}

// TestMessageIDAsHeader checks the Idempotency-Key of the types that send
// one: the messageId, or "sha256:<hex>" of it when it is not a safe header
// value (here a control character), which Go's client would refuse.
func TestMessageIDAsHeader(t *testing.T) {
	t.Parallel()
	const odd = "one-ctl-\u0007"
	sum := sha256.Sum256([]byte(odd))
	want := "sha256:" + hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		slug     string
		settings func(url string) map[string]any
	}{
		{"webhook", func(url string) map[string]any { return map[string]any{"url": url} }},
		{"slack", func(url string) map[string]any { return map[string]any{"webhookUrl": url} }},
	} {
		t.Run(tc.slug, func(t *testing.T) {
			t.Parallel()
			v := newVendor(t, "ok")
			raw := strings.Replace(trackJSON, `"messageId":"m-1"`, `"messageId":"one-ctl-\u0007"`, 1)
			deliver(t, tc.slug, tc.settings(v.srv.URL), raw)
			if got := v.reqs[0].Header.Get("Idempotency-Key"); got != want {
				t.Errorf("Idempotency-Key = %q, want %q", got, want)
			}
		})
	}
}

func TestSlack(t *testing.T) {
	t.Parallel()
	v := newVendor(t, "ok")
	deliver(t, "slack", map[string]any{"webhookUrl": v.srv.URL + "/services/T/B/X", "template": "{{userId}} ordered for {{properties.total}} {{properties.currency}}", "channel": "#sales"}, trackJSON)
	jsonEq(t, v.reqs[0].Body, `{"text":"u-1 ordered for 42.5 EUR","channel":"#sales"}`)
	if v.reqs[0].Path != "/services/T/B/X" {
		t.Errorf("path = %s", v.reqs[0].Path)
	}
}

func TestAmplitude(t *testing.T) {
	t.Parallel()
	v := newVendor(t, `{"code":200}`)
	settings := map[string]any{"apiKey": "KEY", "endpoint": v.srv.URL + "/2/httpapi"}
	deliver(t, "amplitude", settings, trackJSON)
	deliver(t, "amplitude", settings, identifyJSON)
	deliver(t, "amplitude", settings, pageJSON)
	t.Run("track is an event with insert_id = messageId and time in ms", func(t *testing.T) {
		jsonEq(t, v.reqs[0].Body, `{"api_key":"KEY","events":[{"user_id":"u-1","device_id":"a-1","event_type":"Order Completed","time":1714557600123,
		"event_properties":{"total":42.5,"currency":"EUR","items":[{"sku":"x"}]},"insert_id":"m-1","ip":"203.0.113.9","library":"switchyard"}]}`)
	})
	t.Run("identify is $identify with user_properties.$set", func(t *testing.T) {
		jsonEq(t, v.reqs[1].Body, `{"api_key":"KEY","events":[{"user_id":"u-1","device_id":"a-1","event_type":"$identify","time":1714557600000,
		"user_properties":{"$set":{"email":"ada@example.com","plan":"pro","logins":3,"address":{"city":"Oslo"}}},"insert_id":"m-2","library":"switchyard"}]}`)
	})
	t.Run("page is Viewed <name> Page", func(t *testing.T) {
		jsonEq(t, v.reqs[2].Body, `{"api_key":"KEY","events":[{"user_id":"u-1","device_id":"a-1","event_type":"Viewed Cart Page","time":1714557600000,
		"event_properties":{"path":"/cart"},"insert_id":"m-3","library":"switchyard"}]}`)
	})
	if v.reqs[0].Path != "/2/httpapi" || v.reqs[0].Method != "POST" {
		t.Errorf("request = %s %s", v.reqs[0].Method, v.reqs[0].Path)
	}
}

func TestMixpanel(t *testing.T) {
	t.Parallel()
	v := newVendor(t, `{"code":200,"num_records_imported":1,"status":1}`)
	settings := map[string]any{"projectToken": "TOKEN", "apiSecret": "SECRET", "apiHost": v.srv.URL}
	deliver(t, "mixpanel", settings, trackJSON)
	deliver(t, "mixpanel", settings, identifyJSON)
	t.Run("track goes to /import?strict=1 with Basic auth of the API secret", func(t *testing.T) {
		r := v.reqs[0]
		if r.Path != "/import" || r.Query != "strict=1" {
			t.Errorf("request = %s?%s", r.Path, r.Query)
		}
		if u, p, ok := (&http.Request{Header: r.Header}).BasicAuth(); !ok || u != "SECRET" || p != "" {
			t.Errorf("basic auth = %q %q %v, want SECRET and an empty password", u, p, ok)
		}
		jsonEq(t, r.Body, `[{"event":"Order Completed","properties":{"total":42.5,"currency":"EUR","items":[{"sku":"x"}],
		"distinct_id":"u-1","$insert_id":"m-1","time":1714557600123,"ip":"203.0.113.9"}}]`)
	})
	t.Run("identify is a profile $set on /engage", func(t *testing.T) {
		r := v.reqs[1]
		if r.Path != "/engage" {
			t.Errorf("path = %s", r.Path)
		}
		jsonEq(t, r.Body, `[{"$token":"TOKEN","$distinct_id":"u-1","$set":{"email":"ada@example.com","plan":"pro","logins":3,"address":{"city":"Oslo"}}}]`)
	})
}

func TestGA4(t *testing.T) {
	t.Parallel()
	v := newVendor(t, "")
	settings := map[string]any{"measurementId": "G-TEST", "apiSecret": "SECRET", "endpoint": v.srv.URL + "/mp/collect"}
	deliver(t, "google-analytics-4", settings, trackJSON)
	deliver(t, "google-analytics-4", settings, pageJSON)
	r := v.reqs[0]
	if r.Path != "/mp/collect" || r.Query != "api_secret=SECRET&measurement_id=G-TEST" {
		t.Errorf("request = %s?%s", r.Path, r.Query)
	}
	t.Run("track is a snake_case event with scalar params", func(t *testing.T) {
		jsonEq(t, r.Body, `{"client_id":"a-1","user_id":"u-1","timestamp_micros":1714557600123000,
		"events":[{"name":"order_completed","params":{"total":42.5,"currency":"EUR","items":"[{\"sku\":\"x\"}]"}}]}`)
	})
	t.Run("page is page_view with location, title, referrer", func(t *testing.T) {
		jsonEq(t, v.reqs[1].Body, `{"client_id":"a-1","user_id":"u-1","timestamp_micros":1714557600000000,
		"events":[{"name":"page_view","params":{"path":"/cart","page_location":"https://shop.example/cart","page_title":"Cart","page_referrer":"https://google.com/"}}]}`)
	})
}

// TestRedis writes to the machine's Redis (127.0.0.1:6379), database 13,
// under a per-run key prefix.
func TestRedis(t *testing.T) {
	t.Parallel()
	prefix := fmt.Sprintf("switchyard-test:%d:user:", time.Now().UnixNano())
	addr := testenv.Redis(t) // starts the machine's Redis when it is installed but stopped
	deliver(t, "redis", map[string]any{"address": addr, "database": float64(13), "keyPrefix": prefix}, identifyJSON)
	c := goredis.NewClient(&goredis.Options{Addr: addr, DB: 13})
	defer c.Close()
	t.Cleanup(func() { c.Del(context.Background(), prefix+"u-1") })
	got, err := c.HGetAll(context.Background(), prefix+"u-1").Result()
	if err != nil {
		t.Fatalf("redis: %v (is redis-server running on 127.0.0.1:6379?)", err)
	}
	want := map[string]string{"email": "ada@example.com", "plan": "pro", "logins": "3", "address": `{"city":"Oslo"}`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hash = %v, want %v", got, want)
	}
}

// TestRabbitMQ publishes to the machine's RabbitMQ (127.0.0.1:5672,
// guest/guest) through a per-run exchange bound to a per-run queue.
func TestRabbitMQ(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitMQ(t) // starts the machine's RabbitMQ when it is installed but stopped
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("rabbitmq: %v (is rabbitmq-server running on 127.0.0.1:5672?)", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("switchyard-test-%d", time.Now().UnixNano())
	if err := ch.ExchangeDeclare(name, "topic", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare(name, false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "switchyard.#", name, false, nil); err != nil {
		t.Fatal(err)
	}
	deliver(t, "rabbitmq", map[string]any{"url": url, "exchange": name}, trackJSON)
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, ok, err := ch.Get(q.Name, true)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if m.RoutingKey != "switchyard.track" || m.MessageId != "m-1" || m.ContentType != "application/json" || m.DeliveryMode != amqp.Persistent || m.Type != "track" {
				t.Errorf("message = key %q id %q type %q content %q mode %d", m.RoutingKey, m.MessageId, m.Type, m.ContentType, m.DeliveryMode)
			}
			jsonEq(t, m.Body, trackJSON)
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no message reached the queue")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRabbitMQShortStrings checks the AMQP short-string limit (255
// bytes): a longer messageId (100 characters may be 400 bytes) is published
// with message-id "sha256:<hex>", and a routing key built from event data
// that is too long is a final failure, not a publish error retried for
// hours.
func TestRabbitMQShortStrings(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitMQ(t)
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("rabbitmq: %v (is rabbitmq-server running on 127.0.0.1:5672?)", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("switchyard-test-short-%d", time.Now().UnixNano())
	if err := ch.ExchangeDeclare(name, "topic", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare(name, false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "#", name, false, nil); err != nil {
		t.Fatal(err)
	}
	plan, err := pipeline.Compile(pipeline.Spec{ID: "d-1", Name: "d", Type: "rabbitmq",
		Settings: map[string]any{"url": url, "exchange": name, "routingKey": "switchyard.{{event}}"}})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := plan.Type.New(destinations.Config{DestinationID: "d-1", Settings: plan.Settings})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	send := func(event, messageID string) error {
		ev := map[string]any{"type": "track", "event": event, "userId": "u-1", "messageId": messageID}
		raw, _ := json.Marshal(ev)
		return inst.Send(t.Context(), "publish", []destinations.Payload{{MessageID: messageID, Event: ev, Raw: raw}})
	}

	longID := strings.Repeat("😀", 100) // 100 characters, 400 bytes
	if err := send("Long Id", longID); err != nil {
		t.Fatalf("publish with a 400-byte messageId: %v", err)
	}
	sum := sha256.Sum256([]byte(longID))
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, ok, err := ch.Get(q.Name, true)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if want := "sha256:" + hex.EncodeToString(sum[:]); m.MessageId != want || m.RoutingKey != "switchyard.Long Id" {
				t.Errorf("message = id %q key %q, want id %q key switchyard.Long Id", m.MessageId, m.RoutingKey, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no message reached the queue")
		}
		time.Sleep(20 * time.Millisecond)
	}

	err = send(strings.Repeat("e", 300), "m-long-key")
	var f *destinations.Failure
	if !errors.As(err, &f) || f.Retryable || f.Reason != destinations.ReasonInvalid || !strings.Contains(f.Error(), "routing key") {
		t.Errorf("publish with a 311-byte routing key: err = %v, want a final invalid_payload failure about the routing key", err)
	}
}

func TestEveryTypeDeclaresItself(t *testing.T) {
	t.Parallel()
	want := []string{"amplitude", "google-analytics-4", "mixpanel", "rabbitmq", "redis", "slack", "webhook"}
	var got []string
	for _, typ := range destinations.All() {
		got = append(got, typ.Slug)
		if typ.Name == "" || typ.Category == "" || len(typ.SupportedEvents) == 0 || len(typ.Actions) == 0 || typ.New == nil {
			t.Errorf("type %s lacks metadata or actions: %+v", typ.Slug, typ.Metadata)
		}
		for _, a := range typ.Actions {
			if err := destinations.ValidateTrigger(a.DefaultTrigger); err != nil {
				t.Errorf("type %s action %s: %v", typ.Slug, a.Name, err)
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("types = %v, want %v", got, want)
	}
}
