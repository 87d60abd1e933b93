// Package server adapts the catalog to its gRPC API: requests in, domain
// calls, responses out, and the one place domain errors become gRPC statuses.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"github.com/switchyardhq/switchyard/services/catalog/internal/catalog"
	"github.com/switchyardhq/switchyard/services/internal/platform/auth"
	"github.com/switchyardhq/switchyard/services/internal/platform/status"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
)

// Server implements catalogv1.CatalogServiceServer.
type Server struct {
	catalogv1.UnimplementedCatalogServiceServer
	cat    *catalog.Catalog
	logger *slog.Logger

	// stopping is closed by StopWatches.
	stopping chan struct{}
	stopOnce sync.Once
}

// New returns the gRPC server of cat.
func New(cat *catalog.Catalog, logger *slog.Logger) *Server {
	return &Server{cat: cat, logger: logger, stopping: make(chan struct{})}
}

// StopWatches ends every WatchConfig stream and refuses new ones, both
// with Unavailable (watchers reconnect with backoff and keep their last
// snapshot meanwhile). It is called when the catalog stops following its
// store, before the gRPC server stops: an open stream would otherwise keep
// GracefulStop waiting until the shutdown timeout.
func (s *Server) StopWatches() { s.stopOnce.Do(func() { close(s.stopping) }) }

// errStopping is the status of a WatchConfig stream the catalog ended.
var errStopping = status.Error(codes.Unavailable, "CATALOG_STOPPING", "the catalog is shutting down; reconnect later", nil)

// toStatus is the single domain-error → gRPC-status conversion of Catalog.
func toStatus(err error) error {
	var ve *catalog.ValidationError
	var nf *catalog.NotFoundError
	var re *catalog.RevisionError
	var pe *catalog.PermissionError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ve):
		return status.InvalidField("CATALOG_"+ve.Rule, ve.Field, ve.Error())
	case errors.As(err, &nf):
		kind := strings.ToUpper(strings.TrimSuffix(string(nf.Kind), "s"))
		return status.Error(codes.NotFound, "CATALOG_"+kind+"_NOT_FOUND", nf.Error(), map[string]string{"id": nf.ID})
	case errors.As(err, &re):
		// ABORTED (HTTP 409) with the reason and the field to fix.
		st := grpcstatus.New(codes.Aborted, re.Error())
		meta := map[string]string{"field": "revision", "currentRevision": strconv.FormatUint(re.Current, 10)}
		if d, derr := st.WithDetails(
			&errdetails.ErrorInfo{Reason: "CATALOG_REVISION_MISMATCH", Domain: status.Domain, Metadata: meta},
			&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "revision", Description: re.Error()}}},
		); derr == nil {
			return d.Err()
		}
		return st.Err()
	case errors.Is(err, catalog.ErrConflict):
		return status.Error(codes.Aborted, "CATALOG_CONFLICT", "the resource changed concurrently; retry", nil)
	case errors.Is(err, catalog.ErrUnauthenticated):
		return status.Error(codes.Unauthenticated, "AUTH_UNAUTHENTICATED", "unknown or revoked token", nil)
	case errors.As(err, &pe):
		return status.Error(codes.PermissionDenied, "AUTH_PERMISSION_DENIED", pe.Error(), map[string]string{"needRole": pe.Need})
	case errors.Is(err, catalog.ErrPermissionDenied):
		return status.Error(codes.PermissionDenied, "AUTH_PERMISSION_DENIED", "the token's role does not allow this call", nil)
	}
	return err // Internal, logged by the status interceptor
}

func page(p *catalogv1.PaginationInput) catalog.Page {
	return catalog.Page{Count: p.GetCount(), Cursor: p.GetCursor()}
}

func pageOut(i catalog.PageInfo) *catalogv1.PaginationOutput {
	return &catalogv1.PaginationOutput{Current: i.Current, Next: i.Next, Previous: i.Previous, TotalEntries: i.Total}
}

