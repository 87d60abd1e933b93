package catalogwatch

import (
	"testing"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
)

func TestFind(t *testing.T) {
	t.Parallel()
	snaps := []*catalogv1.ConfigSnapshot{
		{Sources: []*catalogv1.Source{{Id: "src", WorkspaceId: "ws1"}}, Destinations: []*catalogv1.Destination{{Id: "dst", WorkspaceId: "ws1"}}, Warehouses: []*catalogv1.Warehouse{{Id: "wh", WorkspaceId: "ws1"}}},
		{Sources: []*catalogv1.Source{{Id: "src2", WorkspaceId: "ws2"}}},
	}
	if FindSource(snaps, "ws1", "src") == nil || FindSource(snaps, "ws2", "src2") == nil {
		t.Error("own sources not found")
	}
	if FindSource(snaps, "ws2", "src") != nil || FindDestination(snaps, "ws2", "dst") != nil || FindWarehouse(snaps, "ws2", "wh") != nil {
		t.Error("another workspace's resource was found")
	}
	if FindDestination(snaps, "ws1", "dst") == nil || FindWarehouse(snaps, "ws1", "wh") == nil || FindWarehouse(snaps, "ws1", "nope") != nil {
		t.Error("destination/warehouse lookup wrong")
	}
}
