package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/antientropy/grove/engine/repair"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
	"github.com/antientropy/grove/rpc"
)

// responder stands in for a repair.Responder: it answers Hello and knows no
// sessions.
type responder struct{}

func (responder) Hello(_ context.Context, req *grovev1.HelloRequest) (*grovev1.HelloResponse, error) {
	return &grovev1.HelloResponse{Params: req.GetParams(), Sum: req.GetSum()}, nil
}

func (responder) Descend(context.Context, *grovev1.DescendRequest) (*grovev1.DescendResponse, error) {
	return nil, fmt.Errorf("%w: no such session", repair.ErrUnknownSession)
}

func (responder) Reconcile(context.Context, *grovev1.ReconcileRequest) (*grovev1.ReconcileResponse, error) {
	return nil, repair.ErrUnknownSession
}

func (responder) Push(context.Context, *grovev1.PushRequest) (*grovev1.PushResponse, error) {
	return nil, repair.ErrUnknownSession
}

func (responder) Commit(context.Context, *grovev1.CommitRequest) (*grovev1.CommitResponse, error) {
	return nil, repair.ErrUnknownSession
}

func (responder) Close(context.Context, *grovev1.CloseRequest) (*grovev1.CloseResponse, error) {
	return &grovev1.CloseResponse{}, nil
}

// A node mounts the repair handler on its own mux; another node calls it
// through a Client, which is a repair.Peer.
func ExampleNewHandler() {
	mux := http.NewServeMux()
	path, h := rpc.NewHandler(responder{}, rpc.HandlerOptions{})
	mux.Handle(path, h)

	// NewServer speaks HTTP/2 without TLS when given no TLS configuration.
	node := httptest.NewUnstartedServer(nil)
	node.Config = rpc.NewServer(mux, nil)
	node.Start()
	defer node.Close()

	client, err := rpc.NewClient(node.URL, rpc.ClientOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.CloseIdle()

	ctx := context.Background()
	res, err := client.Hello(ctx, &grovev1.HelloRequest{
		Params: &grovev1.Params{Protocol: 1, Depth: 20},
		Sum:    make([]byte, 32),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("responder depth:", res.GetParams().GetDepth(), "session:", len(res.GetSession()) > 0)

	// The responder's sentinel survives the trip.
	_, err = client.Descend(ctx, &grovev1.DescendRequest{Session: []byte("gone")})
	fmt.Println("unknown session:", errors.Is(err, repair.ErrUnknownSession))
	// Output:
	// responder depth: 20 session: false
	// unknown session: true
}
