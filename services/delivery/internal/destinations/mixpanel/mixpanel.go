// Package mixpanel is the Mixpanel destination, through the ingestion API:
// POST /import (events, authenticated with the project's API secret) and
// POST /engage#profile-set (user profiles).
package mixpanel

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations"
)

// DefaultAPIHost is Mixpanel's US ingestion host.
const DefaultAPIHost = "https://api.mixpanel.com"

func init() {
	destinations.Register(&destinations.Type{
		Metadata: destinations.Metadata{
			Slug:        "mixpanel",
			Name:        "Mixpanel",
			Category:    "Analytics",
			Description: "Imports events and sets user profiles in Mixpanel.",
			Settings: []destinations.Setting{
				{Name: "projectToken", Type: destinations.SettingString, Required: true, Description: "The project token."},
				{Name: "apiSecret", Type: destinations.SettingString, Required: true, Secret: true, Description: "The project's API secret (Basic auth of /import)."},
				{Name: "apiHost", Type: destinations.SettingURL, Default: DefaultAPIHost, Description: "Ingestion host (EU: https://api-eu.mixpanel.com)."},
				{Name: "batchSize", Type: destinations.SettingNumber, Default: float64(1), Description: "Events per /import request (1–2000)."},
			},
			SupportedEvents: []string{"track", "identify", "page", "screen"},
		},
		Actions: []destinations.Action{
			{Name: "trackEvent", Description: "Import an event (track, page, screen).", DefaultTrigger: "type = 'track' or type = 'page' or type = 'screen'"},
			{Name: "identifyUser", Description: "Set profile properties ($set) from traits.", DefaultTrigger: "type = 'identify' and typeof(userId) = 'string'", RecordType: "identify"},
		},
		New: func(cfg destinations.Config) (destinations.Instance, error) {
			n := int(cfg.Settings.Number("batchSize"))
			if n < 1 || n > 2000 {
				return nil, destinations.InvalidSetting("batchSize", "SETTING_VALUE", "must be between 1 and 2000")
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

var insertIDOK = regexp.MustCompile(`^[A-Za-z0-9-]{1,36}$`)

// InsertID is messageId when Mixpanel accepts it as $insert_id (at most 36
// alphanumerics or dashes), otherwise its MD5 in hex (32 characters).
func InsertID(messageID string) string {
	if insertIDOK.MatchString(messageID) {
		return messageID
	}
	sum := md5.Sum([]byte(messageID))
	return hex.EncodeToString(sum[:])
}

// ImportEvent is one event of /import.
type ImportEvent struct {
	Event      string         `json:"event"`
	Properties map[string]any `json:"properties"`
}

// BuildEvent maps a Segment event to a Mixpanel import event.
func BuildEvent(ev map[string]any, messageID string) ImportEvent {
	props := map[string]any{}
	if p, ok := ev["properties"].(map[string]any); ok {
		for k, v := range p {
			props[k] = v
		}
	}
	distinct := destinations.GetString(ev, "userId")
	if distinct == "" {
		distinct = destinations.GetString(ev, "anonymousId")
	}
	props["distinct_id"] = distinct
	props["$insert_id"] = InsertID(messageID)
	if ts, err := time.Parse(time.RFC3339Nano, destinations.GetString(ev, "timestamp")); err == nil {
		props["time"] = ts.UnixMilli()
	}
	if ip := destinations.GetString(ev, "context.ip"); ip != "" {
		props["ip"] = ip
	}
	name := destinations.GetString(ev, "event")
	switch destinations.GetString(ev, "type") {
	case "page", "screen":
		kind := "Page"
		if destinations.GetString(ev, "type") == "screen" {
			kind = "Screen"
		}
		name = "Loaded a " + kind
		if n := destinations.GetString(ev, "name"); n != "" {
			name = "Viewed " + n + " " + kind
		}
	}
	return ImportEvent{Event: name, Properties: props}
}

func (in *instance) Send(ctx context.Context, action string, ps []destinations.Payload) error {
	host := strings.TrimRight(in.s.String("apiHost"), "/")
	var body []byte
	var err error
	var req *http.Request
	if action == "identifyUser" {
		updates := make([]map[string]any, 0, len(ps))
		for _, p := range ps {
			traits, _ := p.Event["traits"].(map[string]any)
			updates = append(updates, map[string]any{
				"$token":       in.s.String("projectToken"),
				"$distinct_id": destinations.GetString(p.Event, "userId"),
				"$set":         traits,
			})
		}
		body, err = json.Marshal(updates)
		if err == nil {
			req, err = http.NewRequest(http.MethodPost, host+"/engage?verbose=1#profile-set", nil)
		}
	} else {
		evs := make([]ImportEvent, 0, len(ps))
		for _, p := range ps {
			e := BuildEvent(p.Event, p.MessageID)
			if e.Event == "" || e.Properties["distinct_id"] == "" {
				return destinations.Permanent(fmt.Errorf("event %s lacks a name or an identity", p.MessageID))
			}
			evs = append(evs, e)
		}
		body, err = json.Marshal(evs)
		if err == nil {
			req, err = http.NewRequest(http.MethodPost, host+"/import?strict=1", nil)
		}
		if req != nil {
			req.SetBasicAuth(in.s.String("apiSecret"), "")
		}
	}
	if err != nil {
		return destinations.Permanent(fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := destinations.DoHTTP(ctx, in.client, req, body)
	if err != nil {
		return err
	}
	if action == "identifyUser" {
		// /engage answers 200 with {"status":0,"error":…} for a rejected update.
		var r struct {
			Status int    `json:"status"`
			Error  string `json:"error"`
		}
		if json.Unmarshal(resp, &r) == nil && r.Status == 0 && r.Error != "" {
			return &destinations.Failure{Reason: destinations.ReasonRejected, Status: http.StatusOK, Response: string(resp)}
		}
	}
	return nil
}
