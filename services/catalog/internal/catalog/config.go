package catalog

import catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"

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
