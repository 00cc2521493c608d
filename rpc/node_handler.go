package rpc

import (
	"context"
	"net/http"
	"time"

	"connectrpc.com/connect"

	"github.com/antientropy/grove/engine/repair"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
	"github.com/antientropy/grove/proto/grove/v1/grovev1connect"
)

// NewNodeHandler serves peer — normally a repair.NodeResponder — as grove's
// NodeService, the node session of docs/PROTOCOL.md. Mount it beside the
// RepairService handler, on the same mux and port:
//
//	nr, _ := repair.NewNodeResponder(replicas, repair.ResponderOptions{})
//	mux.Handle(rpc.NewHandler(nr, rpc.HandlerOptions{}))
//	mux.Handle(rpc.NewNodeHandler(nr, rpc.HandlerOptions{}))
//
// Errors reach a Client as NewHandler's do; a failure of one range's call
// inside a Batch is that call's answer, not the Batch's error.
func NewNodeHandler(peer repair.NodePeer, opts HandlerOptions) (path string, h http.Handler) {
	limit, timeout := opts.limits()
	return grovev1connect.NewNodeServiceHandler(
		&nodeService{peer: peer, timeout: timeout},
		connect.WithReadMaxBytes(limit),
		connect.WithSendMaxBytes(limit),
	)
}

// nodeService adapts a repair.NodePeer to the generated handler interface.
type nodeService struct {
	peer    repair.NodePeer
	timeout time.Duration
}

var _ grovev1connect.NodeServiceHandler = (*nodeService)(nil)

// Ranges implements grovev1connect.NodeServiceHandler.
func (s *nodeService) Ranges(ctx context.Context, req *connect.Request[grovev1.RangesRequest]) (*connect.Response[grovev1.RangesResponse], error) {
	return handle(ctx, s.timeout, req, s.peer.Ranges)
}

// Batch implements grovev1connect.NodeServiceHandler.
func (s *nodeService) Batch(ctx context.Context, req *connect.Request[grovev1.BatchRequest]) (*connect.Response[grovev1.BatchResponse], error) {
	return handle(ctx, s.timeout, req, s.peer.Batch)
}
