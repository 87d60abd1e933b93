// Package server adapts the catalog to its gRPC API: requests in, domain
// calls, responses out, and the one place domain errors become gRPC statuses.
package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"github.com/switchyardhq/switchyard/services/catalog/internal/catalog"
	"github.com/switchyardhq/switchyard/services/internal/platform/auth"
	"github.com/switchyardhq/switchyard/services/internal/platform/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// Server implements catalogv1.CatalogServiceServer.
type Server struct {
	catalogv1.UnimplementedCatalogServiceServer
	cat    *catalog.Catalog
	logger *slog.Logger
}

// New returns the gRPC server of cat.
func New(cat *catalog.Catalog, logger *slog.Logger) *Server {
	return &Server{cat: cat, logger: logger}
}

// toStatus is the single domain-error → gRPC-status conversion of Catalog.
func toStatus(err error) error {
	var ve *catalog.ValidationError
	var nf *catalog.NotFoundError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ve):
		return status.InvalidField("CATALOG_"+ve.Rule, ve.Field, ve.Error())
	case errors.As(err, &nf):
		return status.Error(codes.NotFound, "CATALOG_"+strings.ToUpper(strings.TrimSuffix(string(nf.Kind), "s"))+"_NOT_FOUND", nf.Error(), map[string]string{"id": nf.ID})
	case errors.Is(err, catalog.ErrConflict):
		return status.Error(codes.Aborted, "CATALOG_CONFLICT", "the resource changed concurrently; retry", nil)
	case errors.Is(err, catalog.ErrUnauthenticated):
		return status.Error(codes.Unauthenticated, "AUTH_UNAUTHENTICATED", "unknown or revoked token", nil)
	case errors.Is(err, catalog.ErrPermissionDenied):
		return status.Error(codes.PermissionDenied, "AUTH_PERMISSION_DENIED", "the token's role does not allow this call", nil)
	}
	return err // Internal, logged by the status interceptor
}

func page(p *catalogv1.PaginationInput) catalog.Page {
	return catalog.Page{Count: p.GetCount(), Cursor: p.GetCursor()}
}

func pageOut(i catalog.PageInfo) *catalogv1.PaginationOutput {
	return &catalogv1.PaginationOutput{Current: i.Current, Next: i.Next, TotalEntries: i.Total}
}

// GetWorkspace implements the RPC.
func (s *Server) GetWorkspace(ctx context.Context, _ *catalogv1.GetWorkspaceRequest) (*catalogv1.GetWorkspaceResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	ws, err := s.cat.Workspace(p)
	return &catalogv1.GetWorkspaceResponse{Workspace: ws}, toStatus(err)
}

// ListSources implements the RPC.
func (s *Server) ListSources(ctx context.Context, req *catalogv1.ListSourcesRequest) (*catalogv1.ListSourcesResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	items, info, err := s.cat.ListSources(p, page(req.GetPagination()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &catalogv1.ListSourcesResponse{Sources: items, Pagination: pageOut(info)}, nil
}

// GetSource implements the RPC.
func (s *Server) GetSource(ctx context.Context, req *catalogv1.GetSourceRequest) (*catalogv1.GetSourceResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	src, err := s.cat.GetSource(p, req.GetSourceId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &catalogv1.GetSourceResponse{Source: src}, nil
}

// CreateSource implements the RPC.
func (s *Server) CreateSource(ctx context.Context, req *catalogv1.CreateSourceRequest) (*catalogv1.CreateSourceResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	src, err := s.cat.CreateSource(ctx, p, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return &catalogv1.CreateSourceResponse{Source: src}, nil
}

// ListDestinations implements the RPC.
func (s *Server) ListDestinations(ctx context.Context, req *catalogv1.ListDestinationsRequest) (*catalogv1.ListDestinationsResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	items, info, err := s.cat.ListDestinations(p, page(req.GetPagination()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &catalogv1.ListDestinationsResponse{Destinations: items, Pagination: pageOut(info)}, nil
}

// GetDestination implements the RPC.
func (s *Server) GetDestination(ctx context.Context, req *catalogv1.GetDestinationRequest) (*catalogv1.GetDestinationResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	d, err := s.cat.GetDestination(p, req.GetDestinationId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &catalogv1.GetDestinationResponse{Destination: d}, nil
}

// CreateDestination implements the RPC.
func (s *Server) CreateDestination(ctx context.Context, req *catalogv1.CreateDestinationRequest) (*catalogv1.CreateDestinationResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	d, err := s.cat.CreateDestination(ctx, p, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return &catalogv1.CreateDestinationResponse{Destination: d}, nil
}

// DeleteDestination implements the RPC.
func (s *Server) DeleteDestination(ctx context.Context, req *catalogv1.DeleteDestinationRequest) (*catalogv1.DeleteDestinationResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.cat.DeleteDestination(ctx, p, req.GetDestinationId()); err != nil {
		return nil, toStatus(err)
	}
	return &catalogv1.DeleteDestinationResponse{}, nil
}

// ListWarehouses implements the RPC.
func (s *Server) ListWarehouses(ctx context.Context, req *catalogv1.ListWarehousesRequest) (*catalogv1.ListWarehousesResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	items, info, err := s.cat.ListWarehouses(p, page(req.GetPagination()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &catalogv1.ListWarehousesResponse{Warehouses: items, Pagination: pageOut(info)}, nil
}

// GetWarehouse implements the RPC.
func (s *Server) GetWarehouse(ctx context.Context, req *catalogv1.GetWarehouseRequest) (*catalogv1.GetWarehouseResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	w, err := s.cat.GetWarehouse(p, req.GetWarehouseId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &catalogv1.GetWarehouseResponse{Warehouse: w}, nil
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
func (s *Server) WatchConfig(_ *catalogv1.WatchConfigRequest, stream grpc.ServerStreamingServer[catalogv1.WatchConfigResponse]) error {
	ctx := stream.Context()
	if err := s.cat.WaitReady(ctx); err != nil {
		return err
	}
	changed, cancel := s.cat.Subscribe()
	defer cancel()
	for {
		if err := stream.Send(&catalogv1.WatchConfigResponse{Snapshots: s.cat.Snapshots()}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}
