package catalog

import catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"

// rank orders roles: a higher rank may do more. Unknown roles rank 0.
func rank(r catalogv1.Role) int {
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

// canWrite allows owners and editors: viewers cannot change anything in the
// workspace's configuration.
func canWrite(p *catalogv1.Principal, action string) error {
	if rank(p.GetRole()) >= rank(catalogv1.Role_ROLE_EDITOR) {
		return nil
	}
	return &PermissionError{Need: "editor", Action: action}
}

// mustOwn allows owners only (users and tokens).
func mustOwn(p *catalogv1.Principal, action string) error {
	if p.GetRole() == catalogv1.Role_ROLE_OWNER {
		return nil
	}
	return &PermissionError{Need: "owner", Action: action}
}

// seesWriteKeys tells whether p may read write keys: owners and editors.
func seesWriteKeys(p *catalogv1.Principal) bool {
	return rank(p.GetRole()) >= rank(catalogv1.Role_ROLE_EDITOR)
}
