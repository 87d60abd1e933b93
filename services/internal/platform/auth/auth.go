// Package auth authenticates API calls with bearer tokens. Public RPCs (those
// with a google.api.http annotation, which grpc-gateway serves as REST) need a
// token; internal service-to-service RPCs, health and reflection do not.
package auth

import (
	"context"
	"crypto/sha256"
	"strings"
	"sync"
	"time"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/switchyardhq/switchyard/services/internal/platform/status"
)

// Authenticator resolves a bearer token to its principal.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*catalogv1.Principal, error)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *catalogv1.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the authenticated principal of a call.
func PrincipalFrom(ctx context.Context) (*catalogv1.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*catalogv1.Principal)
	return p, ok
}

// RequirePrincipal returns the call's principal or an Unauthenticated error.
func RequirePrincipal(ctx context.Context) (*catalogv1.Principal, error) {
	if p, ok := PrincipalFrom(ctx); ok {
		return p, nil
	}
	return nil, errUnauthenticated("missing bearer token")
}

func errUnauthenticated(msg string) error {
	return status.Error(codes.Unauthenticated, "AUTH_UNAUTHENTICATED", msg, nil)
}

var publicCache sync.Map // full method → bool

// IsPublic reports whether a gRPC method carries a google.api.http annotation.
func IsPublic(fullMethod string) bool {
	if v, ok := publicCache.Load(fullMethod); ok {
		return v.(bool)
	}
	name := strings.ReplaceAll(strings.TrimPrefix(fullMethod, "/"), "/", ".")
	public := false
	if d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name)); err == nil {
		if md, ok := d.(protoreflect.MethodDescriptor); ok && md.Options() != nil {
			public = proto.HasExtension(md.Options(), annotations.E_Http)
		}
	}
	publicCache.Store(fullMethod, public)
	return public
}

// Hook returns a grpcserver auth hook: public methods need a valid
// `authorization: Bearer <token>` and get its principal in their context.
func Hook(a Authenticator) func(ctx context.Context, fullMethod string) (context.Context, error) {
	return func(ctx context.Context, fullMethod string) (context.Context, error) {
		if !IsPublic(fullMethod) {
			return ctx, nil
		}
		md, _ := metadata.FromIncomingContext(ctx)
		vals := md.Get("authorization")
		if len(vals) == 0 {
			return nil, errUnauthenticated("missing bearer token: send Authorization: Bearer <token>")
		}
		scheme, token, ok := strings.Cut(vals[0], " ")
		if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(token) == "" {
			return nil, errUnauthenticated("malformed Authorization header: expected Bearer <token>")
		}
		p, err := a.Authenticate(ctx, strings.TrimSpace(token))
		if err != nil {
			return nil, err
		}
		return WithPrincipal(ctx, p), nil
	}
}

// CachingClient authenticates through Catalog's AuthenticateToken RPC and
// remembers answers (positive and negative) for TTL, so a burst of REST calls
// costs one Catalog call. A revoked token stops working within TTL.
type CachingClient struct {
	Client catalogv1.CatalogServiceClient
	TTL    time.Duration

	mu    sync.Mutex
	cache map[[32]byte]cached
}

type cached struct {
	p       *catalogv1.Principal
	err     error
	expires time.Time
}

// Authenticate implements Authenticator.
func (c *CachingClient) Authenticate(ctx context.Context, token string) (*catalogv1.Principal, error) {
	key := sha256.Sum256([]byte(token))
	now := time.Now()
	c.mu.Lock()
	if c.cache == nil {
		c.cache = make(map[[32]byte]cached)
	}
	if e, ok := c.cache[key]; ok && now.Before(e.expires) {
		c.mu.Unlock()
		return e.p, e.err
	}
	c.mu.Unlock()
	resp, err := c.Client.AuthenticateToken(ctx, &catalogv1.AuthenticateTokenRequest{Token: token})
	if err != nil {
		if grpcstatus.Code(err) == codes.Unauthenticated {
			err = errUnauthenticated("unknown or revoked token")
		} else {
			return nil, err // transient: not cached
		}
	}
	c.mu.Lock()
	if len(c.cache) > 10000 {
		clear(c.cache)
	}
	c.cache[key] = cached{p: resp.GetPrincipal(), err: err, expires: now.Add(c.TTL)}
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return resp.GetPrincipal(), nil
}