// revision returns the expected revision of a conditional write: the body's
// revision or an If-Match header (REST, forwarded by the gateway as
// grpcgateway-if-match; gRPC clients may send if-match metadata).
func revision(ctx context.Context, body uint64) (uint64, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := append(md.Get("grpcgateway-if-match"), md.Get("if-match")...)
	if len(vals) == 0 {
		return body, nil
	}
	raw := strings.Trim(strings.TrimPrefix(strings.TrimSpace(vals[0]), "W/"), `"`)
	n, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || n == 0 {
		return 0, toStatus(&catalog.ValidationError{Field: "If-Match", Rule: "REVISION_FORMAT", Message: fmt.Sprintf("must be a revision number, got %q", vals[0])})
	}
	if body != 0 && body != n {
		return 0, toStatus(&catalog.ValidationError{Field: "revision", Rule: "REVISION_FORMAT", Message: "differs from the If-Match header"})
	}
	return n, nil
}

// call runs fn for an authenticated public RPC and converts its error.
func call[Resp any](ctx context.Context, fn func(p *catalogv1.Principal) (Resp, error)) (Resp, error) {
	var zero Resp
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return zero, err
	}
	resp, err := fn(p)
	if err != nil {
		return zero, toStatus(err)
	}
	return resp, nil
}

// GetWorkspace implements the RPC.
func (s *Server) GetWorkspace(ctx context.Context, _ *catalogv1.GetWorkspaceRequest) (*catalogv1.GetWorkspaceResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.GetWorkspaceResponse, error) {
		ws, err := s.cat.Workspace(p)
		return &catalogv1.GetWorkspaceResponse{Workspace: ws}, err
	})
}

// GetMe implements the RPC.
func (s *Server) GetMe(ctx context.Context, _ *catalogv1.GetMeRequest) (*catalogv1.GetMeResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.GetMeResponse, error) {
		u, t, err := s.cat.Me(p)
		return &catalogv1.GetMeResponse{User: u, Token: t}, err
	})
}

// ListSources implements the RPC.
func (s *Server) ListSources(ctx context.Context, req *catalogv1.ListSourcesRequest) (*catalogv1.ListSourcesResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.ListSourcesResponse, error) {
		items, info, err := s.cat.ListSources(p, catalog.Query{Sort: req.GetSort(), Filters: req.GetFilter(), Page: page(req.GetPagination())})
		return &catalogv1.ListSourcesResponse{Sources: items, Pagination: pageOut(info)}, err
	})
}

// GetSource implements the RPC.
func (s *Server) GetSource(ctx context.Context, req *catalogv1.GetSourceRequest) (*catalogv1.GetSourceResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.GetSourceResponse, error) {
		src, err := s.cat.GetSource(p, req.GetSourceId())
		return &catalogv1.GetSourceResponse{Source: src}, err
	})
}

// CreateSource implements the RPC.
func (s *Server) CreateSource(ctx context.Context, req *catalogv1.CreateSourceRequest) (*catalogv1.CreateSourceResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.CreateSourceResponse, error) {
		src, err := s.cat.CreateSource(ctx, p, req)
		return &catalogv1.CreateSourceResponse{Source: src}, err
	})
}

// UpdateSource implements the RPC.
func (s *Server) UpdateSource(ctx context.Context, req *catalogv1.UpdateSourceRequest) (*catalogv1.UpdateSourceResponse, error) {
	rev, err := revision(ctx, req.GetRevision())
	if err != nil {
		return nil, err
	}
	req.Revision = rev
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.UpdateSourceResponse, error) {
		src, err := s.cat.UpdateSource(ctx, p, req)
		return &catalogv1.UpdateSourceResponse{Source: src}, err
	})
}

