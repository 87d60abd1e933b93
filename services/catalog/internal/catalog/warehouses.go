package catalog

import (
	"context"
	"fmt"
	"slices"
	"strings"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func warehouseOut(w *catalogv1.Warehouse, rev uint64) *catalogv1.Warehouse {
	out := proto.Clone(w).(*catalogv1.Warehouse)
	out.Revision = rev
	if out.Settings != nil {
		maskSecrets(findMeta(warehouseCatalog, warehouseSlug(out.GetType())), out.Settings)
	}
	return out
}

// ListWarehouses returns a page of the principal's warehouses (oldest first),
// secret settings masked.
func (c *Catalog) ListWarehouses(p *catalogv1.Principal, page Page) ([]*catalogv1.Warehouse, PageInfo, error) {
	v := c.view(p.GetWorkspaceId())
	items := make([]*catalogv1.Warehouse, 0, len(v.warehouses))
	for _, e := range v.warehouses {
		items = append(items, warehouseOut(e.msg.(*catalogv1.Warehouse), e.rev))
	}
	return pageByCreation(items, page, false)
}

// GetWarehouse returns one of the principal's warehouses.
func (c *Catalog) GetWarehouse(p *catalogv1.Principal, id string) (*catalogv1.Warehouse, error) {
	if id == "" {
		return nil, invalid("warehouseId", "REQUIRED", "is required")
	}
	e, ok := c.get(KindWarehouse, id)
	if !ok || e.msg.(*catalogv1.Warehouse).GetWorkspaceId() != p.GetWorkspaceId() {
		return nil, &NotFoundError{Kind: KindWarehouse, ID: id}
	}
	return warehouseOut(e.msg.(*catalogv1.Warehouse), e.rev), nil
}

func (c *Catalog) checkSources(p *catalogv1.Principal, field string, ids []string) error {
	for i, id := range ids {
		e, ok := c.get(KindSource, id)
		if !ok || e.msg.(*catalogv1.Source).GetWorkspaceId() != p.GetWorkspaceId() {
			return invalid(fmt.Sprintf("%s[%d]", field, i), "SOURCE_NOT_FOUND", "source %q does not exist", id)
		}
	}
	return nil
}

// CreateWarehouse validates and stores a warehouse.
func (c *Catalog) CreateWarehouse(ctx context.Context, p *catalogv1.Principal, req *catalogv1.CreateWarehouseRequest) (*catalogv1.Warehouse, error) {
	if err := canWrite(p, "create warehouses"); err != nil {
		return nil, err
	}
	name := strings.TrimSpace(req.GetName())
	if name == "" {
		return nil, invalid("name", "REQUIRED", "is required")
	}
	m := findMeta(warehouseCatalog, warehouseSlug(req.GetType()))
	if m == nil {
		return nil, invalid("type", "WAREHOUSE_TYPE_UNKNOWN", "must be WAREHOUSE_TYPE_DUCKDB or WAREHOUSE_TYPE_POSTGRES")
	}
	settings := withoutUnset(m, req.GetSettings())
	if err := validateWarehouseSettings(m, settings); err != nil {
		return nil, err
	}
	ids := slices.Compact(slices.Sorted(slices.Values(req.GetSourceIds())))
	if err := c.checkSources(p, "sourceIds", ids); err != nil {
		return nil, err
	}
	now := timestamppb.New(c.now())
	w := &catalogv1.Warehouse{
		Id:          NewID("wh"),
		WorkspaceId: p.GetWorkspaceId(),
		Name:        name,
		Type:        req.GetType(),
		Settings:    settings,
		SourceIds:   ids,
		Enabled:     req.Enabled == nil || req.GetEnabled(),
		CreatedAt:   now,
		CreatedBy:   p.GetUserId(),
		UpdatedAt:   now,
	}
	rev, err := c.createRev(ctx, KindWarehouse, w.Id, w)
	if err != nil {
		return nil, fmt.Errorf("store warehouse: %w", err)
	}
	c.record(ctx, p, "Warehouse Created", KindWarehouse, w.Id, w.Name, map[string]string{"type": m.Slug})
	c.refreshActivity(ctx, p.GetWorkspaceId(), ids...)
	return warehouseOut(w, rev), nil
}

// UpdateWarehouse applies a PATCH to a warehouse.
func (c *Catalog) UpdateWarehouse(ctx context.Context, p *catalogv1.Principal, req *catalogv1.UpdateWarehouseRequest) (*catalogv1.Warehouse, error) {
	if err := canWrite(p, "change warehouses"); err != nil {
		return nil, err
	}
	if req.Name != nil && strings.TrimSpace(req.GetName()) == "" {
		return nil, invalid("name", "REQUIRED", "must not be empty")
	}
	changed := map[string]string{}
	w, rev, err := mutate(ctx, c, KindWarehouse, p.GetWorkspaceId(), req.GetWarehouseId(), req.GetRevision(), func(w *catalogv1.Warehouse) error {
		clear(changed)
		if req.Name != nil {
			w.Name = strings.TrimSpace(req.GetName())
			changed["name"] = w.Name
		}
		if req.Enabled != nil {
			w.Enabled = req.GetEnabled()
			changed["enabled"] = fmt.Sprint(w.Enabled)
		}
		if req.Settings != nil {
			m := findMeta(warehouseCatalog, warehouseSlug(w.GetType()))
			if m == nil {
				return invalid("type", "WAREHOUSE_TYPE_UNKNOWN", "the stored warehouse has no known type (%s), so its settings cannot be checked", w.GetType())
			}
			w.Settings = withoutUnset(m, mergeSettings(w.GetSettings(), req.GetSettings()))
			// The merged settings are checked as a whole: a patch of schedule alone
			// needs the stored interval_seconds.
			if err := validateWarehouseSettings(m, w.Settings); err != nil {
				return err
			}
			changed["settings"] = "changed"
		}
		w.UpdatedAt = timestamppb.New(c.now())
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.record(ctx, p, "Warehouse Modified", KindWarehouse, w.GetId(), w.GetName(), changed)
	c.refreshActivity(ctx, p.GetWorkspaceId(), w.GetSourceIds()...)
	return warehouseOut(w, rev), nil
}

// DeleteWarehouse removes a warehouse.
func (c *Catalog) DeleteWarehouse(ctx context.Context, p *catalogv1.Principal, id string) error {
	if err := canWrite(p, "delete warehouses"); err != nil {
		return err
	}
	w, err := c.GetWarehouse(p, id)
	if err != nil {
		return err
	}
	if err := c.remove(ctx, KindWarehouse, id, w.GetRevision()); err != nil {
		return err
	}
	c.record(ctx, p, "Warehouse Deleted", KindWarehouse, id, w.GetName(), nil)
	c.refreshActivity(ctx, p.GetWorkspaceId(), w.GetSourceIds()...)
	return nil
}

// ConnectWarehouseSource connects a source to a warehouse (idempotent).
func (c *Catalog) ConnectWarehouseSource(ctx context.Context, p *catalogv1.Principal, whID, srcID string) (*catalogv1.Warehouse, error) {
	if err := canWrite(p, "connect warehouses"); err != nil {
		return nil, err
	}
	if err := c.checkSources(p, "sourceId", []string{srcID}); err != nil {
		return nil, &NotFoundError{Kind: KindSource, ID: srcID}
	}
	w, rev, err := mutate(ctx, c, KindWarehouse, p.GetWorkspaceId(), whID, 0, func(w *catalogv1.Warehouse) error {
		if !slices.Contains(w.SourceIds, srcID) {
			w.SourceIds = append(w.SourceIds, srcID)
			slices.Sort(w.SourceIds)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.record(ctx, p, "Warehouse Source Connected", KindWarehouse, w.GetId(), w.GetName(), map[string]string{"sourceId": srcID})
	c.refreshActivity(ctx, p.GetWorkspaceId(), srcID)
	return warehouseOut(w, rev), nil
}

// DisconnectWarehouseSource disconnects a source from a warehouse.
func (c *Catalog) DisconnectWarehouseSource(ctx context.Context, p *catalogv1.Principal, whID, srcID string) (*catalogv1.Warehouse, error) {
	if err := canWrite(p, "connect warehouses"); err != nil {
		return nil, err
	}
	if srcID == "" {
		return nil, invalid("sourceId", "REQUIRED", "is required")
	}
	w, rev, err := mutate(ctx, c, KindWarehouse, p.GetWorkspaceId(), whID, 0, func(w *catalogv1.Warehouse) error {
		i := slices.Index(w.SourceIds, srcID)
		if i < 0 {
			return &NotFoundError{Kind: KindSource, ID: srcID}
		}
		w.SourceIds = slices.Delete(w.SourceIds, i, i+1)
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.record(ctx, p, "Warehouse Source Disconnected", KindWarehouse, w.GetId(), w.GetName(), map[string]string{"sourceId": srcID})
	c.refreshActivity(ctx, p.GetWorkspaceId(), srcID)
	return warehouseOut(w, rev), nil
}
