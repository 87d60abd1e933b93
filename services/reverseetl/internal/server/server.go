// Package server implements the gRPC ReverseETLService: proto ⇄ store and
// runner, with the service's one error-to-status conversion (toStatus).
package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	reverseetlv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/reverseetl/v1"
	"github.com/switchyardhq/switchyard/services/internal/platform/auth"
	"github.com/switchyardhq/switchyard/services/internal/platform/status"
	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/diff"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/runner"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/schedule"
	"github.com/switchyardhq/switchyard/services/reverseetl/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Limits of models (Segment's, system.md).
const (
	MaxQueryLength = 65535
	MaxKeyLength   = 191
	PreviewRows    = 10
	MaxColumns     = 512
)

// Catalog answers what the workspace configuration holds.
type Catalog interface {
	// HasWarehouse reports whether the workspace has the warehouse.
	HasWarehouse(workspaceID, warehouseID string) bool
	// HasDestination reports whether the workspace has the destination.
	HasDestination(workspaceID, destinationID string) bool
}

// Server implements reverseetlv1.ReverseETLServiceServer.
type Server struct {
	reverseetlv1.UnimplementedReverseETLServiceServer
	Store   *store.Store
	Runner  *runner.Runner
	Engines runner.Engines
	Catalog Catalog
	// NewID returns a new resource id with the prefix.
	NewID func(prefix string) string
	// Now is the clock.
	Now func() time.Time
}

// Errors the handlers return, converted by toStatus.
var (
	errModelNotFound = errors.New("model not found")
	errSyncNotFound  = errors.New("sync not found")
	errRunNotFound   = errors.New("run not found")
)

// toStatus is the one place where Reverse ETL errors become gRPC statuses.
func toStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errModelNotFound):
		return status.Error(codes.NotFound, "REVERSE_ETL_MODEL_NOT_FOUND", err.Error(), nil)
	case errors.Is(err, errSyncNotFound):
		return status.Error(codes.NotFound, "REVERSE_ETL_SYNC_NOT_FOUND", err.Error(), nil)
	case errors.Is(err, errRunNotFound):
		return status.Error(codes.NotFound, "REVERSE_ETL_RUN_NOT_FOUND", err.Error(), nil)
	case errors.Is(err, runner.ErrRunning):
		return status.Error(codes.FailedPrecondition, "REVERSE_ETL_SYNC_RUNNING", err.Error(), nil)
	case errors.Is(err, runner.ErrNotRunning):
		return status.Error(codes.FailedPrecondition, "REVERSE_ETL_RUN_NOT_RUNNING", err.Error(), nil)
	}
	return err // status.Convert (interceptor) hides and logs the rest
}

func invalid(reason, field, format string, args ...any) error {
	return status.InvalidField("REVERSE_ETL_"+reason, field, fmt.Sprintf(format, args...))
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// model loads a model of the caller's workspace.
func (s *Server) model(ctx context.Context, ws, id string) (*reverseetlv1.Model, error) {
	m, err := s.Store.Model(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && m.GetWorkspaceId() != ws) {
		return nil, fmt.Errorf("%w: %q", errModelNotFound, id)
	}
	return m, err
}

// sync loads a sync of the caller's workspace.
func (s *Server) sync(ctx context.Context, ws, id string) (*reverseetlv1.Sync, error) {
	v, err := s.Store.Sync(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && v.GetWorkspaceId() != ws) {
		return nil, fmt.Errorf("%w: %q", errSyncNotFound, id)
	}
	return v, err
}

// probe runs the model query wrapped in a read-only, rolled-back
// statement and returns its columns and at most limit rows.
func (s *Server) probe(ctx context.Context, ws string, m *reverseetlv1.Model, limit int) ([]string, [][]any, error) {
	if m.GetWarehouseId() == "" {
		return nil, nil, invalid("WAREHOUSE_REQUIRED", "model.warehouseId", "warehouse_id is required")
	}
	if !s.Catalog.HasWarehouse(ws, m.GetWarehouseId()) {
		return nil, nil, status.Error(codes.NotFound, "REVERSE_ETL_WAREHOUSE_NOT_FOUND", fmt.Sprintf("warehouse %q not found", m.GetWarehouseId()), nil)
	}
	q := strings.TrimRight(strings.TrimSpace(m.GetSql()), "; \n\t")
	switch {
	case q == "":
		return nil, nil, invalid("SQL_REQUIRED", "model.sql", "sql is required")
	case len(q) > MaxQueryLength:
		return nil, nil, invalid("SQL_TOO_LONG", "model.sql", "the query is longer than %d characters", MaxQueryLength)
	}
	if err := sqlengine.IsReadOnlySQL(q); err != nil {
		return nil, nil, invalid("SQL_NOT_READ_ONLY", "model.sql", "%v", err)
	}
	e, err := s.Engines.Engine(ws, m.GetWarehouseId())
	if err != nil {
		return nil, nil, status.Error(codes.Unavailable, "REVERSE_ETL_WAREHOUSE_UNAVAILABLE", err.Error(), nil)
	}
	cols, rows, err := sqlengine.QueryReadOnly(ctx, e, fmt.Sprintf("SELECT * FROM (%s) AS m LIMIT %d", q, limit), limit)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, invalid("QUERY_FAILED", "model.sql", "the query does not run: %v", err)
	}
	return cols, rows, nil
}

