package catalog

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// CreateIntegrationRequest stores a request for a missing integration. Any
// role may ask: a request changes nothing in the workspace.
func (c *Catalog) CreateIntegrationRequest(ctx context.Context, p *catalogv1.Principal, req *catalogv1.CreateIntegrationRequestRequest) (*catalogv1.IntegrationRequest, error) {
	switch req.GetKind() {
	case "source", "destination", "warehouse":
	case "":
		return nil, invalid("kind", "REQUIRED", "is required")
	default:
		return nil, invalid("kind", "INTEGRATION_KIND_INVALID", "must be source, destination or warehouse, got %q", req.GetKind())
	}
	name := strings.TrimSpace(req.GetName())
	if name == "" {
		return nil, invalid("name", "REQUIRED", "is required")
	}
	if len(name) > 200 || len(req.GetWhy()) > 5000 {
		return nil, invalid("why", "TOO_LONG", "name is limited to 200 characters and why to 5000")
	}
	if w := req.GetWebsite(); w != "" {
		u, err := url.Parse(w)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, invalid("website", "URL_FORMAT", "must be an absolute http or https URL, got %q", w)
		}
	}
	r := &catalogv1.IntegrationRequest{
		Id: NewID("ir"), WorkspaceId: p.GetWorkspaceId(), Kind: req.GetKind(), Name: name,
		Website: req.GetWebsite(), Why: req.GetWhy(), CreatedAt: timestamppb.New(c.now()), CreatedBy: p.GetUserId(),
	}
	if err := c.create(ctx, KindIntegrationRequest, r.Id, r); err != nil {
		return nil, fmt.Errorf("store integration request: %w", err)
	}
	c.record(ctx, p, "Integration Requested", KindIntegrationRequest, r.Id, r.Name, map[string]string{"kind": r.Kind})
	return r, nil
}

// ListIntegrationRequests returns the workspace's requests, newest first.
func (c *Catalog) ListIntegrationRequests(p *catalogv1.Principal, page Page) ([]*catalogv1.IntegrationRequest, PageInfo, error) {
	items := list(c, KindIntegrationRequest, inWorkspace[*catalogv1.IntegrationRequest](p.GetWorkspaceId()))
	got, info, err := pageByCreation(items, page, true)
	if err != nil {
		return nil, PageInfo{}, err
	}
	for i := range got {
		got[i] = proto.Clone(got[i]).(*catalogv1.IntegrationRequest)
	}
	return got, info, nil
}
