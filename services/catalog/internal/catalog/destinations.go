package catalog

import (
	"context"
	"fmt"
	"strings"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// destRow is one row of the Destinations page.
type destRow struct {
	d       *catalogv1.Destination
	rev     uint64
	srcName string
}

var destinationTable = &table[destRow]{
	page:        "destinations",
	viewColumns: DestinationColumns,
	id:          func(r destRow) string { return r.d.GetId() },
	columns: []column[destRow]{
		{name: "name", typ: colText, text: func(r destRow) string { return r.d.GetName() }},
		{name: "status", typ: colEnum, values: []string{"enabled", "disabled"}, text: func(r destRow) string { return statusText(r.d.GetEnabled()) }},
		{name: "createdAt", typ: colTime, num: func(r destRow) int64 { return ts(r.d.GetCreatedAt()) }},
		{name: "type", typ: colText, text: func(r destRow) string { return r.d.GetType() }},
		{name: "sources", typ: colText, text: func(r destRow) string { return r.srcName }, alt: func(r destRow) []string { return []string{r.d.GetSourceId()} }},
		{name: "category", typ: colText, text: func(r destRow) string { return r.d.GetCategory() }},
	},
}

// ListDestinations returns one page of the Destinations page.
func (c *Catalog) ListDestinations(p *catalogv1.Principal, q Query) ([]*catalogv1.Destination, PageInfo, error) {
	v := c.view(p.GetWorkspaceId())
	rows := make([]destRow, 0, len(v.destinations))
	for _, e := range v.destinations {
		d := e.msg.(*catalogv1.Destination)
		r := destRow{d: d, rev: e.rev}
		if s, ok := v.sources[d.GetSourceId()]; ok {
			r.srcName = s.msg.(*catalogv1.Source).GetName()
		}
		rows = append(rows, r)
	}
	page, info, err := destinationTable.run(rows, q)
	if err != nil {
		return nil, PageInfo{}, err
	}
	out := make([]*catalogv1.Destination, len(page))
	for i, r := range page {
		d := proto.Clone(r.d).(*catalogv1.Destination)
		v.fillDestination(d, r.rev)
		out[i] = d
	}
	return out, info, nil
}

// GetDestination returns one of the principal's destinations, secrets masked.
func (c *Catalog) GetDestination(p *catalogv1.Principal, id string) (*catalogv1.Destination, error) {
	if id == "" {
		return nil, invalid("destinationId", "REQUIRED", "is required")
	}
	e, ok := c.get(KindDestination, id)
	if !ok || e.msg.(*catalogv1.Destination).GetWorkspaceId() != p.GetWorkspaceId() {
		return nil, &NotFoundError{Kind: KindDestination, ID: id}
	}
	return c.destinationOut(e.msg.(*catalogv1.Destination), e.rev), nil
}

func (c *Catalog) destinationOut(d *catalogv1.Destination, rev uint64) *catalogv1.Destination {
	out := proto.Clone(d).(*catalogv1.Destination)
	c.viewOf(d.GetWorkspaceId(), d.GetSourceId()).fillDestination(out, rev)
	return out
}

// CreateDestination validates and stores a destination connected to a source.
func (c *Catalog) CreateDestination(ctx context.Context, p *catalogv1.Principal, req *catalogv1.CreateDestinationRequest) (*catalogv1.Destination, error) {
	if err := canWrite(p, "create destinations"); err != nil {
		return nil, err
	}
	name := strings.TrimSpace(req.GetName())
	if name == "" {
		return nil, invalid("name", "REQUIRED", "is required")
	}
	if req.GetType() == "" {
		return nil, invalid("type", "REQUIRED", "is required")
	}
	m := findMeta(destinationCatalog, req.GetType())
	if m == nil {
		return nil, unknownType("type", "destination", req.GetType(), destinationCatalog)
	}
	if req.GetSourceId() == "" {
		return nil, invalid("sourceId", "REQUIRED", "is required")
	}
	if _, err := c.GetSource(p, req.GetSourceId()); err != nil {
		if isNotFound(err) {
			return nil, invalid("sourceId", "SOURCE_NOT_FOUND", "source %q does not exist", req.GetSourceId())
		}
		return nil, err
	}
	settings := req.GetSettings()
	if settings == nil {
		settings = &structpb.Struct{Fields: map[string]*structpb.Value{}}
	}
	if err := validateSettings(m, settings, nil); err != nil {
		return nil, err
	}
	now := timestamppb.New(c.now())
	d := &catalogv1.Destination{
		Id:          NewID("dst"),
		WorkspaceId: p.GetWorkspaceId(),
		Name:        name,
		Type:        req.GetType(),
		Category:    m.Categories[0],
		SourceId:    req.GetSourceId(),
		Enabled:     req.Enabled == nil || req.GetEnabled(),
		Settings:    settings,
		CreatedAt:   now,
		CreatedBy:   p.GetUserId(),
		UpdatedAt:   now,
	}
	rev, err := c.createRev(ctx, KindDestination, d.Id, d)
	if err != nil {
		return nil, fmt.Errorf("store destination: %w", err)
	}
	c.record(ctx, p, "Destination Created", KindDestination, d.Id, d.Name, map[string]string{"type": d.Type, "sourceId": d.SourceId})
	c.refreshActivity(ctx, p.GetWorkspaceId(), d.SourceId)
	return c.destinationOut(d, rev), nil
}

// UpdateDestination applies a PATCH to a destination.
func (c *Catalog) UpdateDestination(ctx context.Context, p *catalogv1.Principal, req *catalogv1.UpdateDestinationRequest) (*catalogv1.Destination, error) {
	if err := canWrite(p, "change destinations"); err != nil {
		return nil, err
	}
	if req.Name != nil && strings.TrimSpace(req.GetName()) == "" {
		return nil, invalid("name", "REQUIRED", "must not be empty")
	}
	changed := map[string]string{}
	d, rev, err := mutate(ctx, c, KindDestination, p.GetWorkspaceId(), req.GetDestinationId(), req.GetRevision(), func(d *catalogv1.Destination) error {
		clear(changed)
		if req.Name != nil {
			d.Name = strings.TrimSpace(req.GetName())
			changed["name"] = d.Name
		}
		if req.Enabled != nil {
			d.Enabled = req.GetEnabled()
			changed["enabled"] = fmt.Sprint(d.Enabled)
		}
		if req.Settings != nil {
			d.Settings = mergeSettings(d.GetSettings(), req.GetSettings())
			if err := validateSettings(findMeta(destinationCatalog, d.GetType()), d.Settings, nil); err != nil {
				return err
			}
			keys := make([]string, 0, len(req.GetSettings().GetFields()))
			for k := range req.GetSettings().GetFields() {
				keys = append(keys, k)
			}
			changed["settings"] = strings.Join(keys, ",")
		}
		d.UpdatedAt = timestamppb.New(c.now())
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.record(ctx, p, "Destination Modified", KindDestination, d.GetId(), d.GetName(), changed)
	c.refreshActivity(ctx, p.GetWorkspaceId(), d.GetSourceId())
	return c.destinationOut(d, rev), nil
}

// DeleteDestination removes one of the principal's destinations.
func (c *Catalog) DeleteDestination(ctx context.Context, p *catalogv1.Principal, id string) error {
	if err := canWrite(p, "delete destinations"); err != nil {
		return err
	}
	return c.deleteDestination(ctx, p, id)
}

func (c *Catalog) deleteDestination(ctx context.Context, p *catalogv1.Principal, id string) error {
	if id == "" {
		return invalid("destinationId", "REQUIRED", "is required")
	}
	e, ok := c.get(KindDestination, id)
	if !ok || e.msg.(*catalogv1.Destination).GetWorkspaceId() != p.GetWorkspaceId() {
		return &NotFoundError{Kind: KindDestination, ID: id}
	}
	d := e.msg.(*catalogv1.Destination)
	if err := c.remove(ctx, KindDestination, id, e.rev); err != nil {
		return err
	}
	c.record(ctx, p, "Destination Deleted", KindDestination, id, d.GetName(), nil)
	c.refreshActivity(ctx, p.GetWorkspaceId(), d.GetSourceId())
	return nil
}
