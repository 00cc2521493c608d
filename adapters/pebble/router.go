package grovepebble

import (
	"github.com/antientropy/grove/engine/repair"
)

// Router answers repair for every range of a node on one endpoint: it is a
// repair.NodeResponder over the node's ranges, so it serves both the node
// session of a peer node (repair.NodePeer: one session over every range the
// two share, rpc.NewNodeHandler) and per-range sessions (repair.Peer:
// rpc.NewHandler), each range through its own repair.Responder.
type Router struct {
	*repair.NodeResponder
}

var (
	_ repair.Peer     = (*Router)(nil)
	_ repair.NodePeer = (*Router)(nil)
)

// NewRouter returns a Router over every range of n, each with a responder
// made with opts (whose limits, MaxSessions included, are then per range;
// see repair.NewNodeResponder for MaxMessageBytes). A node of one range
// gets a Router of its one range.
func NewRouter(n *Node, opts repair.ResponderOptions) (*Router, error) {
	nr, err := repair.NewNodeResponder(n.RepairReplicas(), opts)
	if err != nil {
		return nil, err
	}
	return &Router{NodeResponder: nr}, nil
}

// RepairReplicas returns the node's ranges as repair.Replicas in token
// order, what repair.SyncNode and repair.NewNodeResponder take: one per
// range of a node of many ranges, or the node itself.
func (n *Node) RepairReplicas() []repair.Replica {
	reps := n.Replicas()
	if reps == nil {
		return []repair.Replica{n}
	}
	out := make([]repair.Replica, len(reps))
	for i, r := range reps {
		out[i] = r
	}
	return out
}
