package rpc

import (
	"context"
	"errors"
	"net/http"
	"time"

	"connectrpc.com/connect"

	"github.com/antientropy/grove/engine/repair"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
	"github.com/antientropy/grove/proto/grove/v1/grovev1connect"
)

// ErrorHeader is the error metadata key that carries repair.Code(err) from a
// handler to a client. In the gRPC protocol it travels as a trailer, so any
// gRPC client can read it as trailing metadata "grove-error".
const ErrorHeader = "Grove-Error"

// DefaultMaxMessageBytes bounds one request or response when an option
// leaves it zero. A full depth-20 band of 4-byte fingerprints is 4 MiB, so
// 64 MiB leaves room for big Reconcile and Push batches while still bounding
// what a hostile peer can make us buffer.
const DefaultMaxMessageBytes = 64 << 20

// DefaultHandlerCallTimeout bounds one call on the serving side when
// HandlerOptions.CallTimeout is zero.
const DefaultHandlerCallTimeout = 5 * time.Minute

// HandlerOptions tune NewHandler. The zero value is ready to use.
type HandlerOptions struct {
	// MaxMessageBytes is the largest request the handler reads and the
	// largest response it sends; larger ones fail with ResourceExhausted.
	// Zero or less means DefaultMaxMessageBytes.
	MaxMessageBytes int
	// CallTimeout bounds each call on the serving side, on top of whatever
	// deadline the client sent (the gRPC protocol carries the client's
	// deadline in grpc-timeout, and the handler honours it). It protects the
	// node from clients that send no deadline. Zero or less means
	// DefaultHandlerCallTimeout.
	CallTimeout time.Duration
}

// NewHandler serves peer as grove's RepairService (gRPC, gRPC-Web and
// Connect protocols). Mount h at path on the node's own mux:
//
//	path, h := rpc.NewHandler(responder, rpc.HandlerOptions{})
//	mux.Handle(path, h)
//
// Errors the peer returns reach the client with a status code that fits
// them and with repair.Code(err) in the ErrorHeader metadata, so a Client
// restores the repair sentinel.
func NewHandler(peer repair.Peer, opts HandlerOptions) (path string, h http.Handler) {
	limit, timeout := opts.limits()
	return grovev1connect.NewRepairServiceHandler(
		&service{peer: peer, timeout: timeout},
		connect.WithReadMaxBytes(limit),
		connect.WithSendMaxBytes(limit),
	)
}

// service adapts a repair.Peer, which speaks plain messages, to the
// generated handler interface, which speaks connect envelopes.
type service struct {
	peer    repair.Peer
	timeout time.Duration
}

var _ grovev1connect.RepairServiceHandler = (*service)(nil)

// handle runs one call under the handler's own deadline and turns its error
// into a *connect.Error. It is generic so that the six methods cannot drift
// apart in how they treat deadlines, nil answers and errors.
func handle[Req, Res any](ctx context.Context, timeout time.Duration, req *connect.Request[Req], fn func(context.Context, *Req) (*Res, error)) (*connect.Response[Res], error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := fn(ctx, req.Msg)
	if err != nil {
		return nil, toConnectError(err)
	}
	if res == nil {
		// Encoding a nil message would send an empty response that the client
		// could not tell from a real one; say plainly that the peer broke.
		return nil, connect.NewError(connect.CodeInternal, errors.New("rpc: peer returned neither a response nor an error"))
	}
	return connect.NewResponse(res), nil
}

// Hello implements grovev1connect.RepairServiceHandler.
func (s *service) Hello(ctx context.Context, req *connect.Request[grovev1.HelloRequest]) (*connect.Response[grovev1.HelloResponse], error) {
	return handle(ctx, s.timeout, req, s.peer.Hello)
}

// Descend implements grovev1connect.RepairServiceHandler.
func (s *service) Descend(ctx context.Context, req *connect.Request[grovev1.DescendRequest]) (*connect.Response[grovev1.DescendResponse], error) {
	return handle(ctx, s.timeout, req, s.peer.Descend)
}

// Reconcile implements grovev1connect.RepairServiceHandler.
func (s *service) Reconcile(ctx context.Context, req *connect.Request[grovev1.ReconcileRequest]) (*connect.Response[grovev1.ReconcileResponse], error) {
	return handle(ctx, s.timeout, req, s.peer.Reconcile)
}

// Push implements grovev1connect.RepairServiceHandler.
func (s *service) Push(ctx context.Context, req *connect.Request[grovev1.PushRequest]) (*connect.Response[grovev1.PushResponse], error) {
	return handle(ctx, s.timeout, req, s.peer.Push)
}

// Commit implements grovev1connect.RepairServiceHandler.
func (s *service) Commit(ctx context.Context, req *connect.Request[grovev1.CommitRequest]) (*connect.Response[grovev1.CommitResponse], error) {
	return handle(ctx, s.timeout, req, s.peer.Commit)
}

// Close implements grovev1connect.RepairServiceHandler.
func (s *service) Close(ctx context.Context, req *connect.Request[grovev1.CloseRequest]) (*connect.Response[grovev1.CloseResponse], error) {
	return handle(ctx, s.timeout, req, s.peer.Close)
}

// statusCodes gives the status code for each repair sentinel. Codes are
// chosen for what a generic gRPC client should do: Aborted and
// ResourceExhausted invite a retry later, FailedPrecondition and
// InvalidArgument do not.
var statusCodes = []struct {
	err  error
	code connect.Code
}{
	{repair.ErrIncompatible, connect.CodeFailedPrecondition},
	{repair.ErrBadMessage, connect.CodeInvalidArgument},
	{repair.ErrUnknownSession, connect.CodeNotFound},
	{repair.ErrChanged, connect.CodeAborted},
	{repair.ErrBusy, connect.CodeResourceExhausted},
	{repair.ErrLimit, connect.CodeResourceExhausted},
	{repair.ErrNotConverged, connect.CodeAborted},
	{context.DeadlineExceeded, connect.CodeDeadlineExceeded},
	{context.Canceled, connect.CodeCanceled},
}

// toConnectError gives err a status code and tags it with its repair code.
func toConnectError(err error) error {
	code := connect.CodeInternal
	for _, s := range statusCodes {
		if errors.Is(err, s.err) {
			code = s.code
			break
		}
	}
	var ce *connect.Error
	if errors.As(err, &ce) && code == connect.CodeInternal {
		// A peer that already chose a status (say, a proxy Peer relaying
		// another node's answer) keeps it.
		code = ce.Code()
	}
	out := connect.NewError(code, err)
	if name := repair.Code(err); name != "" {
		out.Meta().Set(ErrorHeader, name)
	}
	return out
}
