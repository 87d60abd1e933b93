package catalog

import (
	"context"
	"fmt"
	"net/mail"
	"strings"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func userOut(u *catalogv1.User, rev uint64) *catalogv1.User {
	out := proto.Clone(u).(*catalogv1.User)
	out.Revision = rev
	return out
}

// Me returns the caller's user and token.
func (c *Catalog) Me(p *catalogv1.Principal) (*catalogv1.User, *catalogv1.ApiToken, error) {
	e, ok := c.get(KindUser, p.GetUserId())
	if !ok {
		return nil, nil, ErrUnauthenticated
	}
	tok := &catalogv1.ApiToken{Id: p.GetTokenId(), UserId: p.GetUserId(), Role: p.GetRole()}
	for _, t := range list(c, KindToken, func(t *catalogv1.Principal) bool { return t.GetTokenId() == p.GetTokenId() }) {
		tok = tokenOut(t)
		tok.Role = p.GetRole()
	}
	return userOut(e.msg.(*catalogv1.User), e.rev), tok, nil
}

// ListUsers returns a page of the workspace's users (any role may read).
func (c *Catalog) ListUsers(p *catalogv1.Principal, page Page) ([]*catalogv1.User, PageInfo, error) {
	var items []*catalogv1.User
	c.mu.RLock()
	for _, e := range c.entries[KindUser] {
		if u := e.msg.(*catalogv1.User); u.GetWorkspaceId() == p.GetWorkspaceId() {
			items = append(items, userOut(u, e.rev))
		}
	}
	c.mu.RUnlock()
	return pageByCreation(items, page, false)
}

func validRole(r catalogv1.Role, field string) error {
	if rank(r) == 0 {
		return invalid(field, "ROLE_INVALID", "must be ROLE_OWNER, ROLE_EDITOR or ROLE_VIEWER")
	}
	return nil
}

// CreateUser adds a user to the workspace (owners only).
func (c *Catalog) CreateUser(ctx context.Context, p *catalogv1.Principal, req *catalogv1.CreateUserRequest) (*catalogv1.User, error) {
	if err := mustOwn(p, "manage users"); err != nil {
		return nil, err
	}
	email := strings.TrimSpace(req.GetEmail())
	if email == "" {
		return nil, invalid("email", "REQUIRED", "is required")
	}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return nil, invalid("email", "EMAIL_FORMAT", "%q is not an email address", email)
	}
	if err := validRole(req.GetRole(), "role"); err != nil {
		return nil, err
	}
	for _, u := range list(c, KindUser, inWorkspace[*catalogv1.User](p.GetWorkspaceId())) {
		if strings.EqualFold(u.GetEmail(), email) {
			return nil, invalid("email", "EMAIL_TAKEN", "user %s already has this email", u.GetId())
		}
	}
	name := strings.TrimSpace(req.GetName())
	if name == "" {
		name = email
	}
	u := &catalogv1.User{Id: NewID("usr"), WorkspaceId: p.GetWorkspaceId(), Email: email, Name: name, Role: req.GetRole(), CreatedAt: timestamppb.New(c.now())}
	rev, err := c.createRev(ctx, KindUser, u.Id, u)
	if err != nil {
		return nil, fmt.Errorf("store user: %w", err)
	}
	c.record(ctx, p, "User Created", KindUser, u.Id, u.Email, map[string]string{"role": roleText(u.Role)})
	return userOut(u, rev), nil
}

func roleText(r catalogv1.Role) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_"))
}

func (c *Catalog) owners(ws string) []*catalogv1.User {
	return list(c, KindUser, func(u *catalogv1.User) bool {
		return u.GetWorkspaceId() == ws && u.GetRole() == catalogv1.Role_ROLE_OWNER
	})
}