// checkModel validates a model and fills its columns.
func (s *Server) checkModel(ctx context.Context, ws string, m *reverseetlv1.Model) error {
	if strings.TrimSpace(m.GetName()) == "" {
		return invalid("NAME_REQUIRED", "model.name", "name is required")
	}
	key := m.GetUniqueKey()
	switch {
	case key == "":
		return invalid("UNIQUE_KEY_REQUIRED", "model.uniqueKey", "unique_key (the unique identifier column) is required")
	case len(key) > MaxKeyLength:
		return invalid("UNIQUE_KEY_TOO_LONG", "model.uniqueKey", "unique_key is longer than %d characters", MaxKeyLength)
	}
	cols, _, err := s.probe(ctx, ws, m, 0)
	if err != nil {
		return err
	}
	if len(cols) > MaxColumns {
		return invalid("TOO_MANY_COLUMNS", "model.sql", "the query returns %d columns; at most %d", len(cols), MaxColumns)
	}
	seen := map[string]bool{}
	for _, c := range cols {
		if strings.HasPrefix(c, diff.ReservedPrefix) {
			return invalid("COLUMN_RESERVED", "model.sql", "column %q: names starting with %s are reserved", c, diff.ReservedPrefix)
		}
		if seen[c] {
			return invalid("COLUMN_DUPLICATE", "model.sql", "the query returns two columns named %q", c)
		}
		seen[c] = true
	}
	if !slices.Contains(cols, key) {
		return invalid("UNIQUE_KEY_NOT_FOUND", "model.uniqueKey", "the query has no column %q; its columns are %s", key, strings.Join(cols, ", "))
	}
	m.Columns = cols
	return nil
}

// CreateModel implements the RPC.
func (s *Server) CreateModel(ctx context.Context, req *reverseetlv1.CreateModelRequest) (*reverseetlv1.CreateModelResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := proto.Clone(req.GetModel()).(*reverseetlv1.Model)
	if m == nil {
		m = &reverseetlv1.Model{}
	}
	m.Sql = strings.TrimRight(strings.TrimSpace(m.GetSql()), "; \n\t")
	if err := s.checkModel(ctx, p.GetWorkspaceId(), m); err != nil {
		return nil, err
	}
	now := timestamppb.New(s.now())
	m.Id, m.WorkspaceId, m.CreatedAt, m.UpdatedAt = s.NewID("mdl"), p.GetWorkspaceId(), now, now
	if err := s.Store.PutModel(ctx, m); err != nil {
		return nil, err
	}
	return &reverseetlv1.CreateModelResponse{Model: m}, nil
}

// ListModels implements the RPC.
func (s *Server) ListModels(ctx context.Context, _ *reverseetlv1.ListModelsRequest) (*reverseetlv1.ListModelsResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	ms, err := s.Store.Models(ctx, p.GetWorkspaceId())
	if err != nil {
		return nil, err
	}
	return &reverseetlv1.ListModelsResponse{Models: ms}, nil
}