// DeleteSource implements the RPC.
func (s *Server) DeleteSource(ctx context.Context, req *catalogv1.DeleteSourceRequest) (*catalogv1.DeleteSourceResponse, error) {
	rev, err := revision(ctx, req.GetRevision())
	if err != nil {
		return nil, err
	}
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.DeleteSourceResponse, error) {
		return &catalogv1.DeleteSourceResponse{}, s.cat.DeleteSource(ctx, p, req.GetSourceId(), rev)
	})
}

// AddSourceLabels implements the RPC.
func (s *Server) AddSourceLabels(ctx context.Context, req *catalogv1.AddSourceLabelsRequest) (*catalogv1.AddSourceLabelsResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.AddSourceLabelsResponse, error) {
		src, err := s.cat.AddSourceLabels(ctx, p, req)
		return &catalogv1.AddSourceLabelsResponse{Source: src}, err
	})
}

// CreateWriteKey implements the RPC.
func (s *Server) CreateWriteKey(ctx context.Context, req *catalogv1.CreateWriteKeyRequest) (*catalogv1.CreateWriteKeyResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.CreateWriteKeyResponse, error) {
		key, src, err := s.cat.CreateWriteKey(ctx, p, req.GetSourceId())
		return &catalogv1.CreateWriteKeyResponse{WriteKey: key, Source: src}, err
	})
}

// RevokeWriteKey implements the RPC.
func (s *Server) RevokeWriteKey(ctx context.Context, req *catalogv1.RevokeWriteKeyRequest) (*catalogv1.RevokeWriteKeyResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.RevokeWriteKeyResponse, error) {
		src, err := s.cat.RevokeWriteKey(ctx, p, req.GetSourceId(), req.GetWriteKey())
		return &catalogv1.RevokeWriteKeyResponse{Source: src}, err
	})
}

// ListDestinations implements the RPC.
func (s *Server) ListDestinations(ctx context.Context, req *catalogv1.ListDestinationsRequest) (*catalogv1.ListDestinationsResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.ListDestinationsResponse, error) {
		items, info, err := s.cat.ListDestinations(p, catalog.Query{Sort: req.GetSort(), Filters: req.GetFilter(), Page: page(req.GetPagination())})
		return &catalogv1.ListDestinationsResponse{Destinations: items, Pagination: pageOut(info)}, err
	})
}

// GetDestination implements the RPC.
func (s *Server) GetDestination(ctx context.Context, req *catalogv1.GetDestinationRequest) (*catalogv1.GetDestinationResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.GetDestinationResponse, error) {
		d, err := s.cat.GetDestination(p, req.GetDestinationId())
		return &catalogv1.GetDestinationResponse{Destination: d}, err
	})
}

// CreateDestination implements the RPC.
func (s *Server) CreateDestination(ctx context.Context, req *catalogv1.CreateDestinationRequest) (*catalogv1.CreateDestinationResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.CreateDestinationResponse, error) {
		d, err := s.cat.CreateDestination(ctx, p, req)
		return &catalogv1.CreateDestinationResponse{Destination: d}, err
	})
}

// UpdateDestination implements the RPC.
func (s *Server) UpdateDestination(ctx context.Context, req *catalogv1.UpdateDestinationRequest) (*catalogv1.UpdateDestinationResponse, error) {
	rev, err := revision(ctx, req.GetRevision())
	if err != nil {
		return nil, err
	}
	req.Revision = rev
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.UpdateDestinationResponse, error) {
		d, err := s.cat.UpdateDestination(ctx, p, req)
		return &catalogv1.UpdateDestinationResponse{Destination: d}, err
	})
}

// DeleteDestination implements the RPC.
func (s *Server) DeleteDestination(ctx context.Context, req *catalogv1.DeleteDestinationRequest) (*catalogv1.DeleteDestinationResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.DeleteDestinationResponse, error) {
		return &catalogv1.DeleteDestinationResponse{}, s.cat.DeleteDestination(ctx, p, req.GetDestinationId())
	})
}