// UpdateUser changes a user's name or role (owners only). The last owner
// cannot be demoted.
func (c *Catalog) UpdateUser(ctx context.Context, p *catalogv1.Principal, req *catalogv1.UpdateUserRequest) (*catalogv1.User, error) {
	if err := mustOwn(p, "manage users"); err != nil {
		return nil, err
	}
	if req.GetRole() != catalogv1.Role_ROLE_UNSPECIFIED {
		if err := validRole(req.GetRole(), "role"); err != nil {
			return nil, err
		}
	}
	owners := c.owners(p.GetWorkspaceId())
	u, rev, err := mutate(ctx, c, KindUser, p.GetWorkspaceId(), req.GetUserId(), req.GetRevision(), func(u *catalogv1.User) error {
		if req.Name != nil {
			u.Name = strings.TrimSpace(req.GetName())
		}
		if r := req.GetRole(); r != catalogv1.Role_ROLE_UNSPECIFIED {
			if u.Role == catalogv1.Role_ROLE_OWNER && r != u.Role && len(owners) <= 1 {
				return invalid("role", "LAST_OWNER", "the workspace's last owner cannot be demoted")
			}
			u.Role = r
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.record(ctx, p, "User Modified", KindUser, u.GetId(), u.GetEmail(), map[string]string{"role": roleText(u.GetRole())})
	return userOut(u, rev), nil
}

// DeleteUser removes a user and revokes their tokens (owners only).
func (c *Catalog) DeleteUser(ctx context.Context, p *catalogv1.Principal, id string) error {
	if err := mustOwn(p, "manage users"); err != nil {
		return err
	}
	if id == "" {
		return invalid("userId", "REQUIRED", "is required")
	}
	e, ok := c.get(KindUser, id)
	if !ok || e.msg.(*catalogv1.User).GetWorkspaceId() != p.GetWorkspaceId() {
		return &NotFoundError{Kind: KindUser, ID: id}
	}
	u := e.msg.(*catalogv1.User)
	if u.GetRole() == catalogv1.Role_ROLE_OWNER && len(c.owners(p.GetWorkspaceId())) <= 1 {
		return invalid("userId", "LAST_OWNER", "the workspace's last owner cannot be deleted")
	}
	if err := c.remove(ctx, KindUser, id, e.rev); err != nil {
		return err
	}
	for key, t := range c.tokensWhere(func(t *catalogv1.Principal) bool { return t.GetUserId() == id }) {
		if err := c.removeToken(ctx, key, t); err != nil {
			return err
		}
	}
	c.record(ctx, p, "User Deleted", KindUser, id, u.GetEmail(), nil)
	return nil
}

// tokensWhere returns the stored tokens (key: hash) that match keep.
func (c *Catalog) tokensWhere(keep func(*catalogv1.Principal) bool) map[string]*catalogv1.Principal {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := map[string]*catalogv1.Principal{}
	for k, e := range c.entries[KindToken] {
		if t := e.msg.(*catalogv1.Principal); keep(t) {
			out[k] = t
		}
	}
	return out
}

func (c *Catalog) removeToken(ctx context.Context, key string, _ *catalogv1.Principal) error {
	e, ok := c.get(KindToken, key)
	if !ok {
		return nil
	}
	return c.remove(ctx, KindToken, key, e.rev)
}

func tokenOut(t *catalogv1.Principal) *catalogv1.ApiToken {
	return &catalogv1.ApiToken{Id: t.GetTokenId(), Name: t.GetName(), UserId: t.GetUserId(), Role: t.GetRole(), CreatedAt: t.GetCreatedAt(), CreatedBy: t.GetCreatedBy(), Hint: t.GetHint()}
}

// ListTokens returns the workspace's tokens without secrets (owners only).
func (c *Catalog) ListTokens(p *catalogv1.Principal, page Page) ([]*catalogv1.ApiToken, PageInfo, error) {
	if err := mustOwn(p, "manage API tokens"); err != nil {
		return nil, PageInfo{}, err
	}
	var items []*catalogv1.ApiToken
	for _, t := range c.tokensWhere(func(t *catalogv1.Principal) bool { return t.GetWorkspaceId() == p.GetWorkspaceId() }) {
		items = append(items, tokenOut(t))
	}
	return pageByCreation(items, page, false)
}

// CreateToken creates an API token and returns its secret once (owners
// only). Only the secret's SHA-256 is stored.
func (c *Catalog) CreateToken(ctx context.Context, p *catalogv1.Principal, req *catalogv1.CreateTokenRequest) (*catalogv1.ApiToken, string, error) {
	if err := mustOwn(p, "manage API tokens"); err != nil {
		return nil, "", err
	}
	name := strings.TrimSpace(req.GetName())
	if name == "" {
		return nil, "", invalid("name", "REQUIRED", "is required")
	}
	userID := req.GetUserId()
	if userID == "" {
		userID = p.GetUserId()
	}
	e, ok := c.get(KindUser, userID)
	if !ok || e.msg.(*catalogv1.User).GetWorkspaceId() != p.GetWorkspaceId() {
		return nil, "", invalid("userId", "USER_NOT_FOUND", "user %q does not exist", userID)
	}
	u := e.msg.(*catalogv1.User)
	role := req.GetRole()
	if role == catalogv1.Role_ROLE_UNSPECIFIED {
		role = u.GetRole()
	}
	if err := validRole(role, "role"); err != nil {
		return nil, "", err
	}
	if rank(role) > rank(u.GetRole()) {
		return nil, "", invalid("role", "ROLE_ABOVE_USER", "a token's role cannot exceed its user's role (%s)", roleText(u.GetRole()))
	}
	secret := "sy_" + NewSecret(40)
	t := &catalogv1.Principal{
		WorkspaceId: p.GetWorkspaceId(), UserId: userID, Role: role, TokenId: NewID("tok"),
		Name: name, CreatedAt: timestamppb.New(c.now()), CreatedBy: p.GetUserId(), Hint: hint(secret),
	}
	if err := c.create(ctx, KindToken, TokenKey(secret), t); err != nil {
		return nil, "", fmt.Errorf("store token: %w", err)
	}
	c.record(ctx, p, "Access Token Created", "tokens", t.TokenId, name, map[string]string{"role": roleText(role), "userId": userID})
	return tokenOut(t), secret, nil
}

// DeleteToken revokes a token (owners only). Services that cache
// authentication (auth.CachingClient) stop accepting it within their TTL.
func (c *Catalog) DeleteToken(ctx context.Context, p *catalogv1.Principal, id string) error {
	if err := mustOwn(p, "manage API tokens"); err != nil {
		return err
	}
	if id == "" {
		return invalid("tokenId", "REQUIRED", "is required")
	}
	found := c.tokensWhere(func(t *catalogv1.Principal) bool {
		return t.GetTokenId() == id && t.GetWorkspaceId() == p.GetWorkspaceId()
	})
	if len(found) == 0 {
		return &NotFoundError{Kind: KindToken, ID: id}
	}
	for key, t := range found {
		if err := c.removeToken(ctx, key, t); err != nil {
			return err
		}
		c.record(ctx, p, "Access Token Deleted", "tokens", id, t.GetName(), nil)
	}
	return nil
}
