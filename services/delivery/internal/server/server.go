// Package server implements the gRPC DeliveryService: proto ⇄ domain, and
// the one place Delivery errors become statuses (toStatus).
package server

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/switchyardhq/switchyard/services/internal/platform/catalogwatch"
	"strconv"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	deliveryv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/delivery/v1"
	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations"
	"github.com/switchyardhq/switchyard/services/delivery/internal/dispatch"
	"github.com/switchyardhq/switchyard/services/delivery/internal/dlq"
	"github.com/switchyardhq/switchyard/services/delivery/internal/filter"
	"github.com/switchyardhq/switchyard/services/delivery/internal/metrics"
	"github.com/switchyardhq/switchyard/services/delivery/internal/pipeline"
	"github.com/switchyardhq/switchyard/services/delivery/internal/store"
	"github.com/switchyardhq/switchyard/services/internal/platform/auth"
	"github.com/switchyardhq/switchyard/services/internal/platform/status"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Snapshotter returns the current Catalog configuration.
type Snapshotter interface {
	Snapshots() []*catalogv1.ConfigSnapshot
}

// Server implements deliveryv1.DeliveryServiceServer.
type Server struct {
	deliveryv1.UnimplementedDeliveryServiceServer
	// JS is the JetStream API.
	JS natsjs.JetStream
	// Dispatcher runs the destinations.
	Dispatcher *dispatch.Dispatcher
	// Config is Catalog's configuration.
	Config Snapshotter
	// Store returns Delivery's own configuration store (nil until ready).
	Store func() *store.Store
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// errUnavailable is returned before Delivery's streams and bucket exist.
var errUnavailable = status.Error(codes.Unavailable, "DELIVERY_NOT_READY", "delivery is starting", nil)

// destination returns the caller's destination id, or NotFound.
func (s *Server) destination(ctx context.Context, id string, write bool) (*catalogv1.Destination, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if write && p.GetRole() == catalogv1.Role_ROLE_VIEWER {
		return nil, status.Error(codes.PermissionDenied, status.ReasonPermissionDenied, "editor role required to change delivery configuration", nil)
	}
	if d := catalogwatch.FindDestination(s.Config.Snapshots(), p.GetWorkspaceId(), id); d != nil {
		return d, nil
	}
	return nil, status.Error(codes.NotFound, "DELIVERY_DESTINATION_NOT_FOUND", "destination "+id+" not found", nil)
}

// toStatus is Delivery's one error-to-status conversion point.
func toStatus(err error) error {
	var fe *filter.FieldError
	var se *destinations.SettingsError
	var ut pipeline.ErrUnknownType
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return status.InvalidField(fe.Reason, fe.Field, fe.Error())
	case errors.As(err, &se):
		return status.InvalidField(se.Reason, se.Field, se.Error())
	case errors.As(err, &ut):
		return status.InvalidField("DESTINATION_TYPE_UNKNOWN", "type", ut.Error())
	case errors.Is(err, dlq.ErrNotFound):
		return status.Error(codes.NotFound, "DELIVERY_DEAD_LETTER_NOT_FOUND", err.Error(), nil)
	case errors.Is(err, store.ErrConflict):
		return status.Error(codes.Aborted, "DELIVERY_CONFIG_CONFLICT", err.Error(), nil)
	}
	return err // Internal, logged by the platform interceptor
}

