package catalog

import (
	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/protobuf/proto"
)

// Resources live in one file per kind: sources.go, destinations.go,
// warehouses.go, users.go (users and tokens), views.go, requests.go,
// audit.go; the list-page query language is in query.go.

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
