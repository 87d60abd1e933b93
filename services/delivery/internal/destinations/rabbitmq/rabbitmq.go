// Package rabbitmq is the RabbitMQ destination: each event is published
// over AMQP 0-9-1 to an exchange, with publisher confirms.
package rabbitmq

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations"
)

func init() {
	destinations.Register(&destinations.Type{
		Metadata: destinations.Metadata{
			Slug:        "rabbitmq",
			Name:        "RabbitMQ",
			Category:    "Raw Data",
			Description: "Publishes every event as JSON to a RabbitMQ exchange.",
			Settings: []destinations.Setting{
				{Name: "url", Type: destinations.SettingString, Required: true, Secret: true, Description: "AMQP URL, e.g. amqp://user:pass@host:5672/vhost."},
				{Name: "exchange", Type: destinations.SettingString, Description: "Exchange to publish to (empty: the default exchange, routing key = queue)."},
				{Name: "routingKey", Type: destinations.SettingString, Default: "switchyard.{{type}}", Description: "Routing key; {{path}} inserts event values."},
			},
			SupportedEvents: []string{"track", "identify", "page", "screen", "group", "alias"},
		},
		Actions: []destinations.Action{{
			Name:           "publish",
			Description:    "Publish the event (or the mapped fields) as a persistent JSON message, message-id = messageId.",
			DefaultTrigger: "all",
		}},
		New: func(cfg destinations.Config) (destinations.Instance, error) {
			if _, err := amqp.ParseURI(cfg.Settings.String("url")); err != nil {
				return nil, destinations.InvalidSetting("url", "URL_FORMAT", "%v", err)
			}
			return &instance{s: cfg.Settings}, nil
		},
	})
}

// maxShortString is the length limit of an AMQP short string in bytes.
const maxShortString = 255

type instance struct {
	s destinations.Settings

	mu   sync.Mutex
	conn *amqp.Connection
	ch   *amqp.Channel
}

func (in *instance) BatchSize() int { return 1 }

func (in *instance) Close() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.conn != nil {
		err := in.conn.Close()
		in.conn, in.ch = nil, nil
		return err
	}
	return nil
}

// channel returns the confirm-mode channel, reconnecting when it closed.
func (in *instance) channel() (*amqp.Channel, error) {
	if in.ch != nil && !in.ch.IsClosed() && !in.conn.IsClosed() {
		return in.ch, nil
	}
	if in.conn != nil {
		_ = in.conn.Close()
	}
	conn, err := amqp.DialConfig(in.s.String("url"), amqp.Config{Dial: amqp.DefaultDial(10 * time.Second)})
	if err != nil {
		return nil, fmt.Errorf("amqp dial: %w", err)
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("amqp channel: %w", err)
	}
	in.conn, in.ch = conn, ch
	return ch, nil
}

func (in *instance) Send(ctx context.Context, _ string, ps []destinations.Payload) error {
	p := ps[0]
	body := p.Raw
	if p.Fields != nil {
		var err error
		if body, err = json.Marshal(p.Fields); err != nil {
			return destinations.Permanent(fmt.Errorf("encode body: %w", err))
		}
	}
	// message-id and the routing key are AMQP short strings (at most 255
	// bytes); the client refuses longer ones on every attempt. A messageId
	// is at most 100 characters but up to 400 bytes, and a Reverse ETL
	// record's id is longer still: it travels in its safe form then. A
	// routing key has no such form: the event cannot be published.
	msgID := p.MessageID
	if len(msgID) > maxShortString {
		msgID = destinations.HashedKey(msgID)
	}
	key := destinations.Template(in.s.String("routingKey"), p.Event)
	if len(key) > maxShortString {
		return destinations.Permanent(fmt.Errorf("routing key is %d bytes, AMQP allows %d", len(key), maxShortString))
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	ch, err := in.channel()
	if err != nil {
		return err
	}
	msg := amqp.Publishing{
		ContentType:  "application/json",
		DeliveryMode: amqp.Persistent,
		MessageId:    msgID,
		Type:         destinations.GetString(p.Event, "type"),
		Timestamp:    time.Now().UTC(),
		AppId:        "switchyard",
		Body:         body,
	}
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, in.s.String("exchange"), key, false, false, msg)
	if err != nil {
		in.ch = nil
		return fmt.Errorf("amqp publish: %w", err)
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		in.ch = nil
		return fmt.Errorf("amqp confirm: %w", err)
	}
	if !ok {
		return fmt.Errorf("amqp: broker nacked the message")
	}
	return nil
}
