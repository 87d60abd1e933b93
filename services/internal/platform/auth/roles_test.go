package auth

import (
	"context"
	"testing"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
)

func TestRequireRole(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		role catalogv1.Role
		min  catalogv1.Role
		want codes.Code
	}{
		{"owner may edit", catalogv1.Role_ROLE_OWNER, catalogv1.Role_ROLE_EDITOR, codes.OK},
		{"editor may edit", catalogv1.Role_ROLE_EDITOR, catalogv1.Role_ROLE_EDITOR, codes.OK},
		{"viewer may not edit", catalogv1.Role_ROLE_VIEWER, catalogv1.Role_ROLE_EDITOR, codes.PermissionDenied},
		{"viewer may read", catalogv1.Role_ROLE_VIEWER, catalogv1.Role_ROLE_VIEWER, codes.OK},
		{"editor may not own", catalogv1.Role_ROLE_EDITOR, catalogv1.Role_ROLE_OWNER, codes.PermissionDenied},
		{"unspecified role may do nothing", catalogv1.Role_ROLE_UNSPECIFIED, catalogv1.Role_ROLE_VIEWER, codes.PermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := WithPrincipal(context.Background(), &catalogv1.Principal{Role: tc.role})
			_, err := RequireRole(ctx, tc.min)
			if got := grpcstatus.Code(err); got != tc.want {
				t.Fatalf("code = %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := RequireRole(context.Background(), catalogv1.Role_ROLE_VIEWER); grpcstatus.Code(err) != codes.Unauthenticated {
		t.Fatalf("without principal: %v", err)
	}
}
