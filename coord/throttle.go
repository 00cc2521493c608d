package coord

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"

	"golang.org/x/time/rate"

	"github.com/antientropy/grove/engine/repair"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
)

// throttled is a node session's peer whose traffic is held to a rate.
type throttled struct {
	peer repair.NodePeer
	lim  *rate.Limiter
	mu   sync.Mutex
	debt int64 // bytes of calls made and not yet paid for
}

// Throttle returns peer with its sessions' message bytes — the rows they
// move, mostly — held to bytesPerSecond on average, both directions
// together, as Cassandra's stream throughput bounds a repair's streaming;
// a rate of zero or less returns peer itself. The peer returned also
// implements repair.Peer, under the same rate, so that PerPeer can run a
// split range's subtree sessions through it; its calls fail with
// errors.ErrUnsupported when peer answers node sessions only. A call first pays for the
// calls before it, then runs, so the wait never falls between a call the
// peer acted on and its answer.
func Throttle(peer repair.NodePeer, bytesPerSecond float64) repair.NodePeer {
	if bytesPerSecond <= 0 {
		return peer
	}
	// A tenth of a second of burst, at least a megabyte: small messages
	// pass at once.
	burst := int(max(bytesPerSecond/10, 1<<20))
	return &throttled{peer: peer, lim: rate.NewLimiter(rate.Limit(bytesPerSecond), burst)}
}

// pay waits until the debt is paid for, in pieces no larger than the
// bucket, or ctx ends.
func (t *throttled) pay(ctx context.Context) error {
	t.mu.Lock()
	n := t.debt
	t.debt = 0
	t.mu.Unlock()
	for n > 0 {
		piece := min(n, int64(t.lim.Burst()))
		if err := t.lim.WaitN(ctx, int(piece)); err != nil {
			t.owe(n)
			return err
		}
		n -= piece
	}
	return nil
}

func (t *throttled) owe(n int64) {
	t.mu.Lock()
	t.debt += n
	t.mu.Unlock()
}

// Ranges implements repair.NodePeer.
func (t *throttled) Ranges(ctx context.Context, req *grovev1.RangesRequest) (*grovev1.RangesResponse, error) {
	if err := t.pay(ctx); err != nil {
		return nil, err
	}
	resp, err := t.peer.Ranges(ctx, req)
	t.owe(repair.MessageBytes(req) + repair.MessageBytes(resp))
	return resp, err
}

// Batch implements repair.NodePeer.
func (t *throttled) Batch(ctx context.Context, req *grovev1.BatchRequest) (*grovev1.BatchResponse, error) {
	if err := t.pay(ctx); err != nil {
		return nil, err
	}
	resp, err := t.peer.Batch(ctx, req)
	t.owe(repair.MessageBytes(req) + repair.MessageBytes(resp))
	return resp, err
}

// rangeCall runs one per-range call through the throttle.
func rangeCall[Req, Resp proto.Message](ctx context.Context, t *throttled, f func(repair.Peer) func(context.Context, Req) (Resp, error), req Req) (Resp, error) {
	var zero Resp
	p, ok := t.peer.(repair.Peer)
	if !ok {
		return zero, fmt.Errorf("coord: the peer answers node sessions only: %w", errors.ErrUnsupported)
	}
	if err := t.pay(ctx); err != nil {
		return zero, err
	}
	resp, err := f(p)(ctx, req)
	t.owe(repair.MessageBytes(req) + repair.MessageBytes(resp))
	return resp, err
}

// Hello implements repair.Peer.
func (t *throttled) Hello(ctx context.Context, req *grovev1.HelloRequest) (*grovev1.HelloResponse, error) {
	return rangeCall(ctx, t, func(p repair.Peer) func(context.Context, *grovev1.HelloRequest) (*grovev1.HelloResponse, error) {
		return p.Hello
	}, req)
}

// Descend implements repair.Peer.
func (t *throttled) Descend(ctx context.Context, req *grovev1.DescendRequest) (*grovev1.DescendResponse, error) {
	return rangeCall(ctx, t, func(p repair.Peer) func(context.Context, *grovev1.DescendRequest) (*grovev1.DescendResponse, error) {
		return p.Descend
	}, req)
}

// Reconcile implements repair.Peer.
func (t *throttled) Reconcile(ctx context.Context, req *grovev1.ReconcileRequest) (*grovev1.ReconcileResponse, error) {
	return rangeCall(ctx, t, func(p repair.Peer) func(context.Context, *grovev1.ReconcileRequest) (*grovev1.ReconcileResponse, error) {
		return p.Reconcile
	}, req)
}

// Push implements repair.Peer.
func (t *throttled) Push(ctx context.Context, req *grovev1.PushRequest) (*grovev1.PushResponse, error) {
	return rangeCall(ctx, t, func(p repair.Peer) func(context.Context, *grovev1.PushRequest) (*grovev1.PushResponse, error) {
		return p.Push
	}, req)
}

// Commit implements repair.Peer.
func (t *throttled) Commit(ctx context.Context, req *grovev1.CommitRequest) (*grovev1.CommitResponse, error) {
	return rangeCall(ctx, t, func(p repair.Peer) func(context.Context, *grovev1.CommitRequest) (*grovev1.CommitResponse, error) {
		return p.Commit
	}, req)
}

// Close implements repair.Peer.
func (t *throttled) Close(ctx context.Context, req *grovev1.CloseRequest) (*grovev1.CloseResponse, error) {
	return rangeCall(ctx, t, func(p repair.Peer) func(context.Context, *grovev1.CloseRequest) (*grovev1.CloseResponse, error) {
		return p.Close
	}, req)
}
