package catalog

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Workspace returns the principal's workspace.
func (c *Catalog) Workspace(p *catalogv1.Principal) (*catalogv1.Workspace, error) {
	e, ok := c.get(KindWorkspace, p.GetWorkspaceId())
	if !ok {
		return nil, &NotFoundError{Kind: KindWorkspace, ID: p.GetWorkspaceId()}
	}
	return proto.Clone(e.msg).(*catalogv1.Workspace), nil
}

func inWorkspace[T interface{ GetWorkspaceId() string }](ws string) func(T) bool {
	return func(v T) bool { return v.GetWorkspaceId() == ws }
}

// ListSources returns a page of the principal's sources in creation order.
func (c *Catalog) ListSources(p *catalogv1.Principal, page Page) ([]*catalogv1.Source, PageInfo, error) {
	items := list(c, KindSource, inWorkspace[*catalogv1.Source](p.GetWorkspaceId()))
	sortByCreation(items)
	return paginate(items, page)
}

// GetSource returns one of the principal's sources.
func (c *Catalog) GetSource(p *catalogv1.Principal, id string) (*catalogv1.Source, error) {
	return getIn[*catalogv1.Source](c, KindSource, p.GetWorkspaceId(), id)
}

func getIn[T interface {
	proto.Message
	GetWorkspaceId() string
}](c *Catalog, k Kind, ws, id string) (T, error) {
	var zero T
	if id == "" {
		return zero, invalid(k.singular()+"_id", "REQUIRED", "is required")
	}
	e, ok := c.get(k, id)
	if !ok || e.msg.(T).GetWorkspaceId() != ws {
		return zero, &NotFoundError{Kind: k, ID: id}
	}
	return proto.Clone(e.msg).(T), nil
}

// SourceTypes is the part of the integration catalog sources are created
// from: type slug → category.
var SourceTypes = map[string]string{"http-api": "Server", "javascript": "Website", "node-js": "Server"}

// CreateSource validates and stores a new source with one write key.
func (c *Catalog) CreateSource(ctx context.Context, p *catalogv1.Principal, req *catalogv1.CreateSourceRequest) (*catalogv1.Source, error) {
	if err := canWrite(p); err != nil {
		return nil, err
	}
	return c.createSource(ctx, p.GetWorkspaceId(), p.GetUserId(), req, NewSecret(32))
}

func (c *Catalog) createSource(ctx context.Context, ws, by string, req *catalogv1.CreateSourceRequest, writeKey string) (*catalogv1.Source, error) {
	name := strings.TrimSpace(req.GetName())
	if name == "" {
		return nil, invalid("name", "REQUIRED", "is required")
	}
	typ := req.GetType()
	if typ == "" {
		typ = "http-api"
	}
	category, ok := SourceTypes[typ]
	if !ok {
		return nil, invalid("type", "SOURCE_TYPE_UNKNOWN", "unknown source type %q", typ)
	}
	slug := req.GetSlug()
	if slug == "" {
		slug = Slugify(name)
	}
	if slug == "" || slug != Slugify(slug) {
		return nil, invalid("slug", "SLUG_FORMAT", "must be lower-case letters, digits and underscores, not starting with a digit, at most 63 characters")
	}
	for _, s := range list(c, KindSource, inWorkspace[*catalogv1.Source](ws)) {
		if s.GetSlug() == slug {
			return nil, invalid("slug", "SLUG_TAKEN", "slug %q is already used by source %s", slug, s.GetId())
		}
	}
	env := req.GetEnvironment()
	if env == catalogv1.Environment_ENVIRONMENT_UNSPECIFIED {
		env = catalogv1.Environment_ENVIRONMENT_PROD
	}
	src := &catalogv1.Source{
		Id:          NewID("src"),
		WorkspaceId: ws,
		Name:        name,
		Slug:        slug,
		Type:        typ,
		Category:    category,
		Environment: env,
		Labels:      req.GetLabels(),
		Enabled:     req.Enabled == nil || req.GetEnabled(),
		WriteKeys:   []string{writeKey},
		CreatedAt:   timestamppb.New(c.now()),
		CreatedBy:   by,
	}
	if err := c.create(ctx, KindSource, src.Id, src); err != nil {
		return nil, fmt.Errorf("store source: %w", err)
	}
	return src, nil
}