// ListWarehouses implements the RPC.
func (s *Server) ListWarehouses(ctx context.Context, req *catalogv1.ListWarehousesRequest) (*catalogv1.ListWarehousesResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.ListWarehousesResponse, error) {
		items, info, err := s.cat.ListWarehouses(p, page(req.GetPagination()))
		return &catalogv1.ListWarehousesResponse{Warehouses: items, Pagination: pageOut(info)}, err
	})
}

// GetWarehouse implements the RPC.
func (s *Server) GetWarehouse(ctx context.Context, req *catalogv1.GetWarehouseRequest) (*catalogv1.GetWarehouseResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.GetWarehouseResponse, error) {
		w, err := s.cat.GetWarehouse(p, req.GetWarehouseId())
		return &catalogv1.GetWarehouseResponse{Warehouse: w}, err
	})
}

// CreateWarehouse implements the RPC.
func (s *Server) CreateWarehouse(ctx context.Context, req *catalogv1.CreateWarehouseRequest) (*catalogv1.CreateWarehouseResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.CreateWarehouseResponse, error) {
		w, err := s.cat.CreateWarehouse(ctx, p, req)
		return &catalogv1.CreateWarehouseResponse{Warehouse: w}, err
	})
}

// UpdateWarehouse implements the RPC.
func (s *Server) UpdateWarehouse(ctx context.Context, req *catalogv1.UpdateWarehouseRequest) (*catalogv1.UpdateWarehouseResponse, error) {
	rev, err := revision(ctx, req.GetRevision())
	if err != nil {
		return nil, err
	}
	req.Revision = rev
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.UpdateWarehouseResponse, error) {
		w, err := s.cat.UpdateWarehouse(ctx, p, req)
		return &catalogv1.UpdateWarehouseResponse{Warehouse: w}, err
	})
}

// DeleteWarehouse implements the RPC.
func (s *Server) DeleteWarehouse(ctx context.Context, req *catalogv1.DeleteWarehouseRequest) (*catalogv1.DeleteWarehouseResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.DeleteWarehouseResponse, error) {
		return &catalogv1.DeleteWarehouseResponse{}, s.cat.DeleteWarehouse(ctx, p, req.GetWarehouseId())
	})
}

// ConnectWarehouseSource implements the RPC.
func (s *Server) ConnectWarehouseSource(ctx context.Context, req *catalogv1.ConnectWarehouseSourceRequest) (*catalogv1.ConnectWarehouseSourceResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.ConnectWarehouseSourceResponse, error) {
		w, err := s.cat.ConnectWarehouseSource(ctx, p, req.GetWarehouseId(), req.GetSourceId())
		return &catalogv1.ConnectWarehouseSourceResponse{Warehouse: w}, err
	})
}

// DisconnectWarehouseSource implements the RPC.
func (s *Server) DisconnectWarehouseSource(ctx context.Context, req *catalogv1.DisconnectWarehouseSourceRequest) (*catalogv1.DisconnectWarehouseSourceResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.DisconnectWarehouseSourceResponse, error) {
		w, err := s.cat.DisconnectWarehouseSource(ctx, p, req.GetWarehouseId(), req.GetSourceId())
		return &catalogv1.DisconnectWarehouseSourceResponse{Warehouse: w}, err
	})
}

// ListUsers implements the RPC.
func (s *Server) ListUsers(ctx context.Context, req *catalogv1.ListUsersRequest) (*catalogv1.ListUsersResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.ListUsersResponse, error) {
		items, info, err := s.cat.ListUsers(p, page(req.GetPagination()))
		return &catalogv1.ListUsersResponse{Users: items, Pagination: pageOut(info)}, err
	})
}

// CreateUser implements the RPC.
func (s *Server) CreateUser(ctx context.Context, req *catalogv1.CreateUserRequest) (*catalogv1.CreateUserResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.CreateUserResponse, error) {
		u, err := s.cat.CreateUser(ctx, p, req)
		return &catalogv1.CreateUserResponse{User: u}, err
	})
}

