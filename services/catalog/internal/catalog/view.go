package catalog

import (
	"sort"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// wsView is a consistent read of one workspace's mirror: the pointers are
// shared with the mirror and must never be modified (the mirror replaces
// values, it never changes them in place).
type wsView struct {
	sources      map[string]entry
	destinations map[string]entry
	warehouses   map[string]entry
	emails       map[string]string
	// destsBySource and whsBySource index connections.
	destsBySource map[string][]*catalogv1.Destination
	whsBySource   map[string][]*catalogv1.Warehouse
}

func (c *Catalog) view(ws string) *wsView { return c.viewOf(ws, "") }

// viewOf reads the workspace, or only one source with its connections when
// sourceID is set (what a single-source response needs, in O(connections)
// rather than O(workspace) for the sources).
func (c *Catalog) viewOf(ws, sourceID string) *wsView {
	v := &wsView{
		sources:       map[string]entry{},
		destinations:  map[string]entry{},
		warehouses:    map[string]entry{},
		emails:        map[string]string{},
		destsBySource: map[string][]*catalogv1.Destination{},
		whsBySource:   map[string][]*catalogv1.Warehouse{},
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if sourceID != "" {
		if e, ok := c.entries[KindSource][sourceID]; ok && e.msg.(*catalogv1.Source).GetWorkspaceId() == ws {
			v.sources[sourceID] = e
		}
	} else {
		for k, e := range c.entries[KindSource] {
			if e.msg.(*catalogv1.Source).GetWorkspaceId() == ws {
				v.sources[k] = e
			}
		}
	}
	for k, e := range c.entries[KindDestination] {
		d := e.msg.(*catalogv1.Destination)
		if d.GetWorkspaceId() == ws {
			v.destinations[k] = e
			v.destsBySource[d.GetSourceId()] = append(v.destsBySource[d.GetSourceId()], d)
		}
	}
	for k, e := range c.entries[KindWarehouse] {
		w := e.msg.(*catalogv1.Warehouse)
		if w.GetWorkspaceId() == ws {
			v.warehouses[k] = e
			for _, s := range w.GetSourceIds() {
				v.whsBySource[s] = append(v.whsBySource[s], w)
			}
		}
	}
	for _, e := range c.entries[KindUser] {
		u := e.msg.(*catalogv1.User)
		if u.GetWorkspaceId() == ws {
			v.emails[u.GetId()] = u.GetEmail()
		}
	}
	for _, ds := range v.destsBySource {
		sort.Slice(ds, func(i, j int) bool { return ds[i].GetId() < ds[j].GetId() })
	}
	return v
}

// active tells whether a source has an enabled destination or an enabled
// warehouse (Segment counts warehouses as destinations).
func (v *wsView) active(sourceID string) bool {
	for _, d := range v.destsBySource[sourceID] {
		if d.GetEnabled() {
			return true
		}
	}
	for _, w := range v.whsBySource[sourceID] {
		if w.GetEnabled() {
			return true
		}
	}
	return false
}

// fillSource sets a (cloned) source's computed fields.
func (v *wsView) fillSource(s *catalogv1.Source, rev uint64, p *catalogv1.Principal) {
	s.Revision = rev
	s.CreatedByEmail = v.emails[s.GetCreatedBy()]
	s.Destinations = nil
	for _, d := range v.destsBySource[s.GetId()] {
		s.Destinations = append(s.Destinations, &catalogv1.ConnectedResource{Id: d.GetId(), Name: d.GetName(), Type: d.GetType(), Enabled: d.GetEnabled()})
	}
	s.WarehouseIds = nil
	for _, w := range v.whsBySource[s.GetId()] {
		s.WarehouseIds = append(s.WarehouseIds, w.GetId())
	}
	sort.Strings(s.WarehouseIds)
	if p != nil && !seesWriteKeys(p) {
		s.WriteKeys = []string{}
	}
}

// fillDestination sets a (cloned) destination's computed fields and masks its secrets.
func (v *wsView) fillDestination(d *catalogv1.Destination, rev uint64) {
	d.Revision = rev
	d.CreatedByEmail = v.emails[d.GetCreatedBy()]
	if e, ok := v.sources[d.GetSourceId()]; ok {
		s := e.msg.(*catalogv1.Source)
		d.Source = &catalogv1.ConnectedResource{Id: s.GetId(), Name: s.GetName(), Type: s.GetType(), Enabled: s.GetEnabled()}
	}
	if d.Settings != nil {
		maskSecrets(findMeta(destinationCatalog, d.GetType()), d.Settings)
	}
}

func ts(t *timestamppb.Timestamp) int64 { return t.AsTime().UnixNano() }
