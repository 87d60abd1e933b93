// Package webhook is the Webhook destination: a JSON POST of each event
// (or of a mapped body) with custom headers, an HMAC signature of the body
// and optional batching.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"net/http"
	"sort"
	"strings"

	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations"
	"golang.org/x/net/http/httpguts"
)

// Headers the webhook sets.
const (
	// HeaderIdempotencyKey carries the messageId (single events) so the
	// receiver can drop repeats; a messageId that is not a safe header
	// value travels as "sha256:<hex>" (destinations.IdempotencyKey).
	HeaderIdempotencyKey = "Idempotency-Key"
	// DefaultSignatureHeader carries the hex HMAC of the body, as Segment's
	// webhooks do.
	DefaultSignatureHeader = "X-Signature"
	// MaxBatchSize bounds batchSize.
	MaxBatchSize = 1000
)

func init() {
	destinations.Register(&destinations.Type{
		Metadata: destinations.Metadata{
			Slug:        "webhook",
			Name:        "Webhooks",
			Category:    "Raw Data",
			Description: "POSTs every event as JSON to your endpoint.",
			Settings: []destinations.Setting{
				{Name: "url", Type: destinations.SettingURL, Required: true, Description: "Endpoint the events are POSTed to."},
				{Name: "headers", Type: destinations.SettingMap, Secret: true, Description: "Extra request headers, e.g. an Authorization header."},
				{Name: "sharedSecret", Type: destinations.SettingString, Secret: true, Description: "Signs each body: the signature header holds hex(HMAC(secret, body))."},
				{Name: "signatureHeader", Type: destinations.SettingString, Default: DefaultSignatureHeader, Description: "Header that carries the signature."},
				{Name: "signatureAlgorithm", Type: destinations.SettingSelect, Choices: []string{"sha1", "sha256"}, Default: "sha1", Description: "sha1 (Segment's webhooks) or sha256."},
				{Name: "method", Type: destinations.SettingSelect, Choices: []string{http.MethodPost, http.MethodPut, http.MethodPatch}, Default: http.MethodPost, Description: "HTTP method of the requests."},
				{Name: "batchSize", Type: destinations.SettingNumber, Default: float64(1), Description: "Events per request (1–1000); above 1 the body is a JSON array of events."},
			},
			SupportedEvents: []string{"track", "identify", "page", "screen", "group", "alias"},
		},
		Actions: []destinations.Action{{
			Name:           "send",
			Description:    "POST the event (or the mapped fields) as JSON.",
			DefaultTrigger: "all",
		}},
		New: newInstance,
	})
}

type instance struct {
	client   *http.Client
	method   string
	url      string
	headers  map[string]string
	secret   []byte
	sigName  string
	hashFunc func() hash.Hash
	batch    int
}

func newInstance(cfg destinations.Config) (destinations.Instance, error) {
	s := cfg.Settings
	in := &instance{
		client:  cfg.HTTP,
		method:  s.String("method"),
		url:     s.String("url"),
		headers: s.StringMap("headers"),
		secret:  []byte(s.String("sharedSecret")),
		sigName: s.String("signatureHeader"),
		batch:   int(s.Number("batchSize")),
	}
	switch strings.ToLower(s.String("signatureAlgorithm")) {
	case "sha1", "":
		in.hashFunc = sha1.New
	case "sha256":
		in.hashFunc = sha256.New
	default:
		return nil, destinations.InvalidSetting("signatureAlgorithm", "SETTING_VALUE", "must be sha1 or sha256")
	}
	if in.batch < 1 || in.batch > MaxBatchSize {
		return nil, destinations.InvalidSetting("batchSize", "SETTING_VALUE", "must be between 1 and %d", MaxBatchSize)
	}
	// Headers the HTTP client would refuse fail every request the same
	// way: refuse them here, so the destination shows the error and its
	// events wait instead of being dead-lettered one by one.
	if len(in.secret) > 0 && !httpguts.ValidHeaderFieldName(in.sigName) {
		return nil, destinations.InvalidSetting("signatureHeader", "SETTING_VALUE", "%q is not a valid header name", in.sigName)
	}
	names := make([]string, 0, len(in.headers))
	for k := range in.headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, destinations.InvalidSetting("headers", "SETTING_VALUE", "%q is not a valid header name", k)
		}
		if !httpguts.ValidHeaderFieldValue(in.headers[k]) {
			// The value may be a secret: name the header only.
			return nil, destinations.InvalidSetting("headers."+k, "SETTING_VALUE", "holds a control character or line break")
		}
	}
	return in, nil
}

func (in *instance) BatchSize() int { return in.batch }
func (in *instance) Close() error   { in.client.CloseIdleConnections(); return nil }

// Sign returns the hex HMAC of body with secret using h (exported for
// receivers' tests).
func Sign(h func() hash.Hash, secret, body []byte) string {
	m := hmac.New(h, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func (in *instance) Send(ctx context.Context, _ string, ps []destinations.Payload) error {
	var body []byte
	var err error
	bodyOf := func(p destinations.Payload) (json.RawMessage, error) {
		if p.Fields != nil {
			return json.Marshal(p.Fields)
		}
		return p.Raw, nil
	}
	if in.batch > 1 {
		items := make([]json.RawMessage, len(ps))
		for i, p := range ps {
			if items[i], err = bodyOf(p); err != nil {
				return destinations.Permanent(fmt.Errorf("encode body: %w", err))
			}
		}
		body, err = json.Marshal(items)
	} else {
		body, err = bodyOf(ps[0])
	}
	if err != nil {
		return destinations.Permanent(fmt.Errorf("encode body: %w", err))
	}
	req, err := http.NewRequest(in.method, in.url, nil)
	if err != nil {
		return destinations.Permanent(fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Switchyard-Webhook/1")
	for k, v := range in.headers {
		req.Header.Set(k, v)
	}
	if in.batch == 1 {
		req.Header.Set(HeaderIdempotencyKey, destinations.IdempotencyKey(ps[0].MessageID))
	} else {
		ids := make([]string, len(ps))
		for i, p := range ps {
			ids[i] = p.MessageID
		}
		// A batch's membership can change between retries: the key names
		// this exact set; receivers dedupe per event by messageId.
		sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
		req.Header.Set(HeaderIdempotencyKey, "batch-"+hex.EncodeToString(sum[:16]))
	}
	if len(in.secret) > 0 {
		req.Header.Set(in.sigName, Sign(in.hashFunc, in.secret, body))
	}
	_, err = destinations.DoHTTP(ctx, in.client, req, body)
	return err
}
