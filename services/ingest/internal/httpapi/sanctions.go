package httpapi

import "github.com/switchyardhq/switchyard/services/ingest/internal/geo"

// Sanctions is the sanctions policy the handler applies (451).
type Sanctions = geo.Policy