// GetModel implements the RPC.
func (s *Server) GetModel(ctx context.Context, req *reverseetlv1.GetModelRequest) (*reverseetlv1.GetModelResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m, err := s.model(ctx, p.GetWorkspaceId(), req.GetModelId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &reverseetlv1.GetModelResponse{Model: m}, nil
}

// PreviewModel implements the RPC.
func (s *Server) PreviewModel(ctx context.Context, req *reverseetlv1.PreviewModelRequest) (*reverseetlv1.PreviewModelResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.GetModel()
	if req.GetModelId() != "" {
		if m, err = s.model(ctx, p.GetWorkspaceId(), req.GetModelId()); err != nil {
			return nil, toStatus(err)
		}
	}
	if m == nil {
		return nil, invalid("MODEL_REQUIRED", "modelId", "model_id or model is required")
	}
	cols, rows, err := s.probe(ctx, p.GetWorkspaceId(), m, PreviewRows)
	if err != nil {
		return nil, err
	}
	resp := &reverseetlv1.PreviewModelResponse{Columns: cols}
	for _, r := range rows {
		st := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(cols))}
		for i, c := range cols {
			v, err := structpb.NewValue(r[i])
			if err != nil {
				v = structpb.NewStringValue(fmt.Sprint(r[i]))
			}
			st.Fields[c] = v
		}
		resp.Rows = append(resp.Rows, st)
	}
	return resp, nil
}

// checkSync validates the changeable part of a sync against its model and
// normalizes the schedule into both forms.
func (s *Server) checkSync(v *reverseetlv1.Sync, m *reverseetlv1.Model) error {
	for to, from := range v.GetMapping() {
		if to == "" {
			return invalid("MAPPING_INVALID", "sync.mapping", "a destination field name is empty")
		}
		if !slices.Contains(m.GetColumns(), from) {
			return invalid("MAPPING_COLUMN_NOT_FOUND", "sync.mapping."+to, "the model has no column %q; its columns are %s", from, strings.Join(m.GetColumns(), ", "))
		}
	}
	if _, ok := reverseetlv1.RecordSelection_name[int32(v.GetRecordSelection())]; !ok {
		return invalid("RECORD_SELECTION_INVALID", "sync.recordSelection", "unknown record selection %d", v.GetRecordSelection())
	}
	if v.GetRecordSelection() == reverseetlv1.RecordSelection_RECORD_SELECTION_UNSPECIFIED {
		v.RecordSelection = reverseetlv1.RecordSelection_RECORD_SELECTION_ADDED_OR_UPDATED
	}
	sc, err := runner.ScheduleOf(v)
	if err != nil {
		field := "sync.scheduleDefinition"
		if v.GetScheduleDefinition().GetStrategy() == reverseetlv1.ScheduleStrategy_SCHEDULE_STRATEGY_UNSPECIFIED {
			field = "sync.schedule"
		}
		return invalid("SCHEDULE_INVALID", field, "%v", err)
	}
	def := &reverseetlv1.Schedule{Strategy: reverseetlv1.ScheduleStrategy_SCHEDULE_STRATEGY_MANUAL}
	switch sc.Strategy {
	case schedule.Interval:
		def = &reverseetlv1.Schedule{Strategy: reverseetlv1.ScheduleStrategy_SCHEDULE_STRATEGY_INTERVAL, Interval: sc.Every.String()}
	case schedule.Cron:
		def = &reverseetlv1.Schedule{Strategy: reverseetlv1.ScheduleStrategy_SCHEDULE_STRATEGY_CRON, Cron: sc.Expr, TimeZone: sc.Location.String()}
	}
	v.ScheduleDefinition, v.Schedule = def, sc.Legacy()
	if v.GetAction() == "" {
		v.Action = "send"
	}
	return nil
}

