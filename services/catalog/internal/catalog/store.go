package catalog

import (
	"context"
	"strings"
)

// Kind is a resource kind; each kind is stored in its own bucket.
type Kind string

// The resource kinds the catalog stores.
const (
	KindWorkspace   Kind = "workspaces"
	KindUser        Kind = "users"
	KindToken       Kind = "tokens"
	KindSource      Kind = "sources"
	KindDestination Kind = "destinations"
	KindWarehouse   Kind = "warehouses"
	// KindAudit holds the audit trail; keys sort by time.
	KindAudit Kind = "audit_events"
	// KindView holds saved list-page views; key: <userId>.<page>.
	KindView Kind = "views"
	// KindIntegrationRequest holds requests for missing integrations.
	KindIntegrationRequest Kind = "integration_requests"
)

// Kinds lists every kind, in the order a consistent snapshot is loaded.
var Kinds = []Kind{KindWorkspace, KindUser, KindToken, KindSource, KindDestination, KindWarehouse, KindAudit, KindView, KindIntegrationRequest}

// configKinds are the kinds of the data-plane configuration: a change to one
// of them produces a new WatchConfig snapshot.
var configKinds = map[Kind]bool{KindWorkspace: true, KindSource: true, KindDestination: true, KindWarehouse: true}

func (k Kind) singular() string { return strings.TrimSuffix(string(k), "s") }

// Change is one stored value as seen by a watcher.
type Change struct {
	Kind     Kind
	Key      string
	Revision uint64
	Value    []byte
	Deleted  bool
}

// Store is the durable, revisioned storage under the catalog. Every write is
// a compare-and-set: Create fails with ErrConflict when the key exists, Update
// and Delete fail with ErrConflict when the stored revision is not rev.
type Store interface {
	Create(ctx context.Context, kind Kind, key string, value []byte) (uint64, error)
	Update(ctx context.Context, kind Kind, key string, value []byte, rev uint64) (uint64, error)
	Delete(ctx context.Context, kind Kind, key string, rev uint64) error
	// Get returns the stored value and revision of key, or an error
	// matching ErrNotFound.
	Get(ctx context.Context, kind Kind, key string) ([]byte, uint64, error)
	// Watch calls apply for every stored value, then calls ready once, then
	// calls apply for every later change, until ctx is done. apply and ready
	// are called from one goroutine.
	Watch(ctx context.Context, apply func(Change), ready func()) error
}
