package server

import (
	"io"
	"log/slog"
	"testing"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	deliveryv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/delivery/v1"
	"github.com/switchyardhq/switchyard/services/delivery/internal/dispatch"
	"github.com/switchyardhq/switchyard/services/delivery/internal/metrics"
	"github.com/switchyardhq/switchyard/services/delivery/internal/store"
	"github.com/switchyardhq/switchyard/services/internal/platform/auth"
	"github.com/switchyardhq/switchyard/services/internal/platform/status"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"github.com/switchyardhq/switchyard/services/internal/platform/testenv"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
)

type snaps []*catalogv1.ConfigSnapshot

func (s snaps) Snapshots() []*catalogv1.ConfigSnapshot { return s }

func TestFilterAndSubscriptionSaves(t *testing.T) {
	t.Parallel()
	_, conn := testenv.NATS(t)
	if err := streams.EnsureDelivery(t.Context(), conn.JS, streams.DefaultOptions); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), conn.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := snaps{{Destinations: []*catalogv1.Destination{{Id: "d-1", WorkspaceId: "ws", Type: "webhook", Enabled: true}}}}
	s := &Server{JS: conn.JS, Config: cfg, Store: func() *store.Store { return st },
		Dispatcher: dispatch.New(conn.JS, metrics.New(nil), slog.New(slog.NewTextHandler(io.Discard, nil)), dispatch.Options{})}
	editor := auth.WithPrincipal(t.Context(), &catalogv1.Principal{WorkspaceId: "ws", Role: catalogv1.Role_ROLE_EDITOR})
	viewer := auth.WithPrincipal(t.Context(), &catalogv1.Principal{WorkspaceId: "ws", Role: catalogv1.Role_ROLE_VIEWER})
	filterWith := func(expr string) []*deliveryv1.DestinationFilter {
		return []*deliveryv1.DestinationFilter{{Title: "t", If: expr, Enabled: true, Actions: []*deliveryv1.FilterAction{{Type: "DROP"}}}}
	}
	for _, tc := range []struct {
		name   string
		call   func() error
		code   codes.Code
		reason string
	}{
		{"invalid FQL is refused at save time", func() error {
			_, err := s.SetDestinationFilters(editor, &deliveryv1.SetDestinationFiltersRequest{DestinationId: "d-1", Filters: filterWith("type = ")})
			return err
		}, codes.InvalidArgument, "FQL_INVALID"},
		{"viewers cannot save", func() error {
			_, err := s.SetDestinationFilters(viewer, &deliveryv1.SetDestinationFiltersRequest{DestinationId: "d-1", Filters: filterWith("all")})
			return err
		}, codes.PermissionDenied, status.ReasonPermissionDenied},
		{"another workspace's destination is not found", func() error {
			other := auth.WithPrincipal(t.Context(), &catalogv1.Principal{WorkspaceId: "other", Role: catalogv1.Role_ROLE_OWNER})
			_, err := s.SetDestinationFilters(other, &deliveryv1.SetDestinationFiltersRequest{DestinationId: "d-1", Filters: filterWith("all")})
			return err
		}, codes.NotFound, "DELIVERY_DESTINATION_NOT_FOUND"},
		{"a subscription to an unknown action is refused", func() error {
			_, err := s.SetDestinationSubscriptions(editor, &deliveryv1.SetDestinationSubscriptionsRequest{DestinationId: "d-1",
				Subscriptions: []*deliveryv1.Subscription{{Action: "explode", Trigger: "all", Enabled: true}}})
			return err
		}, codes.InvalidArgument, "ACTION_UNKNOWN"},
		{"a subscription with an invalid trigger is refused", func() error {
			_, err := s.SetDestinationSubscriptions(editor, &deliveryv1.SetDestinationSubscriptionsRequest{DestinationId: "d-1",
				Subscriptions: []*deliveryv1.Subscription{{Action: "send", Trigger: "type = 'a' and", Enabled: true}}})
			return err
		}, codes.InvalidArgument, "FQL_INVALID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if grpcstatus.Code(err) != tc.code || status.Reason(err) != tc.reason {
				t.Errorf("error = %v (reason %q), want %v %s", err, status.Reason(err), tc.code, tc.reason)
			}
		})
	}
	t.Run("a valid filter is saved, normalised and read back", func(t *testing.T) {
		if _, err := s.SetDestinationFilters(editor, &deliveryv1.SetDestinationFiltersRequest{DestinationId: "d-1", Filters: filterWith("length(userId) < 1")}); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetDestinationFilters(editor, &deliveryv1.GetDestinationFiltersRequest{DestinationId: "d-1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.GetFilters()) != 1 || got.GetFilters()[0].GetIf() != "length(userId) < 1" || got.GetFilters()[0].GetId() != "f1" || got.GetFilters()[0].GetActions()[0].GetType() != "drop" {
			t.Errorf("filters = %v", got.GetFilters())
		}
		if c := st.Get("d-1"); len(c.Filters) != 1 {
			t.Errorf("store copy = %+v, want the filter (the dispatcher reads it)", c)
		}
	})
	t.Run("destination types list every type with settings and actions", func(t *testing.T) {
		got, err := s.ListDestinationTypes(editor, &deliveryv1.ListDestinationTypesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(got.GetDestinationTypes()); n != 7 {
			t.Errorf("%d types, want 7", n)
		}
	})
}
