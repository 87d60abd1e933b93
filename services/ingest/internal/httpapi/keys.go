package httpapi

import (
	"sync/atomic"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
)

// SourceRef is what a write key resolves to.
type SourceRef struct {
	WorkspaceID string
	SourceID    string
	Enabled     bool
}

// Keys maps write keys to sources. It is rebuilt from each configuration
// snapshot and swapped atomically, so lookups take no lock and make no call.
// Until the first Update it is not loaded: no key can be judged, so the
// APIs answer "retry" (503, gRPC Unavailable) rather than "unknown key".
type Keys struct {
	m atomic.Pointer[map[string]SourceRef]
}

// Update rebuilds the map from snaps and marks it loaded (also when snaps
// is empty: a configuration without sources is a configuration).
func (k *Keys) Update(snaps []*catalogv1.ConfigSnapshot) {
	m := make(map[string]SourceRef)
	for _, s := range snaps {
		for _, src := range s.GetSources() {
			for _, wk := range src.GetWriteKeys() {
				m[wk] = SourceRef{WorkspaceID: src.GetWorkspaceId(), SourceID: src.GetId(), Enabled: src.GetEnabled()}
			}
		}
	}
	k.m.Store(&m)
}

// Loaded reports whether the map received its first configuration.
func (k *Keys) Loaded() bool { return k.m.Load() != nil }

// Lookup resolves a write key.
func (k *Keys) Lookup(writeKey string) (SourceRef, bool) {
	p := k.m.Load()
	if p == nil || writeKey == "" {
		return SourceRef{}, false
	}
	ref, ok := (*p)[writeKey]
	return ref, ok
}