// GetDeliveryStatus implements the RPC.
func (s *Server) GetDeliveryStatus(ctx context.Context, req *deliveryv1.GetDeliveryStatusRequest) (*deliveryv1.GetDeliveryStatusResponse, error) {
	if _, err := s.destination(ctx, req.GetDestinationId(), false); err != nil {
		return nil, err
	}
	resp := &deliveryv1.GetDeliveryStatusResponse{DestinationId: req.GetDestinationId()}
	running, werr := s.Dispatcher.State(req.GetDestinationId())
	resp.Running = running
	if werr != nil {
		resp.Error = werr.Error()
	}
	tot := s.Dispatcher.Metrics().Total(req.GetDestinationId())
	resp.Delivered, resp.FailedAttempts = tot.Delivered, tot.Retried
	for _, c := range []struct{ stream, name string }{
		{streams.Events, dispatch.ConsumerName(req.GetDestinationId())},
		{streams.Replay, dispatch.ReplayConsumerName(req.GetDestinationId())},
		{streams.RETL, dispatch.RecordConsumerName(req.GetDestinationId())},
	} {
		cons, err := s.JS.Consumer(ctx, c.stream, c.name)
		if errors.Is(err, natsjs.ErrConsumerNotFound) || errors.Is(err, natsjs.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return nil, err
		}
		resp.Pending += info.NumPending + uint64(info.NumAckPending)
	}
	return resp, nil
}

// apiSettingType is a setting's type in the API's vocabulary (string,
// secret, url, number, boolean, object): a secret string or URL is
// "secret", a map "object", a select "string".
func apiSettingType(st destinations.Setting) string {
	switch {
	case st.Secret && (st.Type == destinations.SettingString || st.Type == destinations.SettingURL):
		return "secret"
	case st.Type == destinations.SettingMap:
		return "object"
	case st.Type == destinations.SettingSelect:
		return destinations.SettingString
	}
	return st.Type
}

// ListDestinationTypes implements the RPC.
func (s *Server) ListDestinationTypes(ctx context.Context, _ *deliveryv1.ListDestinationTypesRequest) (*deliveryv1.ListDestinationTypesResponse, error) {
	if _, err := auth.RequirePrincipal(ctx); err != nil {
		return nil, err
	}
	resp := &deliveryv1.ListDestinationTypesResponse{}
	for _, t := range destinations.All() {
		dt := &deliveryv1.DestinationType{Slug: t.Slug, Name: t.Name, Category: t.Category, Description: t.Description, SupportedEvents: t.SupportedEvents}
		for _, st := range t.Settings {
			ps := &deliveryv1.Setting{Name: st.Name, Type: apiSettingType(st), Required: st.Required, Description: st.Description}
			if st.Default != nil {
				ps.DefaultValue, _ = structpb.NewValue(st.Default)
			}
			dt.Settings = append(dt.Settings, ps)
		}
		for _, a := range t.Actions {
			dt.Actions = append(dt.Actions, &deliveryv1.Action{Name: a.Name, Description: a.Description, DefaultTrigger: a.DefaultTrigger})
		}
		resp.DestinationTypes = append(resp.DestinationTypes, dt)
	}
	return resp, nil
}

