// Package slack is the Slack destination: an incoming-webhook message per
// event, rendered from a template.
package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations"
)

// DefaultTemplate renders track events.
const DefaultTemplate = "{{userId}} did *{{event}}*"

func init() {
	destinations.Register(&destinations.Type{
		Metadata: destinations.Metadata{
			Slug:        "slack",
			Name:        "Slack",
			Category:    "Messaging",
			Description: "Posts a message per event to a Slack channel through an incoming webhook.",
			Settings: []destinations.Setting{
				{Name: "webhookUrl", Type: destinations.SettingURL, Required: true, Secret: true, Description: "The incoming webhook URL (https://hooks.slack.com/services/…)."},
				{Name: "template", Type: destinations.SettingString, Default: DefaultTemplate, Description: "Message text; {{path}} inserts the event's value at path."},
				{Name: "channel", Type: destinations.SettingString, Description: "Channel override (legacy webhooks only)."},
				{Name: "username", Type: destinations.SettingString, Description: "Bot name override (legacy webhooks only)."},
				{Name: "iconUrl", Type: destinations.SettingString, Description: "Bot icon override (legacy webhooks only)."},
			},
			SupportedEvents: []string{"track", "identify"},
		},
		Actions: []destinations.Action{{
			Name:           "postMessage",
			Description:    "Post the rendered template; a mapping may set text, channel, username.",
			DefaultTrigger: "type = 'track'",
		}},
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

// message is Slack's incoming-webhook payload.
type message struct {
	Text     string `json:"text"`
	Channel  string `json:"channel,omitempty"`
	Username string `json:"username,omitempty"`
	IconURL  string `json:"icon_url,omitempty"`
}

// Build renders the Slack message of one payload.
func (in *instance) build(p destinations.Payload) message {
	m := message{
		Text:     destinations.Template(in.s.String("template"), p.Event),
		Channel:  in.s.String("channel"),
		Username: in.s.String("username"),
		IconURL:  in.s.String("iconUrl"),
	}
	if p.Fields != nil {
		if v, ok := p.Fields["text"].(string); ok {
			m.Text = destinations.Template(v, p.Event)
		}
		if v, ok := p.Fields["channel"].(string); ok {
			m.Channel = v
		}
		if v, ok := p.Fields["username"].(string); ok {
			m.Username = v
		}
	}
	return m
}

func (in *instance) Send(ctx context.Context, _ string, ps []destinations.Payload) error {
	body, err := json.Marshal(in.build(ps[0]))
	if err != nil {
		return destinations.Permanent(fmt.Errorf("encode message: %w", err))
	}
	req, err := http.NewRequest(http.MethodPost, in.s.String("webhookUrl"), nil)
	if err != nil {
		return destinations.Permanent(fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", destinations.IdempotencyKey(ps[0].MessageID))
	_, err = destinations.DoHTTP(ctx, in.client, req, body)
	return err
}
