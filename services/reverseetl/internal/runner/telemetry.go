package runner

import (
	"context"

	reverseetlv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/reverseetl/v1"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

const scope = "github.com/switchyardhq/switchyard/services/reverseetl"

// Reverse ETL's metrics (exported at /metrics):
//   - switchyard.retl.runs: finished runs, by sync and status;
//   - switchyard.retl.records: records published, by sync.
var (
	runsCounter, _    = otel.Meter(scope).Int64Counter("switchyard.retl.runs", metric.WithDescription("Finished Reverse ETL runs by status"), metric.WithUnit("{run}"))
	recordsCounter, _ = otel.Meter(scope).Int64Counter("switchyard.retl.records", metric.WithDescription("Reverse ETL records published to the RETL stream"), metric.WithUnit("{record}"))
)

// startRunSpan starts the span of one run; the records it publishes carry
// its trace context, so each delivery links back to the run.
func startRunSpan(ctx context.Context, s *reverseetlv1.Sync, run *reverseetlv1.SyncRun) (context.Context, trace.Span) {
	return otel.Tracer(scope).Start(ctx, "retl run",
		trace.WithAttributes(
			attribute.String("switchyard.workspace.id", s.GetWorkspaceId()),
			attribute.String("switchyard.retl.sync.id", s.GetId()),
			attribute.String("switchyard.retl.model.id", s.GetModelId()),
			attribute.String("switchyard.destination.id", s.GetDestinationId()),
			attribute.String("switchyard.retl.run.id", run.GetId()),
		))
}

// endRun records a finished run on its span and in the metrics.
func endRun(ctx context.Context, span trace.Span, s *reverseetlv1.Sync, v *reverseetlv1.SyncRun) {
	status := v.GetStatus().String()
	span.SetAttributes(attribute.String("switchyard.retl.run.status", status),
		attribute.Int64("switchyard.retl.added", v.GetAdded()),
		attribute.Int64("switchyard.retl.updated", v.GetUpdated()),
		attribute.Int64("switchyard.retl.deleted", v.GetDeleted()))
	if v.GetStatus() == reverseetlv1.SyncRunStatus_SYNC_RUN_STATUS_FAILED {
		span.SetStatus(codes.Error, v.GetError())
	}
	sync := attribute.String("sync", s.GetId())
	runsCounter.Add(ctx, 1, metric.WithAttributes(sync, attribute.String("status", status)))
	recordsCounter.Add(ctx, v.GetPublished(), metric.WithAttributes(sync))
}