// CreateSync implements the RPC.
func (s *Server) CreateSync(ctx context.Context, req *reverseetlv1.CreateSyncRequest) (*reverseetlv1.CreateSyncResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	v := proto.Clone(req.GetSync()).(*reverseetlv1.Sync)
	if v == nil {
		v = &reverseetlv1.Sync{}
	}
	ws := p.GetWorkspaceId()
	if v.GetModelId() == "" {
		return nil, invalid("MODEL_REQUIRED", "sync.modelId", "model_id is required")
	}
	m, err := s.model(ctx, ws, v.GetModelId())
	if err != nil {
		return nil, toStatus(err)
	}
	if v.GetDestinationId() == "" {
		return nil, invalid("DESTINATION_REQUIRED", "sync.destinationId", "destination_id is required")
	}
	if !s.Catalog.HasDestination(ws, v.GetDestinationId()) {
		return nil, status.Error(codes.NotFound, "REVERSE_ETL_DESTINATION_NOT_FOUND", fmt.Sprintf("destination %q not found", v.GetDestinationId()), nil)
	}
	if err := s.checkSync(v, m); err != nil {
		return nil, err
	}
	now := s.now()
	v.Id, v.WorkspaceId, v.CreatedAt, v.UpdatedAt, v.LastRunId = s.NewID("sync"), ws, timestamppb.New(now), timestamppb.New(now), ""
	if v.GetName() == "" {
		v.Name = m.GetName()
	}
	v.NextRunAt = nil
	if next := s.Runner.Plan(v, now); !next.IsZero() {
		v.NextRunAt = timestamppb.New(next)
	}
	if err := s.Store.PutSync(ctx, v); err != nil {
		s.Runner.Forget(v.GetId())
		return nil, err
	}
	return &reverseetlv1.CreateSyncResponse{Sync: v}, nil
}

// ListSyncs implements the RPC.
func (s *Server) ListSyncs(ctx context.Context, req *reverseetlv1.ListSyncsRequest) (*reverseetlv1.ListSyncsResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	all, err := s.Store.Syncs(ctx, p.GetWorkspaceId())
	if err != nil {
		return nil, err
	}
	resp := &reverseetlv1.ListSyncsResponse{LatestRuns: map[string]*reverseetlv1.SyncRun{}}
	for _, v := range all {
		if req.GetModelId() != "" && v.GetModelId() != req.GetModelId() {
			continue
		}
		resp.Syncs = append(resp.Syncs, v)
		if v.GetLastRunId() != "" {
			if r, err := s.Store.Run(ctx, v.GetId(), v.GetLastRunId()); err == nil {
				resp.LatestRuns[v.GetId()] = r
			}
		}
	}
	return resp, nil
}

