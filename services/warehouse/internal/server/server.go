// Package server implements the gRPC WarehouseService.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	warehousev1 "github.com/switchyardhq/switchyard/gen/go/switchyard/warehouse/v1"
	"github.com/switchyardhq/switchyard/services/internal/platform/auth"
	"github.com/switchyardhq/switchyard/services/internal/platform/catalogwatch"
	"github.com/switchyardhq/switchyard/services/internal/platform/status"
	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
	"github.com/switchyardhq/switchyard/services/warehouse/internal/history"
	"github.com/switchyardhq/switchyard/services/warehouse/internal/pipeline"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Query limits.
const (
	DefaultMaxRows = 1000
	MaxMaxRows     = 10000
)

// QueryTimeout bounds one query of the query API; the engine interrupts
// the statement when it passes.
var QueryTimeout = 30 * time.Second

// Server implements warehousev1.WarehouseServiceServer.
type Server struct {
	warehousev1.UnimplementedWarehouseServiceServer
	Manager *pipeline.Manager
	Config  *catalogwatch.Watcher
	Logger  *slog.Logger
}

// authorize checks that the caller's workspace owns the warehouse.
func (s *Server) authorize(ctx context.Context, warehouseID string) error {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return err
	}
	if catalogwatch.FindWarehouse(s.Config.Snapshots(), p.GetWorkspaceId(), warehouseID) != nil {
		return nil
	}
	return status.Error(codes.NotFound, "WAREHOUSE_NOT_FOUND", fmt.Sprintf("warehouse %q not found", warehouseID), nil)
}

// ListSyncs implements the RPC: the warehouse's sync history, newest first.
func (s *Server) ListSyncs(ctx context.Context, req *warehousev1.ListSyncsRequest) (*warehousev1.ListSyncsResponse, error) {
	if err := s.authorize(ctx, req.GetWarehouseId()); err != nil {
		return nil, err
	}
	syncs, err := s.Manager.Syncs(ctx, req.GetWarehouseId())
	if err != nil {
		return nil, err
	}
	resp := &warehousev1.ListSyncsResponse{}
	for _, h := range syncs {
		resp.Syncs = append(resp.Syncs, syncToProto(h))
	}
	return resp, nil
}

// unavailable is the answer for a warehouse that cannot sync or be queried: a disabled one is the
// caller's choice (400 FAILED_PRECONDITION: retrying does not help); otherwise it does not run
// here yet or its database cannot be opened (503: retry).
func unavailable(err error) error {
	if errors.Is(err, pipeline.ErrDisabled) {
		return status.Error(codes.FailedPrecondition, "WAREHOUSE_DISABLED", err.Error(), nil)
	}
	return status.Error(codes.Unavailable, "WAREHOUSE_UNAVAILABLE", err.Error(), nil)
}

// RunSync implements the RPC ("sync now").
func (s *Server) RunSync(ctx context.Context, req *warehousev1.RunSyncRequest) (*warehousev1.RunSyncResponse, error) {
	if err := s.authorize(ctx, req.GetWarehouseId()); err != nil {
		return nil, err
	}
	schedule, started, err := s.Manager.SyncNow(req.GetWarehouseId())
	if err != nil {
		return nil, unavailable(err)
	}
	return &warehousev1.RunSyncResponse{Schedule: schedule, Started: started}, nil
}

var statusToProto = map[history.Status]warehousev1.SyncStatus{
	history.StatusRunning: warehousev1.SyncStatus_SYNC_STATUS_RUNNING,
	history.StatusSuccess: warehousev1.SyncStatus_SYNC_STATUS_SUCCESS,
	history.StatusPartial: warehousev1.SyncStatus_SYNC_STATUS_PARTIAL,
	history.StatusFailure: warehousev1.SyncStatus_SYNC_STATUS_FAILURE,
}

func syncToProto(h history.Sync) *warehousev1.Sync {
	out := &warehousev1.Sync{
		Id: h.ID, WarehouseId: h.WarehouseID, Trigger: h.Trigger, Status: statusToProto[h.Status],
		StartedAt: timestamppb.New(h.StartedAt), RowsPerTable: h.RowsPerTable, Rows: h.Rows(),
		Events: h.Events, Discards: h.Discards, Notices: h.Notices, Errors: h.Errors, FailedAttempts: h.FailedAttempts,
	}
	if !h.FinishedAt.IsZero() {
		out.FinishedAt = timestamppb.New(h.FinishedAt)
	}
	return out
}

// Query implements the RPC: one read-only statement, rows keyed by column.
func (s *Server) Query(ctx context.Context, req *warehousev1.QueryRequest) (*warehousev1.QueryResponse, error) {
	if err := s.authorize(ctx, req.GetWarehouseId()); err != nil {
		return nil, err
	}
	if req.GetSql() == "" {
		return nil, status.InvalidField("WAREHOUSE_SQL_REQUIRED", "sql", "sql is required")
	}
	maxRows := int(req.GetMaxRows())
	switch {
	case maxRows == 0:
		maxRows = DefaultMaxRows
	case maxRows < 0 || maxRows > MaxMaxRows:
		return nil, status.InvalidField("WAREHOUSE_MAX_ROWS_RANGE", "max_rows", fmt.Sprintf("max_rows must be between 1 and %d", MaxMaxRows))
	}
	eng, err := s.Manager.Engine(req.GetWarehouseId())
	if err != nil {
		return nil, unavailable(err)
	}
	qctx, cancel := context.WithTimeout(ctx, QueryTimeout)
	defer cancel()
	cols, rows, err := sqlengine.QueryReadOnly(qctx, eng, req.GetSql(), maxRows+1)
	if err != nil {
		if errors.Is(err, sqlengine.ErrNotReadOnly) {
			return nil, status.InvalidField("WAREHOUSE_QUERY_NOT_READ_ONLY", "sql", err.Error())
		}
		if errors.Is(err, sqlengine.ErrResultTooLarge) {
			return nil, status.InvalidField("WAREHOUSE_RESULT_TOO_LARGE", "sql", err.Error())
		}
		if ctx.Err() == nil && qctx.Err() != nil {
			return nil, status.Error(codes.DeadlineExceeded, "WAREHOUSE_QUERY_TIMEOUT",
				fmt.Sprintf("the query ran longer than %s and was cancelled", QueryTimeout), nil)
		}
		if ctx.Err() == nil {
			// Any other database error is the statement's fault (syntax,
			// unknown table): report it to the caller.
			return nil, status.InvalidField("WAREHOUSE_QUERY_FAILED", "sql", err.Error())
		}
		return nil, err
	}
	resp := &warehousev1.QueryResponse{Columns: cols}
	if len(rows) > maxRows {
		rows, resp.Truncated = rows[:maxRows], true
	}
	for _, r := range rows {
		fields := make(map[string]*structpb.Value, len(cols))
		for i, c := range cols {
			v, err := structpb.NewValue(r[i])
			if err != nil {
				v = structpb.NewStringValue(fmt.Sprint(r[i]))
			}
			fields[c] = v
		}
		resp.Rows = append(resp.Rows, &structpb.Struct{Fields: fields})
	}
	return resp, nil
}
