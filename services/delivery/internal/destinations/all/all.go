// Package all links every destination type into the binary: adding a type
// is its package under internal/destinations/<name>/ and one import here.
package all

import (
	_ "github.com/switchyardhq/switchyard/services/delivery/internal/destinations/amplitude" // Amplitude
	_ "github.com/switchyardhq/switchyard/services/delivery/internal/destinations/ga4"       // Google Analytics 4
	_ "github.com/switchyardhq/switchyard/services/delivery/internal/destinations/mixpanel"  // Mixpanel
	_ "github.com/switchyardhq/switchyard/services/delivery/internal/destinations/rabbitmq"  // RabbitMQ
	_ "github.com/switchyardhq/switchyard/services/delivery/internal/destinations/redis"     // Redis
	_ "github.com/switchyardhq/switchyard/services/delivery/internal/destinations/slack"     // Slack
	_ "github.com/switchyardhq/switchyard/services/delivery/internal/destinations/webhook"   // Webhooks
)
