package streams

import (
	"context"
	"fmt"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// RETLRecordSubject is the subject of the records a Reverse ETL sync sends
// to a destination. Delivery's consumer of a destination filters on
// "retl.record.<workspaceId>.<destinationId>.*".
func RETLRecordSubject(workspaceID, destinationID, syncID string) string {
	return "retl.record." + workspaceID + "." + destinationID + "." + syncID
}

// RETLRecordFilter is the subject filter of every record for one
// destination.
func RETLRecordFilter(workspaceID, destinationID string) string {
	return "retl.record." + workspaceID + "." + destinationID + ".*"
}

// RETLResultSubject is the subject Delivery publishes the outcome of each
// Reverse ETL record to (delivered, or failed after its retries).
func RETLResultSubject(workspaceID, syncID string) string {
	return "retl.result." + workspaceID + "." + syncID
}

// RETLResultFilter matches every record result.
const RETLResultFilter = "retl.result.>"

// RETLMaxAge is how long RETL keeps messages: Reverse ETL retries failed
// records for up to 14 days.
const RETLMaxAge = 14 * 24 * time.Hour

// RETLConfig is the RETL stream configuration: Reverse ETL record changes
// (retl.record.…) and Delivery's results for them (retl.result.…).
func RETLConfig(o Options) natsjs.StreamConfig {
	dup := o.DuplicateWindow
	if dup == 0 {
		dup = DefaultOptions.DuplicateWindow
	}
	return natsjs.StreamConfig{
		Name:        RETL,
		Description: "Reverse ETL record changes for Delivery, and Delivery's results",
		Subjects:    []string{"retl.>"},
		Storage:     natsjs.FileStorage,
		Retention:   natsjs.LimitsPolicy,
		MaxAge:      RETLMaxAge,
		Duplicates:  dup,
		Replicas:    max(o.Replicas, 1),
		Discard:     natsjs.DiscardOld,
	}
}

// EnsureRETL creates or updates the RETL stream.
func EnsureRETL(ctx context.Context, js natsjs.JetStream, o Options) error {
	if _, err := js.CreateOrUpdateStream(ctx, RETLConfig(o)); err != nil {
		return fmt.Errorf("ensure stream %s: %w", RETL, err)
	}
	return nil
}
