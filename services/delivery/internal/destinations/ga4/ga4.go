// Package ga4 is the Google Analytics 4 destination, through the
// Measurement Protocol (POST /mp/collect?measurement_id=…&api_secret=…).
package ga4

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations"
)

// DefaultEndpoint is the Measurement Protocol collection endpoint.
const DefaultEndpoint = "https://www.google-analytics.com/mp/collect"

func init() {
	destinations.Register(&destinations.Type{
		Metadata: destinations.Metadata{
			Slug:        "google-analytics-4",
			Name:        "Google Analytics 4",
			Category:    "Analytics",
			Description: "Sends events to a GA4 property through the Measurement Protocol.",
			Settings: []destinations.Setting{
				{Name: "measurementId", Type: destinations.SettingString, Required: true, Description: "The web stream's measurement id (G-…)."},
				{Name: "apiSecret", Type: destinations.SettingString, Required: true, Secret: true, Description: "A Measurement Protocol API secret of the stream."},
				{Name: "endpoint", Type: destinations.SettingURL, Default: DefaultEndpoint, Description: "Collection endpoint (debug: …/debug/mp/collect)."},
			},
			SupportedEvents: []string{"track", "page"},
		},
		Actions: []destinations.Action{
			{Name: "sendEvent", Description: "Send a custom event named after the track event (snake_case).", DefaultTrigger: "type = 'track'"},
			{Name: "pageView", Description: "Send page_view.", DefaultTrigger: "type = 'page'", RecordType: "page"},
		},
		New: func(cfg destinations.Config) (destinations.Instance, error) {
			return &instance{client: cfg.HTTP, s: cfg.Settings}, nil
		},
	})
}

type instance struct {
	client *http.Client
	s      destinations.Settings
}

func (in *instance) BatchSize() int { return 1 }
func (in *instance) Close() error   { in.client.CloseIdleConnections(); return nil }

// Event is one Measurement Protocol event.
type Event struct {
	Name   string         `json:"name"`
	Params map[string]any `json:"params,omitempty"`
}

// Request is the Measurement Protocol body.
type Request struct {
	ClientID        string  `json:"client_id"`
	UserID          string  `json:"user_id,omitempty"`
	TimestampMicros int64   `json:"timestamp_micros,omitempty"`
	Events          []Event `json:"events"`
}

// EventName makes a GA4 event name: snake_case, letters, digits and
// underscores, starting with a letter, at most 40 characters.
func EventName(s string) string {
	var b strings.Builder
	prevUnderscore := true
	for _, r := range s {
		switch {
		case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			if unicode.IsUpper(r) && b.Len() > 0 && !prevUnderscore {
				// camelCase boundary
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			prevUnderscore = false
		default:
			if !prevUnderscore {
				b.WriteByte('_')
				prevUnderscore = true
			}
		}
	}
	out := strings.Trim(b.String(), "_")
	if out == "" || !unicode.IsLetter(rune(out[0])) {
		out = "event_" + out
	}
	if len(out) > 40 {
		out = out[:40]
	}
	return out
}

// Build maps a Segment event to a Measurement Protocol request.
func Build(action string, ev map[string]any) Request {
	r := Request{ClientID: destinations.GetString(ev, "anonymousId"), UserID: destinations.GetString(ev, "userId")}
	if r.ClientID == "" {
		r.ClientID = r.UserID
	}
	if ts, err := time.Parse(time.RFC3339Nano, destinations.GetString(ev, "timestamp")); err == nil {
		r.TimestampMicros = ts.UnixMicro()
	}
	params := map[string]any{}
	if props, ok := ev["properties"].(map[string]any); ok {
		for k, v := range props {
			switch v.(type) {
			case map[string]any, []any:
				// Parameters are scalars; nested values travel as JSON text.
				raw, _ := json.Marshal(v)
				params[EventName(k)] = string(raw)
			default:
				params[EventName(k)] = v
			}
		}
	}
	if action == "pageView" {
		params["page_location"] = destinations.GetString(ev, "context.page.url")
		params["page_title"] = destinations.GetString(ev, "context.page.title")
		if ref := destinations.GetString(ev, "context.page.referrer"); ref != "" {
			params["page_referrer"] = ref
		}
		r.Events = []Event{{Name: "page_view", Params: params}}
		return r
	}
	r.Events = []Event{{Name: EventName(destinations.GetString(ev, "event")), Params: params}}
	return r
}

func (in *instance) Send(ctx context.Context, action string, ps []destinations.Payload) error {
	r := Build(action, ps[0].Event)
	if r.ClientID == "" {
		return destinations.Permanent(fmt.Errorf("event %s has neither anonymousId nor userId", ps[0].MessageID))
	}
	body, err := json.Marshal(r)
	if err != nil {
		return destinations.Permanent(fmt.Errorf("encode request: %w", err))
	}
	q := url.Values{"measurement_id": {in.s.String("measurementId")}, "api_secret": {in.s.String("apiSecret")}}
	req, err := http.NewRequest(http.MethodPost, in.s.String("endpoint")+"?"+q.Encode(), nil)
	if err != nil {
		return destinations.Permanent(fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	_, err = destinations.DoHTTP(ctx, in.client, req, body)
	return err
}
