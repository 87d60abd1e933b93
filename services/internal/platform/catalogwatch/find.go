package catalogwatch

import catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"

// FindSource returns the source id of workspace ws in snaps, or nil: the
// check every data-plane API makes before answering about a resource
// (another workspace's resource is "not found").
func FindSource(snaps []*catalogv1.ConfigSnapshot, ws, id string) *catalogv1.Source {
	for _, s := range snaps {
		for _, r := range s.GetSources() {
			if r.GetId() == id && r.GetWorkspaceId() == ws {
				return r
			}
		}
	}
	return nil
}

// FindDestination returns the destination id of workspace ws, or nil.
func FindDestination(snaps []*catalogv1.ConfigSnapshot, ws, id string) *catalogv1.Destination {
	for _, s := range snaps {
		for _, r := range s.GetDestinations() {
			if r.GetId() == id && r.GetWorkspaceId() == ws {
				return r
			}
		}
	}
	return nil
}

// FindWarehouse returns the warehouse id of workspace ws, or nil.
func FindWarehouse(snaps []*catalogv1.ConfigSnapshot, ws, id string) *catalogv1.Warehouse {
	for _, s := range snaps {
		for _, r := range s.GetWarehouses() {
			if r.GetId() == id && r.GetWorkspaceId() == ws {
				return r
			}
		}
	}
	return nil
}
