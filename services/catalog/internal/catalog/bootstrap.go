package catalog

import (
	"context"
	"fmt"
	"strings"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Bootstrap creates the first workspace with its owner, admin token, HTTP API
// source and warehouse, unless a workspace exists: then it returns the
// existing resources with Created false and no token secret. Fixed secrets in
// req apply only to the first start.
func (c *Catalog) Bootstrap(ctx context.Context, req *catalogv1.BootstrapWorkspaceRequest) (*catalogv1.BootstrapWorkspaceResponse, error) {
	if ws := list(c, KindWorkspace, func(*catalogv1.Workspace) bool { return true }); len(ws) > 0 {
		sortByCreation(ws)
		return c.existingBootstrap(ws[0])
	}
	if req.GetWarehouseType() == catalogv1.WarehouseType_WAREHOUSE_TYPE_UNSPECIFIED {
		return nil, invalid("warehouse_type", "REQUIRED", "is required")
	}
	now := timestamppb.New(c.now())
	name := strings.TrimSpace(req.GetWorkspaceName())
	if name == "" {
		name = "Default"
	}
	ws := &catalogv1.Workspace{Id: NewID("ws"), Name: name, Slug: Slugify(name), CreatedAt: now}
	email := req.GetOwnerEmail()
	if email == "" {
		email = "owner@localhost"
	}
	owner := &catalogv1.User{Id: NewID("usr"), WorkspaceId: ws.Id, Email: email, Name: "Owner", Role: catalogv1.Role_ROLE_OWNER, CreatedAt: now}
	token := req.GetAdminToken()
	if token == "" {
		token = "sy_" + NewSecret(40)
	}
	principal := &catalogv1.Principal{WorkspaceId: ws.Id, UserId: owner.Id, Role: catalogv1.Role_ROLE_OWNER, TokenId: NewID("tok"),
		Name: "admin (bootstrap)", CreatedAt: now, CreatedBy: owner.Id, Hint: hint(token)}
	// The workspace goes last: its presence is what marks bootstrap as done.
	if err := c.create(ctx, KindUser, owner.Id, owner); err != nil {
		return nil, fmt.Errorf("store owner: %w", err)
	}
	if err := c.create(ctx, KindToken, TokenKey(token), principal); err != nil {
		return nil, fmt.Errorf("store admin token: %w", err)
	}
	writeKey := req.GetWriteKey()
	if writeKey == "" {
		writeKey = NewSecret(32)
	}
	src, err := c.createSource(ctx, ws.Id, owner.Id, &catalogv1.CreateSourceRequest{Name: "HTTP API", Type: "http-api", Environment: catalogv1.Environment_ENVIRONMENT_DEV}, writeKey)
	if err != nil {
		return nil, err
	}
	wh := &catalogv1.Warehouse{
		Id:          NewID("wh"),
		WorkspaceId: ws.Id,
		Name:        "Embedded DuckDB",
		Type:        req.GetWarehouseType(),
		Settings:    req.GetWarehouseSettings(),
		SourceIds:   []string{src.Id},
		Enabled:     true,
		CreatedAt:   now,
		CreatedBy:   owner.Id,
		UpdatedAt:   now,
	}
	if err := c.create(ctx, KindWarehouse, wh.Id, wh); err != nil {
		return nil, fmt.Errorf("store warehouse: %w", err)
	}
	// The warehouse counts as the source's destination for the lifecycle.
	c.refreshActivity(ctx, ws.Id, src.Id)
	if err := c.create(ctx, KindWorkspace, ws.Id, ws); err != nil {
		return nil, fmt.Errorf("store workspace: %w", err)
	}
	if e, ok := c.get(KindSource, src.Id); ok {
		src = c.sourceOut(nil, e.msg.(*catalogv1.Source), e.rev)
	}
	return &catalogv1.BootstrapWorkspaceResponse{Created: true, Workspace: ws, Owner: owner, AdminToken: token, Source: src, Warehouse: wh}, nil
}

func (c *Catalog) existingBootstrap(ws *catalogv1.Workspace) (*catalogv1.BootstrapWorkspaceResponse, error) {
	resp := &catalogv1.BootstrapWorkspaceResponse{Workspace: ws}
	users := list(c, KindUser, inWorkspace[*catalogv1.User](ws.Id))
	for _, u := range users {
		if u.Role == catalogv1.Role_ROLE_OWNER && (resp.Owner == nil || u.CreatedAt.AsTime().Before(resp.Owner.CreatedAt.AsTime())) {
			resp.Owner = u
		}
	}
	srcs := list(c, KindSource, inWorkspace[*catalogv1.Source](ws.Id))
	sortByCreation(srcs)
	if len(srcs) > 0 {
		resp.Source = srcs[0]
	}
	whs := list(c, KindWarehouse, inWorkspace[*catalogv1.Warehouse](ws.Id))
	sortByCreation(whs)
	if len(whs) > 0 {
		resp.Warehouse = whs[0]
	}
	return resp, nil
}

// CreateWorkspace creates another workspace with its owner and an owner
// token, returned once. There is no public RPC for it yet (one workspace per
// install in dev mode); tests and install tooling call it.
func (c *Catalog) CreateWorkspace(ctx context.Context, name, ownerEmail string) (*catalogv1.Workspace, string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, "", invalid("name", "REQUIRED", "is required")
	}
	now := timestamppb.New(c.now())
	ws := &catalogv1.Workspace{Id: NewID("ws"), Name: name, Slug: Slugify(name), CreatedAt: now}
	owner := &catalogv1.User{Id: NewID("usr"), WorkspaceId: ws.Id, Email: ownerEmail, Name: "Owner", Role: catalogv1.Role_ROLE_OWNER, CreatedAt: now}
	token := "sy_" + NewSecret(40)
	principal := &catalogv1.Principal{WorkspaceId: ws.Id, UserId: owner.Id, Role: catalogv1.Role_ROLE_OWNER, TokenId: NewID("tok"),
		Name: "owner", CreatedAt: now, CreatedBy: owner.Id, Hint: hint(token)}
	if err := c.create(ctx, KindUser, owner.Id, owner); err != nil {
		return nil, "", fmt.Errorf("store owner: %w", err)
	}
	if err := c.create(ctx, KindToken, TokenKey(token), principal); err != nil {
		return nil, "", fmt.Errorf("store owner token: %w", err)
	}
	if err := c.create(ctx, KindWorkspace, ws.Id, ws); err != nil {
		return nil, "", fmt.Errorf("store workspace: %w", err)
	}
	return ws, token, nil
}