// UpdateUser implements the RPC.
func (s *Server) UpdateUser(ctx context.Context, req *catalogv1.UpdateUserRequest) (*catalogv1.UpdateUserResponse, error) {
	rev, err := revision(ctx, req.GetRevision())
	if err != nil {
		return nil, err
	}
	req.Revision = rev
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.UpdateUserResponse, error) {
		u, err := s.cat.UpdateUser(ctx, p, req)
		return &catalogv1.UpdateUserResponse{User: u}, err
	})
}

// DeleteUser implements the RPC.
func (s *Server) DeleteUser(ctx context.Context, req *catalogv1.DeleteUserRequest) (*catalogv1.DeleteUserResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.DeleteUserResponse, error) {
		return &catalogv1.DeleteUserResponse{}, s.cat.DeleteUser(ctx, p, req.GetUserId())
	})
}

// ListTokens implements the RPC.
func (s *Server) ListTokens(ctx context.Context, req *catalogv1.ListTokensRequest) (*catalogv1.ListTokensResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.ListTokensResponse, error) {
		items, info, err := s.cat.ListTokens(p, page(req.GetPagination()))
		return &catalogv1.ListTokensResponse{Tokens: items, Pagination: pageOut(info)}, err
	})
}

// CreateToken implements the RPC.
func (s *Server) CreateToken(ctx context.Context, req *catalogv1.CreateTokenRequest) (*catalogv1.CreateTokenResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.CreateTokenResponse, error) {
		t, secret, err := s.cat.CreateToken(ctx, p, req)
		return &catalogv1.CreateTokenResponse{Token: t, Secret: secret}, err
	})
}

// DeleteToken implements the RPC.
func (s *Server) DeleteToken(ctx context.Context, req *catalogv1.DeleteTokenRequest) (*catalogv1.DeleteTokenResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.DeleteTokenResponse, error) {
		return &catalogv1.DeleteTokenResponse{}, s.cat.DeleteToken(ctx, p, req.GetTokenId())
	})
}

// ListCatalogSources implements the RPC.
func (s *Server) ListCatalogSources(ctx context.Context, _ *catalogv1.ListCatalogSourcesRequest) (*catalogv1.ListCatalogSourcesResponse, error) {
	return call(ctx, func(*catalogv1.Principal) (*catalogv1.ListCatalogSourcesResponse, error) {
		return &catalogv1.ListCatalogSourcesResponse{Sources: catalog.CatalogSources()}, nil
	})
}

// ListCatalogDestinations implements the RPC.
func (s *Server) ListCatalogDestinations(ctx context.Context, _ *catalogv1.ListCatalogDestinationsRequest) (*catalogv1.ListCatalogDestinationsResponse, error) {
	return call(ctx, func(*catalogv1.Principal) (*catalogv1.ListCatalogDestinationsResponse, error) {
		return &catalogv1.ListCatalogDestinationsResponse{Destinations: catalog.CatalogDestinations()}, nil
	})
}

// ListCatalogWarehouses implements the RPC.
func (s *Server) ListCatalogWarehouses(ctx context.Context, _ *catalogv1.ListCatalogWarehousesRequest) (*catalogv1.ListCatalogWarehousesResponse, error) {
	return call(ctx, func(*catalogv1.Principal) (*catalogv1.ListCatalogWarehousesResponse, error) {
		return &catalogv1.ListCatalogWarehousesResponse{Warehouses: catalog.CatalogWarehouses()}, nil
	})
}

// GetView implements the RPC.
func (s *Server) GetView(ctx context.Context, req *catalogv1.GetViewRequest) (*catalogv1.GetViewResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.GetViewResponse, error) {
		v, cols, err := s.cat.GetView(p, req.GetPage())
		return &catalogv1.GetViewResponse{View: v, AvailableColumns: cols}, err
	})
}