// ListDestinations returns a page of the principal's destinations.
func (c *Catalog) ListDestinations(p *catalogv1.Principal, page Page) ([]*catalogv1.Destination, PageInfo, error) {
	items := list(c, KindDestination, inWorkspace[*catalogv1.Destination](p.GetWorkspaceId()))
	sortByCreation(items)
	out, info, err := paginate(items, page)
	for _, d := range out {
		redactSecrets(d)
	}
	return out, info, err
}

// GetDestination returns one of the principal's destinations.
func (c *Catalog) GetDestination(p *catalogv1.Principal, id string) (*catalogv1.Destination, error) {
	d, err := getIn[*catalogv1.Destination](c, KindDestination, p.GetWorkspaceId(), id)
	if err == nil {
		redactSecrets(d)
	}
	return d, err
}

// DestinationType describes one destination type of the integration catalog.
type DestinationType struct {
	Category string
	// Validate checks settings and reports the first bad field.
	Validate func(*structpb.Struct) error
	// Secret lists settings that are never returned in clear.
	Secret []string
}

// DestinationTypes is the part of the integration catalog destinations are
// created from.
var DestinationTypes = map[string]DestinationType{
	"webhook": {Category: "Raw Data", Validate: validateWebhook, Secret: []string{"headers"}},
}

func validateWebhook(s *structpb.Struct) error {
	raw := s.GetFields()["url"].GetStringValue()
	if raw == "" {
		return invalid("settings.url", "REQUIRED", "is required")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid("settings.url", "URL_FORMAT", "must be an absolute http or https URL, got %q", raw)
	}
	if h, ok := s.GetFields()["headers"]; ok {
		obj := h.GetStructValue()
		if obj == nil {
			return invalid("settings.headers", "HEADERS_FORMAT", "must be an object of header names to string values")
		}
		for k, v := range obj.GetFields() {
			if _, ok := v.GetKind().(*structpb.Value_StringValue); !ok {
				return invalid("settings.headers."+k, "HEADERS_FORMAT", "must be a string")
			}
		}
	}
	for k := range s.GetFields() {
		if k != "url" && k != "headers" {
			return invalid("settings."+k, "SETTING_UNKNOWN", "is not a webhook setting (allowed: url, headers)")
		}
	}
	return nil
}

const redacted = "••••••"

// redactSecrets replaces secret settings with a mask so they never leave in clear.
func redactSecrets(d *catalogv1.Destination) {
	t, ok := DestinationTypes[d.GetType()]
	if !ok || d.GetSettings() == nil {
		return
	}
	for _, k := range t.Secret {
		if _, ok := d.Settings.Fields[k]; ok {
			d.Settings.Fields[k] = structpb.NewStringValue(redacted)
		}
	}
}