// GetSync implements the RPC.
func (s *Server) GetSync(ctx context.Context, req *reverseetlv1.GetSyncRequest) (*reverseetlv1.GetSyncResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.sync(ctx, p.GetWorkspaceId(), req.GetSyncId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &reverseetlv1.GetSyncResponse{Sync: v}, nil
}

// UpdateSync implements the RPC.
func (s *Server) UpdateSync(ctx context.Context, req *reverseetlv1.UpdateSyncRequest) (*reverseetlv1.UpdateSyncResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	in := req.GetSync()
	cur, err := s.sync(ctx, p.GetWorkspaceId(), in.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	m, err := s.model(ctx, p.GetWorkspaceId(), cur.GetModelId())
	if err != nil {
		return nil, toStatus(err)
	}
	want := proto.Clone(in).(*reverseetlv1.Sync)
	if err := s.checkSync(want, m); err != nil {
		return nil, err
	}
	now := s.now()
	updated, err := s.Store.UpdateSync(ctx, cur.GetId(), func(v *reverseetlv1.Sync) error {
		if want.GetName() != "" {
			v.Name = want.GetName()
		}
		v.Mapping, v.RecordSelection, v.Schedule, v.ScheduleDefinition = want.GetMapping(), want.GetRecordSelection(), want.GetSchedule(), want.GetScheduleDefinition()
		v.Action, v.Enabled, v.UpdatedAt = want.GetAction(), want.GetEnabled(), timestamppb.New(now)
		v.NextRunAt = nil
		if next := s.Runner.Plan(v, now); !next.IsZero() {
			v.NextRunAt = timestamppb.New(next)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &reverseetlv1.UpdateSyncResponse{Sync: updated}, nil
}

// DeleteSync implements the RPC.
func (s *Server) DeleteSync(ctx context.Context, req *reverseetlv1.DeleteSyncRequest) (*reverseetlv1.DeleteSyncResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.sync(ctx, p.GetWorkspaceId(), req.GetSyncId())
	if err != nil {
		return nil, toStatus(err)
	}
	s.Runner.Forget(v.GetId())
	if runID, busy := s.Runner.Running(v.GetId()); busy {
		_ = s.Runner.Cancel(v.GetId(), runID)
	}
	if err := s.Runner.Reset(ctx, v); err != nil {
		return nil, err
	}
	if err := s.Store.DeleteSync(ctx, v.GetId()); err != nil {
		return nil, err
	}
	return &reverseetlv1.DeleteSyncResponse{}, nil
}

// ResetSync implements the RPC.
func (s *Server) ResetSync(ctx context.Context, req *reverseetlv1.ResetSyncRequest) (*reverseetlv1.ResetSyncResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.sync(ctx, p.GetWorkspaceId(), req.GetSyncId())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.Runner.Reset(ctx, v); err != nil {
		return nil, toStatus(err)
	}
	return &reverseetlv1.ResetSyncResponse{}, nil
}

// TriggerSyncRun implements the RPC.
func (s *Server) TriggerSyncRun(ctx context.Context, req *reverseetlv1.TriggerSyncRunRequest) (*reverseetlv1.TriggerSyncRunResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.sync(ctx, p.GetWorkspaceId(), req.GetSyncId())
	if err != nil {
		return nil, toStatus(err)
	}
	run, err := s.Runner.Start(ctx, v.GetId(), "manual")
	if err != nil {
		return nil, toStatus(err)
	}
	return &reverseetlv1.TriggerSyncRunResponse{Run: run}, nil
}

// GetSyncRun implements the RPC.
func (s *Server) GetSyncRun(ctx context.Context, req *reverseetlv1.GetSyncRunRequest) (*reverseetlv1.GetSyncRunResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.run(ctx, p.GetWorkspaceId(), req.GetSyncId(), req.GetRunId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &reverseetlv1.GetSyncRunResponse{Run: r}, nil
}

func (s *Server) run(ctx context.Context, ws, syncID, runID string) (*reverseetlv1.SyncRun, error) {
	r, err := s.Store.Run(ctx, syncID, runID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && r.GetWorkspaceId() != ws) {
		return nil, fmt.Errorf("%w: %q of sync %q", errRunNotFound, runID, syncID)
	}
	return r, err
}

// ListSyncRuns implements the RPC.
func (s *Server) ListSyncRuns(ctx context.Context, req *reverseetlv1.ListSyncRunsRequest) (*reverseetlv1.ListSyncRunsResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.sync(ctx, p.GetWorkspaceId(), req.GetSyncId()); err != nil {
		return nil, toStatus(err)
	}
	limit := int(req.GetLimit())
	switch {
	case limit == 0:
		limit = 50
	case limit < 0 || limit > 200:
		return nil, invalid("LIMIT_RANGE", "limit", "limit must be between 1 and 200")
	}
	runs, err := s.Store.Runs(ctx, req.GetSyncId(), limit)
	if err != nil {
		return nil, err
	}
	return &reverseetlv1.ListSyncRunsResponse{Runs: runs}, nil
}

// CancelSyncRun implements the RPC.
func (s *Server) CancelSyncRun(ctx context.Context, req *reverseetlv1.CancelSyncRunRequest) (*reverseetlv1.CancelSyncRunResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.run(ctx, p.GetWorkspaceId(), req.GetSyncId(), req.GetRunId()); err != nil {
		return nil, toStatus(err)
	}
	if err := s.Runner.Cancel(req.GetSyncId(), req.GetRunId()); err != nil {
		return nil, toStatus(err)
	}
	r, err := s.run(ctx, p.GetWorkspaceId(), req.GetSyncId(), req.GetRunId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &reverseetlv1.CancelSyncRunResponse{Run: r}, nil
}
