package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"github.com/switchyardhq/switchyard/services/catalog/app"
	"github.com/switchyardhq/switchyard/services/internal/platform/auth"
	"github.com/switchyardhq/switchyard/services/internal/platform/gateway"
	"github.com/switchyardhq/switchyard/services/internal/platform/grpcserver"
	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
)

// fakeClock is an injectable clock tests advance by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a Catalog served like in production: real embedded JetStream, the
// gRPC server with the auth hook, and the REST gateway calling it over gRPC.
type env struct {
	js     natsjs.JetStream
	svc    *app.Service
	clock  *fakeClock
	client catalogv1.CatalogServiceClient
	rest   *httptest.Server
	boot   *catalogv1.BootstrapWorkspaceResponse
	// owner is the bootstrap admin token.
	owner string
}

type envOptions struct {
	smtp      app.SMTP
	lifecycle app.Lifecycle
	js        natsjs.JetStream
}

func newEnv(t testing.TB, opts ...envOptions) *env {
	t.Helper()
	var o envOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.js == nil {
		_, conn := testenv.NATS(t)
		o.js = conn.JS
	}
	if o.lifecycle == (app.Lifecycle{}) {
		o.lifecycle.Off = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	clock := newClock()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := app.New(ctx, app.Params{Logger: logger, JS: o.js, Now: clock.Now, Lifecycle: o.lifecycle, SMTP: o.smtp})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cc, err := gateway.Dial(ctx, lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client := catalogv1.NewCatalogServiceClient(cc)
	g, _ := grpcserver.New(grpcserver.Options{Logger: logger, Auth: auth.Hook(&auth.CachingClient{Client: client})})
	svc.RegisterGRPC(g)
	mux := gateway.NewMux(logger)
	if err := svc.RegisterGateway(ctx, mux, cc); err != nil {
		t.Fatal(err)
	}
	rest := httptest.NewServer(mux)
	done := make(chan struct{}, 2)
	go func() { _ = g.Serve(lis); done <- struct{}{} }()
	go func() { _ = svc.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() {
		rest.Close()
		cancel()
		g.Stop()
		_ = cc.Close()
		<-done
		<-done
	})
	if err := svc.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	settings, _ := structpb.NewStruct(map[string]any{"path": "/tmp/never-opened.duckdb"})
	boot, err := client.BootstrapWorkspace(ctx, &catalogv1.BootstrapWorkspaceRequest{
		WorkspaceName: "Acme", OwnerEmail: "owner@acme.test", AdminToken: "owner-token-0123456789",
		WriteKey: "wk-bootstrap-0123", WarehouseType: catalogv1.WarehouseType_WAREHOUSE_TYPE_DUCKDB, WarehouseSettings: settings,
	})
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	return &env{js: o.js, svc: svc, clock: clock, client: client, rest: rest, boot: boot, owner: "owner-token-0123456789"}
}

// ctxAs returns a gRPC context authenticated with token.
func ctxAs(t testing.TB, token string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

// resp is one REST exchange.
type resp struct {
	status int
	body   []byte
}

// json decodes the body into a generic map.
func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return m
}

// do performs a REST call with token ("" = none).
func (e *env) do(t testing.TB, token, method, path string, body any, headers ...string) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.rest.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, body: raw}
}

// errBody is the REST error body.
type errBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Reason  string `json:"reason"`
	Field   string `json:"field"`
}

// wantError asserts a REST error's status, code, reason and field.
func wantError(t testing.TB, r resp, status int, code, reason, field string) errBody {
	t.Helper()
	var b errBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("error body %s: %v", r.body, err)
	}
	if r.status != status || b.Code != code || b.Reason != reason || b.Field != field {
		t.Fatalf("got %d %+v, want %d code=%s reason=%s field=%q", r.status, b, status, code, reason, field)
	}
	if b.Message == "" {
		t.Fatalf("error without message: %s", r.body)
	}
	return b
}

// mustOK asserts a 200 and decodes the body into v (when not nil).
func mustOK(t testing.TB, r resp, v any) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			t.Fatalf("decode %s: %v", r.body, err)
		}
	}
}

// tokenFor creates a user with role and returns a token of theirs.
func (e *env) tokenFor(t testing.TB, email string, role catalogv1.Role) (userID, token string) {
	t.Helper()
	ctx := ctxAs(t, e.owner)
	u, err := e.client.CreateUser(ctx, &catalogv1.CreateUserRequest{Email: email, Role: role})
	if err != nil {
		t.Fatalf("create user %s: %v", email, err)
	}
	tok, err := e.client.CreateToken(ctx, &catalogv1.CreateTokenRequest{Name: email, UserId: u.GetUser().GetId()})
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return u.GetUser().GetId(), tok.GetSecret()
}

// source is the part of a REST source the tests read.
type source struct {
	ID             string            `json:"id"`
	Name           string            `json:"name"`
	Slug           string            `json:"slug"`
	Type           string            `json:"type"`
	Category       string            `json:"category"`
	Environment    string            `json:"environment"`
	Enabled        bool              `json:"enabled"`
	Labels         map[string]string `json:"labels"`
	WriteKeys      []string          `json:"writeKeys"`
	Revision       string            `json:"revision"`
	CreatedBy      string            `json:"createdBy"`
	CreatedByEmail string            `json:"createdByEmail"`
	CreatedAt      string            `json:"createdAt"`
	Destinations   []struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Enabled bool   `json:"enabled"`
	} `json:"destinations"`
	LifecycleExempt bool   `json:"lifecycleExempt"`
	DisabledBy      string `json:"disabledBy"`
}

// createSource creates a source over REST and returns it.
func (e *env) createSource(t testing.TB, token string, body map[string]any) source {
	t.Helper()
	var out struct{ Source source }
	mustOK(t, e.do(t, token, http.MethodPost, "/api/v1/sources", body), &out)
	return out.Source
}

func (e *env) createWebhook(t testing.TB, token, name, sourceID string, enabled bool) string {
	t.Helper()
	var out struct {
		Destination struct{ ID string } `json:"destination"`
	}
	mustOK(t, e.do(t, token, http.MethodPost, "/api/v1/destinations", map[string]any{
		"name": name, "type": "webhook", "sourceId": sourceID, "enabled": enabled,
		"settings": map[string]any{"url": "https://hooks.example.test/" + strings.ReplaceAll(name, " ", "-")},
	}), &out)
	return out.Destination.ID
}
