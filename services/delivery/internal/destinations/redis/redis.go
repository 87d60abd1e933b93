// Package redis is the Redis destination: identify traits into one hash per
// user (HSET <keyPrefix><userId> trait value …).
package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	goredis "github.com/redis/go-redis/v9"
	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations"
)

func init() {
	destinations.Register(&destinations.Type{
		Metadata: destinations.Metadata{
			Slug:        "redis",
			Name:        "Redis",
			Category:    "Raw Data",
			Description: "Keeps each user's latest traits in a Redis hash.",
			Settings: []destinations.Setting{
				{Name: "address", Type: destinations.SettingString, Default: "127.0.0.1:6379", Description: "host:port of the Redis server."},
				{Name: "username", Type: destinations.SettingString, Description: "ACL user."},
				{Name: "password", Type: destinations.SettingString, Secret: true, Description: "Password."},
				{Name: "database", Type: destinations.SettingNumber, Default: float64(0), Description: "Database index."},
				{Name: "keyPrefix", Type: destinations.SettingString, Default: "user:", Description: "Prefix of the per-user hash key."},
			},
			SupportedEvents: []string{"identify"},
		},
		Actions: []destinations.Action{{
			Name:           "setTraits",
			Description:    "HSET the traits into <keyPrefix><userId>.",
			DefaultTrigger: "type = 'identify' and typeof(userId) = 'string'",
			RecordType:     "identify",
		}},
		New: func(cfg destinations.Config) (destinations.Instance, error) {
			s := cfg.Settings
			return &instance{
				prefix: s.String("keyPrefix"),
				client: goredis.NewClient(&goredis.Options{
					Addr:     s.String("address"),
					Username: s.String("username"),
					Password: s.String("password"),
					DB:       int(s.Number("database")),
					// Retries are Delivery's job.
					MaxRetries: -1,
				}),
			}, nil
		},
	})
}

type instance struct {
	prefix string
	client *goredis.Client
}

func (in *instance) BatchSize() int { return 1 }
func (in *instance) Close() error   { return in.client.Close() }

// Fields flattens traits into hash fields: strings as they are, other
// values as JSON.
func Fields(traits map[string]any) []any {
	keys := make([]string, 0, len(traits))
	for k := range traits {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		v := traits[k]
		var s string
		switch x := v.(type) {
		case string:
			s = x
		default:
			raw, _ := json.Marshal(x)
			s = string(raw)
		}
		out = append(out, k, s)
	}
	return out
}

func (in *instance) Send(ctx context.Context, _ string, ps []destinations.Payload) error {
	p := ps[0]
	userID := destinations.GetString(p.Event, "userId")
	if userID == "" {
		return destinations.Permanent(fmt.Errorf("event %s has no userId", p.MessageID))
	}
	traits, _ := p.Event["traits"].(map[string]any)
	if p.Fields != nil {
		traits = p.Fields
	}
	if len(traits) == 0 {
		return nil // nothing to set
	}
	// HSET is idempotent: a repeated event writes the same values.
	if err := in.client.HSet(ctx, in.prefix+userID, Fields(traits)...).Err(); err != nil {
		return fmt.Errorf("redis hset: %w", err)
	}
	return nil
}
