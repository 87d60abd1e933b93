// Package server implements the gRPC WarehouseService.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	warehousev1 "github.com/switchyardhq/switchyard/gen/go/switchyard/warehouse/v1"
	"github.com/switchyardhq/switchyard/services/internal/platform/auth"
	"github.com/switchyardhq/switchyard/services/internal/platform/catalogwatch"
	"github.com/switchyardhq/switchyard/services/internal/platform/status"
	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
	"github.com/switchyardhq/switchyard/services/warehouse/internal/pipeline"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
)

// Query limits.
const (
	DefaultMaxRows = 1000
	MaxMaxRows     = 10000
)

// Server implements warehousev1.WarehouseServiceServer.
type Server struct {
	warehousev1.UnimplementedWarehouseServiceServer
	Manager *pipeline.Manager
	Config  *catalogwatch.Watcher
	Logger  *slog.Logger
}

// Query implements the RPC: one read-only statement, rows keyed by column.
func (s *Server) Query(ctx context.Context, req *warehousev1.QueryRequest) (*warehousev1.QueryResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	found := false
	for _, snap := range s.Config.Snapshots() {
		for _, wh := range snap.GetWarehouses() {
			if wh.GetId() == req.GetWarehouseId() && wh.GetWorkspaceId() == p.GetWorkspaceId() {
				found = true
			}
		}
	}
	if !found {
		return nil, status.Error(codes.NotFound, "WAREHOUSE_NOT_FOUND", fmt.Sprintf("warehouse %q not found", req.GetWarehouseId()), nil)
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
		return nil, status.Error(codes.Unavailable, "WAREHOUSE_UNAVAILABLE", err.Error(), nil)
	}
	cols, rows, err := sqlengine.QueryReadOnly(ctx, eng, req.GetSql(), maxRows+1)
	if err != nil {
		if errors.Is(err, sqlengine.ErrNotReadOnly) {
			return nil, status.InvalidField("WAREHOUSE_QUERY_NOT_READ_ONLY", "sql", err.Error())
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
