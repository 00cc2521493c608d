package repair

import (
	"context"

	grovev1 "github.com/antientropy/grove/proto/grove/v1"
)

// Peer is the responder as an initiator sees it: one method per message of
// the protocol. *Responder implements it in-process; transports (such as
// package rpc, over Connect/gRPC) implement it across a network. A Peer's
// errors wrap this package's sentinels.
type Peer interface {
	Hello(context.Context, *grovev1.HelloRequest) (*grovev1.HelloResponse, error)
	Descend(context.Context, *grovev1.DescendRequest) (*grovev1.DescendResponse, error)
	Reconcile(context.Context, *grovev1.ReconcileRequest) (*grovev1.ReconcileResponse, error)
	Push(context.Context, *grovev1.PushRequest) (*grovev1.PushResponse, error)
	Commit(context.Context, *grovev1.CommitRequest) (*grovev1.CommitResponse, error)
	Close(context.Context, *grovev1.CloseRequest) (*grovev1.CloseResponse, error)
}
