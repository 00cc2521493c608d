package coord

import (
	"context"
	"sync"

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
// a rate of zero or less returns peer itself. A call first pays for the
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