// PutView implements the RPC.
func (s *Server) PutView(ctx context.Context, req *catalogv1.PutViewRequest) (*catalogv1.PutViewResponse, error) {
	rev, err := revision(ctx, req.GetRevision())
	if err != nil {
		return nil, err
	}
	req.Revision = rev
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.PutViewResponse, error) {
		v, err := s.cat.PutView(ctx, p, req)
		return &catalogv1.PutViewResponse{View: v}, err
	})
}

// ListAuditEvents implements the RPC.
func (s *Server) ListAuditEvents(ctx context.Context, req *catalogv1.ListAuditEventsRequest) (*catalogv1.ListAuditEventsResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.ListAuditEventsResponse, error) {
		items, info, err := s.cat.ListAuditEvents(p, page(req.GetPagination()), req.GetResourceId(), req.GetAction())
		return &catalogv1.ListAuditEventsResponse{AuditEvents: items, Pagination: pageOut(info)}, err
	})
}

// CreateIntegrationRequest implements the RPC.
func (s *Server) CreateIntegrationRequest(ctx context.Context, req *catalogv1.CreateIntegrationRequestRequest) (*catalogv1.CreateIntegrationRequestResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.CreateIntegrationRequestResponse, error) {
		r, err := s.cat.CreateIntegrationRequest(ctx, p, req)
		return &catalogv1.CreateIntegrationRequestResponse{IntegrationRequest: r}, err
	})
}

// ListIntegrationRequests implements the RPC.
func (s *Server) ListIntegrationRequests(ctx context.Context, req *catalogv1.ListIntegrationRequestsRequest) (*catalogv1.ListIntegrationRequestsResponse, error) {
	return call(ctx, func(p *catalogv1.Principal) (*catalogv1.ListIntegrationRequestsResponse, error) {
		items, info, err := s.cat.ListIntegrationRequests(p, page(req.GetPagination()))
		return &catalogv1.ListIntegrationRequestsResponse{IntegrationRequests: items, Pagination: pageOut(info)}, err
	})
}

// AuthenticateToken implements the internal RPC.
func (s *Server) AuthenticateToken(_ context.Context, req *catalogv1.AuthenticateTokenRequest) (*catalogv1.AuthenticateTokenResponse, error) {
	p, err := s.cat.Authenticate(req.GetToken())
	if err != nil {
		return nil, toStatus(err)
	}
	return &catalogv1.AuthenticateTokenResponse{Principal: p}, nil
}

// BootstrapWorkspace implements the internal RPC.
func (s *Server) BootstrapWorkspace(ctx context.Context, req *catalogv1.BootstrapWorkspaceRequest) (*catalogv1.BootstrapWorkspaceResponse, error) {
	if err := s.cat.WaitReady(ctx); err != nil {
		return nil, err
	}
	resp, err := s.cat.Bootstrap(ctx, req)
	return resp, toStatus(err)
}

// WatchConfig implements the internal streaming RPC: a snapshot now and one
// after every change. Changes that happen while a send is in flight are
// coalesced into the next snapshot, so a slow watcher never blocks writers.
// The stream ends with Unavailable when the catalog stops (StopWatches).
func (s *Server) WatchConfig(_ *catalogv1.WatchConfigRequest, stream grpc.ServerStreamingServer[catalogv1.WatchConfigResponse]) error {
	select {
	case <-s.stopping:
		return errStopping
	default:
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	go func() {
		select {
		case <-s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := s.cat.WaitReady(ctx); err != nil {
		return s.watchEnd(err)
	}
	changed, unsubscribe := s.cat.Subscribe()
	defer unsubscribe()
	for {
		if err := stream.Send(&catalogv1.WatchConfigResponse{Snapshots: s.cat.Snapshots()}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return s.watchEnd(nil)
		case <-changed:
		}
	}
}

// watchEnd is what WatchConfig returns once its context is done: err (nil
// when the watcher left), or errStopping when the catalog is stopping.
func (s *Server) watchEnd(err error) error {
	select {
	case <-s.stopping:
		return errStopping
	default:
		return err
	}
}
