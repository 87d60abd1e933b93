package auth

import (
	"context"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/grpc/codes"

	"github.com/switchyardhq/switchyard/services/internal/platform/status"
)

// roleRank orders roles: owner > editor > viewer; unknown roles rank 0.
func roleRank(r catalogv1.Role) int {
	switch r {
	case catalogv1.Role_ROLE_OWNER:
		return 3
	case catalogv1.Role_ROLE_EDITOR:
		return 2
	case catalogv1.Role_ROLE_VIEWER:
		return 1
	}
	return 0
}

// HasRole reports whether p's role is at least min.
func HasRole(p *catalogv1.Principal, min catalogv1.Role) bool {
	return p != nil && roleRank(p.GetRole()) >= roleRank(min) && roleRank(min) > 0
}

// RequireRole returns the call's principal when its role is at least min,
// Unauthenticated without a principal, and PermissionDenied
// (AUTH_PERMISSION_DENIED, the reason Catalog uses) otherwise. Services
// call it before any change: viewers may read, never write.
func RequireRole(ctx context.Context, min catalogv1.Role) (*catalogv1.Principal, error) {
	p, err := RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if !HasRole(p, min) {
		return nil, status.Error(codes.PermissionDenied, "AUTH_PERMISSION_DENIED", "the token's role does not allow this call", map[string]string{"needRole": min.String()})
	}
	return p, nil
}