// CreateDestination validates and stores a destination connected to a source.
func (c *Catalog) CreateDestination(ctx context.Context, p *catalogv1.Principal, req *catalogv1.CreateDestinationRequest) (*catalogv1.Destination, error) {
	if err := canWrite(p); err != nil {
		return nil, err
	}
	name := strings.TrimSpace(req.GetName())
	if name == "" {
		return nil, invalid("name", "REQUIRED", "is required")
	}
	if req.GetType() == "" {
		return nil, invalid("type", "REQUIRED", "is required")
	}
	t, ok := DestinationTypes[req.GetType()]
	if !ok {
		return nil, invalid("type", "DESTINATION_TYPE_UNKNOWN", "unknown destination type %q", req.GetType())
	}
	if req.GetSourceId() == "" {
		return nil, invalid("source_id", "REQUIRED", "is required")
	}
	if _, err := c.GetSource(p, req.GetSourceId()); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, invalid("source_id", "SOURCE_NOT_FOUND", "source %q does not exist", req.GetSourceId())
		}
		return nil, err
	}
	settings := req.GetSettings()
	if settings == nil {
		settings = &structpb.Struct{Fields: map[string]*structpb.Value{}}
	}
	if err := t.Validate(settings); err != nil {
		return nil, err
	}
	d := &catalogv1.Destination{
		Id:          NewID("dst"),
		WorkspaceId: p.GetWorkspaceId(),
		Name:        name,
		Type:        req.GetType(),
		Category:    t.Category,
		SourceId:    req.GetSourceId(),
		Enabled:     req.Enabled == nil || req.GetEnabled(),
		Settings:    settings,
		CreatedAt:   timestamppb.New(c.now()),
		CreatedBy:   p.GetUserId(),
	}
	if err := c.create(ctx, KindDestination, d.Id, d); err != nil {
		return nil, fmt.Errorf("store destination: %w", err)
	}
	out := proto.Clone(d).(*catalogv1.Destination)
	redactSecrets(out)
	return out, nil
}

// DeleteDestination removes one of the principal's destinations.
func (c *Catalog) DeleteDestination(ctx context.Context, p *catalogv1.Principal, id string) error {
	if err := canWrite(p); err != nil {
		return err
	}
	if _, err := getIn[*catalogv1.Destination](c, KindDestination, p.GetWorkspaceId(), id); err != nil {
		return err
	}
	e, ok := c.get(KindDestination, id)
	if !ok {
		return &NotFoundError{Kind: KindDestination, ID: id}
	}
	return c.remove(ctx, KindDestination, id, e.rev)
}

// ListWarehouses returns a page of the principal's warehouses.
func (c *Catalog) ListWarehouses(p *catalogv1.Principal, page Page) ([]*catalogv1.Warehouse, PageInfo, error) {
	items := list(c, KindWarehouse, inWorkspace[*catalogv1.Warehouse](p.GetWorkspaceId()))
	sortByCreation(items)
	return paginate(items, page)
}

// GetWarehouse returns one of the principal's warehouses.
func (c *Catalog) GetWarehouse(p *catalogv1.Principal, id string) (*catalogv1.Warehouse, error) {
	return getIn[*catalogv1.Warehouse](c, KindWarehouse, p.GetWorkspaceId(), id)
}

// Snapshots returns the data-plane configuration of every workspace, with
// secrets in clear (the data plane needs them to deliver).
func (c *Catalog) Snapshots() []*catalogv1.ConfigSnapshot {
	c.mu.RLock()
	rev := c.revision
	c.mu.RUnlock()
	byWS := map[string]*catalogv1.ConfigSnapshot{}
	for _, w := range list(c, KindWorkspace, func(*catalogv1.Workspace) bool { return true }) {
		byWS[w.Id] = &catalogv1.ConfigSnapshot{Workspace: w, Revision: rev}
	}
	for _, s := range list(c, KindSource, func(*catalogv1.Source) bool { return true }) {
		if snap := byWS[s.WorkspaceId]; snap != nil {
			snap.Sources = append(snap.Sources, s)
		}
	}
	for _, d := range list(c, KindDestination, func(*catalogv1.Destination) bool { return true }) {
		if snap := byWS[d.WorkspaceId]; snap != nil {
			snap.Destinations = append(snap.Destinations, d)
		}
	}
	for _, w := range list(c, KindWarehouse, func(*catalogv1.Warehouse) bool { return true }) {
		if snap := byWS[w.WorkspaceId]; snap != nil {
			snap.Warehouses = append(snap.Warehouses, w)
		}
	}
	out := make([]*catalogv1.ConfigSnapshot, 0, len(byWS))
	for _, s := range byWS {
		sortByCreation(s.Sources)
		sortByCreation(s.Destinations)
		sortByCreation(s.Warehouses)
		out = append(out, s)
	}
	return out
}