// GetDestinationFilters implements the RPC.
func (s *Server) GetDestinationFilters(ctx context.Context, req *deliveryv1.GetDestinationFiltersRequest) (*deliveryv1.GetDestinationFiltersResponse, error) {
	if _, err := s.destination(ctx, req.GetDestinationId(), false); err != nil {
		return nil, err
	}
	st := s.Store()
	if st == nil {
		return nil, errUnavailable
	}
	c, _, err := st.Load(ctx, req.GetDestinationId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &deliveryv1.GetDestinationFiltersResponse{Filters: filtersToProto(c.Filters)}, nil
}

// SetDestinationFilters implements the RPC: the filters are compiled
// before they are saved, so an invalid FQL expression is refused.
func (s *Server) SetDestinationFilters(ctx context.Context, req *deliveryv1.SetDestinationFiltersRequest) (*deliveryv1.SetDestinationFiltersResponse, error) {
	if _, err := s.destination(ctx, req.GetDestinationId(), true); err != nil {
		return nil, err
	}
	st := s.Store()
	if st == nil {
		return nil, errUnavailable
	}
	fs := filtersFromProto(req.GetFilters())
	for i := range fs {
		if fs[i].ID == "" {
			fs[i].ID = "f" + strconv.Itoa(i+1)
		}
	}
	if _, err := filter.Compile(fs); err != nil {
		return nil, toStatus(err)
	}
	for i := range fs {
		for j := range fs[i].Actions {
			fs[i].Actions[j].Type = filter.NormalizeType(fs[i].Actions[j].Type)
		}
	}
	c, err := st.Update(ctx, req.GetDestinationId(), func(c *store.Config) error { c.Filters = fs; return nil })
	if err != nil {
		return nil, toStatus(err)
	}
	return &deliveryv1.SetDestinationFiltersResponse{Filters: filtersToProto(c.Filters)}, nil
}

// GetDestinationSubscriptions implements the RPC.
func (s *Server) GetDestinationSubscriptions(ctx context.Context, req *deliveryv1.GetDestinationSubscriptionsRequest) (*deliveryv1.GetDestinationSubscriptionsResponse, error) {
	if _, err := s.destination(ctx, req.GetDestinationId(), false); err != nil {
		return nil, err
	}
	st := s.Store()
	if st == nil {
		return nil, errUnavailable
	}
	c, _, err := st.Load(ctx, req.GetDestinationId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &deliveryv1.GetDestinationSubscriptionsResponse{Subscriptions: subsToProto(c.Subscriptions)}, nil
}

// SetDestinationSubscriptions implements the RPC.
func (s *Server) SetDestinationSubscriptions(ctx context.Context, req *deliveryv1.SetDestinationSubscriptionsRequest) (*deliveryv1.SetDestinationSubscriptionsResponse, error) {
	d, err := s.destination(ctx, req.GetDestinationId(), true)
	if err != nil {
		return nil, err
	}
	st := s.Store()
	if st == nil {
		return nil, errUnavailable
	}
	subs := make([]pipeline.Subscription, 0, len(req.GetSubscriptions()))
	for i, ps := range req.GetSubscriptions() {
		sub := pipeline.Subscription{ID: ps.GetId(), Name: ps.GetName(), Action: ps.GetAction(), Trigger: ps.GetTrigger(), Mapping: ps.GetMapping().AsMap(), Enabled: ps.GetEnabled()}
		if sub.ID == "" {
			sub.ID = "s" + strconv.Itoa(i+1)
		}
		if len(sub.Mapping) == 0 {
			sub.Mapping = nil
		}
		subs = append(subs, sub)
	}
	if err := pipeline.ValidateSubscriptions(d.GetType(), subs); err != nil {
		return nil, toStatus(err)
	}
	c, err := st.Update(ctx, req.GetDestinationId(), func(c *store.Config) error { c.Subscriptions = subs; return nil })
	if err != nil {
		return nil, toStatus(err)
	}
	return &deliveryv1.SetDestinationSubscriptionsResponse{Subscriptions: subsToProto(c.Subscriptions)}, nil
}

func letterFilter(f *deliveryv1.DeadLetterFilter) dlq.Filter {
	return dlq.Filter{Reason: f.GetReason(), EventType: f.GetEventType(), MessageIDs: f.GetMessageIds(), Status: int(f.GetStatus())}
}

// ListDeadLetters implements the RPC.
func (s *Server) ListDeadLetters(ctx context.Context, req *deliveryv1.ListDeadLettersRequest) (*deliveryv1.ListDeadLettersResponse, error) {
	d, err := s.destination(ctx, req.GetDestinationId(), false)
	if err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	if size <= 0 {
		size = 50
	}
	if size > 200 {
		return nil, status.InvalidField("PAGE_SIZE_RANGE", "pageSize", "page_size must be at most 200")
	}
	var from uint64
	if tok := req.GetPageToken(); tok != "" {
		if from, err = strconv.ParseUint(tok, 10, 64); err != nil {
			return nil, status.InvalidField("PAGE_TOKEN_INVALID", "pageToken", "page_token is not one this API returned")
		}
	}
	store := &dlq.Store{JS: s.JS}
	letters, next, err := store.List(ctx, d.GetWorkspaceId(), d.GetId(), letterFilter(req.GetFilter()), from, size)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &deliveryv1.ListDeadLettersResponse{}
	for i := range letters {
		resp.DeadLetters = append(resp.DeadLetters, letterToProto(&letters[i]))
	}
	if next != 0 {
		resp.NextPageToken = strconv.FormatUint(next, 10)
	}
	return resp, nil
}

// GetDeadLetter implements the RPC.
func (s *Server) GetDeadLetter(ctx context.Context, req *deliveryv1.GetDeadLetterRequest) (*deliveryv1.GetDeadLetterResponse, error) {
	d, err := s.destination(ctx, req.GetDestinationId(), false)
	if err != nil {
		return nil, err
	}
	l, err := (&dlq.Store{JS: s.JS}).Get(ctx, d.GetWorkspaceId(), d.GetId(), req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &deliveryv1.GetDeadLetterResponse{DeadLetter: letterToProto(l)}, nil
}

// RedriveDeadLetters implements the RPC.
func (s *Server) RedriveDeadLetters(ctx context.Context, req *deliveryv1.RedriveDeadLettersRequest) (*deliveryv1.RedriveDeadLettersResponse, error) {
	d, err := s.destination(ctx, req.GetDestinationId(), true)
	if err != nil {
		return nil, err
	}
	n, err := (&dlq.Store{JS: s.JS}).Redrive(ctx, d.GetWorkspaceId(), d.GetId(), letterFilter(req.GetFilter()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &deliveryv1.RedriveDeadLettersResponse{Redriven: int64(n)}, nil
}

// ReplayEvents implements the RPC.
func (s *Server) ReplayEvents(ctx context.Context, req *deliveryv1.ReplayEventsRequest) (*deliveryv1.ReplayEventsResponse, error) {
	d, err := s.destination(ctx, req.GetDestinationId(), true)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	if req.GetStartTime() == nil {
		return nil, status.InvalidField("REQUIRED", "startTime", "start_time is required")
	}
	start, end := req.GetStartTime().AsTime(), now
	if req.GetEndTime() != nil {
		end = req.GetEndTime().AsTime()
	}
	if !end.After(start) {
		return nil, status.InvalidField("TIME_RANGE_INVALID", "endTime", "end_time must be after start_time")
	}
	id := strconv.FormatInt(now.UnixNano(), 36)
	n, err := (&dlq.Store{JS: s.JS}).Replay(ctx, dlq.ReplayRequest{
		ID: id, WorkspaceID: d.GetWorkspaceId(), SourceID: d.GetSourceId(), DestinationID: d.GetId(),
		Start: start, End: end, EventTypes: req.GetEventTypes(),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &deliveryv1.ReplayEventsResponse{Replayed: int64(n), ReplayId: id}, nil
}

// GetDeliveryMetrics implements the RPC.
func (s *Server) GetDeliveryMetrics(ctx context.Context, req *deliveryv1.GetDeliveryMetricsRequest) (*deliveryv1.GetDeliveryMetricsResponse, error) {
	if _, err := s.destination(ctx, req.GetDestinationId(), false); err != nil {
		return nil, err
	}
	resp := &deliveryv1.GetDeliveryMetricsResponse{DestinationId: req.GetDestinationId()}
	for _, w := range []string{"10m", "1h", "24h", "7d"} {
		sum := s.Dispatcher.Metrics().Window(req.GetDestinationId(), metrics.Windows[w])
		wm := &deliveryv1.WindowMetrics{Window: w, Delivered: sum.Delivered, Retried: sum.Retried, Filtered: sum.Filtered,
			P95LatencyMs: float64(sum.P95) / float64(time.Millisecond)}
		for _, r := range metrics.Reasons(sum.NotDelivered) {
			wm.NotDelivered += sum.NotDelivered[r]
			wm.NotDeliveredByReason = append(wm.NotDeliveredByReason, &deliveryv1.ReasonCount{Reason: r, Count: sum.NotDelivered[r]})
		}
		resp.Windows = append(resp.Windows, wm)
	}
	for _, pt := range s.Dispatcher.Metrics().Minutes(req.GetDestinationId(), 60) {
		mp := &deliveryv1.MetricsPoint{Start: timestamppb.New(pt.Start), Delivered: pt.Delivered, Retried: pt.Retried,
			Filtered: pt.Filtered, P95LatencyMs: float64(pt.P95) / float64(time.Millisecond)}
		for _, n := range pt.NotDelivered {
			mp.NotDelivered += n
		}
		resp.Minutes = append(resp.Minutes, mp)
	}
	return resp, nil
}

// ListDeliveryErrors implements the RPC.
func (s *Server) ListDeliveryErrors(ctx context.Context, req *deliveryv1.ListDeliveryErrorsRequest) (*deliveryv1.ListDeliveryErrorsResponse, error) {
	if _, err := s.destination(ctx, req.GetDestinationId(), false); err != nil {
		return nil, err
	}
	resp := &deliveryv1.ListDeliveryErrorsResponse{}
	for _, e := range s.Dispatcher.Metrics().Samples(req.GetDestinationId()) {
		resp.Errors = append(resp.Errors, &deliveryv1.DeliveryError{
			Time: timestamppb.New(e.Time), MessageId: e.MessageID, Reason: e.Reason, Status: int32(e.Status),
			Attempt: e.Attempt, Final: e.Final, Event: e.Event, Request: e.Request, Response: e.Response,
		})
	}
	return resp, nil
}

func letterToProto(l *dlq.Letter) *deliveryv1.DeadLetter {
	out := &deliveryv1.DeadLetter{
		Id: l.Seq, MessageId: l.MessageID, EventType: l.EventType, Reason: l.Reason, Status: int32(l.Status),
		Attempts: l.Attempts, Error: l.Error, Request: l.Request, Response: l.Response,
		ReceivedAt: timestamppb.New(l.ReceivedAt), FailedAt: timestamppb.New(l.FailedAt), SourceId: l.SourceID,
	}
	var ev map[string]any
	if json.Unmarshal(l.Event, &ev) == nil {
		out.Event, _ = structpb.NewStruct(ev)
	}
	return out
}

func filtersFromProto(in []*deliveryv1.DestinationFilter) []filter.Filter {
	out := make([]filter.Filter, 0, len(in))
	for _, f := range in {
		ff := filter.Filter{ID: f.GetId(), Title: f.GetTitle(), If: f.GetIf(), Enabled: f.GetEnabled()}
		for _, a := range f.GetActions() {
			fa := filter.Action{Type: a.GetType(), Percent: a.GetPercent(), Path: a.GetPath()}
			for k, v := range a.GetFields().GetFields() {
				if fa.Fields == nil {
					fa.Fields = map[string][]string{}
				}
				for _, x := range v.GetListValue().GetValues() {
					fa.Fields[k] = append(fa.Fields[k], x.GetStringValue())
				}
			}
			ff.Actions = append(ff.Actions, fa)
		}
		out = append(out, ff)
	}
	return out
}

func filtersToProto(in []filter.Filter) []*deliveryv1.DestinationFilter {
	out := make([]*deliveryv1.DestinationFilter, 0, len(in))
	for _, f := range in {
		pf := &deliveryv1.DestinationFilter{Id: f.ID, Title: f.Title, If: f.If, Enabled: f.Enabled}
		for _, a := range f.Actions {
			pa := &deliveryv1.FilterAction{Type: a.Type, Percent: a.Percent, Path: a.Path}
			if len(a.Fields) > 0 {
				m := map[string]any{}
				for k, v := range a.Fields {
					l := make([]any, len(v))
					for i, x := range v {
						l[i] = x
					}
					m[k] = l
				}
				pa.Fields, _ = structpb.NewStruct(m)
			}
			pf.Actions = append(pf.Actions, pa)
		}
		out = append(out, pf)
	}
	return out
}

func subsToProto(in []pipeline.Subscription) []*deliveryv1.Subscription {
	out := make([]*deliveryv1.Subscription, 0, len(in))
	for _, s := range in {
		ps := &deliveryv1.Subscription{Id: s.ID, Name: s.Name, Action: s.Action, Trigger: s.Trigger, Enabled: s.Enabled}
		if s.Mapping != nil {
			ps.Mapping, _ = structpb.NewStruct(s.Mapping)
		}
		out = append(out, ps)
	}
	return out
}
