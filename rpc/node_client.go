package rpc

import (
	"context"

	"github.com/antientropy/grove/engine/repair"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
)

// A Client is also a repair.NodePeer: the node session's two calls go to
// the NodeService a handler from NewNodeHandler serves, over the same
// connections, limits and deadlines as the per-range calls.
var _ repair.NodePeer = (*Client)(nil)

// Ranges implements repair.NodePeer.
func (c *Client) Ranges(ctx context.Context, req *grovev1.RangesRequest) (*grovev1.RangesResponse, error) {
	return call(ctx, c, req, c.node.Ranges)
}

// Batch implements repair.NodePeer.
func (c *Client) Batch(ctx context.Context, req *grovev1.BatchRequest) (*grovev1.BatchResponse, error) {
	return call(ctx, c, req, c.node.Batch)
}
