// Package amplitude is the Amplitude destination, through the HTTP V2 API
// (POST /2/httpapi with {"api_key", "events": […]}).
package amplitude

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations"
)

// DefaultEndpoint is Amplitude's HTTP V2 endpoint.
const DefaultEndpoint = "https://api2.amplitude.com/2/httpapi"

func init() {
	destinations.Register(&destinations.Type{
		Metadata: destinations.Metadata{
			Slug:        "amplitude",
			Name:        "Amplitude",
			Category:    "Analytics",
			Description: "Sends events and user properties to Amplitude's HTTP V2 API.",
			Settings: []destinations.Setting{
				{Name: "apiKey", Type: destinations.SettingString, Required: true, Secret: true, Description: "The project's API key."},
				{Name: "endpoint", Type: destinations.SettingURL, Default: DefaultEndpoint, Description: "HTTP V2 endpoint (EU: https://api.eu.amplitude.com/2/httpapi)."},
				{Name: "batchSize", Type: destinations.SettingNumber, Default: float64(1), Description: "Events per request (1–1000)."},
			},
			SupportedEvents: []string{"track", "identify", "page", "screen"},
		},
		Actions: []destinations.Action{
			{Name: "logEvent", Description: "Log an event (track, page, screen).", DefaultTrigger: "type = 'track' or type = 'page' or type = 'screen'"},
			{Name: "identifyUser", Description: "Set user properties ($identify).", DefaultTrigger: "type = 'identify'", RecordType: "identify"},
		},
		New: func(cfg destinations.Config) (destinations.Instance, error) {
			n := int(cfg.Settings.Number("batchSize"))
			if n < 1 || n > 1000 {
				return nil, destinations.InvalidSetting("batchSize", "SETTING_VALUE", "must be between 1 and 1000")
			}
			return &instance{client: cfg.HTTP, s: cfg.Settings, batch: n}, nil
		},
	})
}

type instance struct {
	client *http.Client
	s      destinations.Settings
	batch  int
}

func (in *instance) BatchSize() int { return in.batch }
func (in *instance) Close() error   { in.client.CloseIdleConnections(); return nil }

// Event is one event of the HTTP V2 API.
type Event struct {
	UserID          string         `json:"user_id,omitempty"`
	DeviceID        string         `json:"device_id,omitempty"`
	EventType       string         `json:"event_type"`
	Time            int64          `json:"time,omitempty"`
	EventProperties map[string]any `json:"event_properties,omitempty"`
	UserProperties  map[string]any `json:"user_properties,omitempty"`
	InsertID        string         `json:"insert_id"`
	IP              string         `json:"ip,omitempty"`
	Library         string         `json:"library"`
}

// Request is the HTTP V2 request body.
type Request struct {
	APIKey string  `json:"api_key"`
	Events []Event `json:"events"`
}

// BuildEvent maps a Segment event to an Amplitude event.
func BuildEvent(action string, ev map[string]any, messageID string) Event {
	e := Event{
		UserID:   destinations.GetString(ev, "userId"),
		DeviceID: destinations.GetString(ev, "anonymousId"),
		InsertID: messageID,
		IP:       destinations.GetString(ev, "context.ip"),
		Library:  "switchyard",
	}
	if ts, err := time.Parse(time.RFC3339Nano, destinations.GetString(ev, "timestamp")); err == nil {
		e.Time = ts.UnixMilli()
	}
	props, _ := ev["properties"].(map[string]any)
	switch {
	case action == "identifyUser":
		e.EventType = "$identify"
		traits, _ := ev["traits"].(map[string]any)
		e.UserProperties = map[string]any{"$set": traits}
	case destinations.GetString(ev, "type") == "page" || destinations.GetString(ev, "type") == "screen":
		kind := "Page"
		if destinations.GetString(ev, "type") == "screen" {
			kind = "Screen"
		}
		if name := destinations.GetString(ev, "name"); name != "" {
			e.EventType = "Viewed " + name + " " + kind
		} else {
			e.EventType = "Loaded a " + kind
		}
		e.EventProperties = props
	default:
		e.EventType = destinations.GetString(ev, "event")
		e.EventProperties = props
	}
	return e
}

func (in *instance) Send(ctx context.Context, action string, ps []destinations.Payload) error {
	r := Request{APIKey: in.s.String("apiKey")}
	for _, p := range ps {
		e := BuildEvent(action, p.Event, p.MessageID)
		if e.UserID == "" && e.DeviceID == "" {
			return destinations.Permanent(fmt.Errorf("event %s has neither userId nor anonymousId", p.MessageID))
		}
		r.Events = append(r.Events, e)
	}
	body, err := json.Marshal(r)
	if err != nil {
		return destinations.Permanent(fmt.Errorf("encode request: %w", err))
	}
	req, err := http.NewRequest(http.MethodPost, in.s.String("endpoint"), nil)
	if err != nil {
		return destinations.Permanent(fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "*/*")
	_, err = destinations.DoHTTP(ctx, in.client, req, body)
	return err
}
