// Package server implements the gRPC DeliveryService.
package server

import (
	"context"
	"errors"

	natsjs "github.com/nats-io/nats.go/jetstream"
	deliveryv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/delivery/v1"
	"github.com/switchyardhq/switchyard/services/delivery/internal/dispatch"
	"github.com/switchyardhq/switchyard/services/internal/platform/auth"
	"github.com/switchyardhq/switchyard/services/internal/platform/catalogwatch"
	"github.com/switchyardhq/switchyard/services/internal/platform/status"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"google.golang.org/grpc/codes"
)

// Server implements deliveryv1.DeliveryServiceServer.
type Server struct {
	deliveryv1.UnimplementedDeliveryServiceServer
	JS         natsjs.JetStream
	Dispatcher *dispatch.Dispatcher
	Config     *catalogwatch.Watcher
}

// GetDeliveryStatus implements the RPC.
func (s *Server) GetDeliveryStatus(ctx context.Context, req *deliveryv1.GetDeliveryStatusRequest) (*deliveryv1.GetDeliveryStatusResponse, error) {
	p, err := auth.RequirePrincipal(ctx)
	if err != nil {
		return nil, err
	}
	found := false
	for _, snap := range s.Config.Snapshots() {
		for _, d := range snap.GetDestinations() {
			if d.GetId() == req.GetDestinationId() && d.GetWorkspaceId() == p.GetWorkspaceId() {
				found = true
			}
		}
	}
	if !found {
		return nil, status.Error(codes.NotFound, "DELIVERY_DESTINATION_NOT_FOUND", "destination "+req.GetDestinationId()+" not found", nil)
	}
	resp := &deliveryv1.GetDeliveryStatusResponse{DestinationId: req.GetDestinationId()}
	if st, running := s.Dispatcher.StatsOf(req.GetDestinationId()); st != nil {
		resp.Running = running
		resp.Delivered = st.Delivered.Load()
		resp.FailedAttempts = st.FailedAttempts.Load()
	}
	cons, err := s.JS.Consumer(ctx, streams.Events, dispatch.ConsumerName(req.GetDestinationId()))
	switch {
	case errors.Is(err, natsjs.ErrConsumerNotFound):
	case err != nil:
		return nil, err
	default:
		info, err := cons.Info(ctx)
		if err != nil {
			return nil, err
		}
		resp.Pending = info.NumPending + uint64(info.NumAckPending)
	}
	return resp, nil
}
