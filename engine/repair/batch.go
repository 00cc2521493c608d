package repair

import (
	"context"
	"fmt"
	"sync"

	"github.com/antientropy/grove/metrics"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
)

// The initiator's batching layer: each differing range runs the ordinary
// per-range session (Sync) against a rangePeer, whose calls wait until
// every session still running has made its next call; then they leave
// together as one Batch. A node session therefore takes the round trips of
// its deepest range, not of all its ranges, and the per-range session is
// not written twice.

// batchMargin is what a batch keeps free of its message limit for the
// envelope around the calls: tags, lengths and range indexes.
const batchMargin = 4096

// batcher gathers the calls of a node session's range sessions.
type batcher struct {
	ctx   context.Context
	peer  NodePeer
	limit int
	stats *Stats
	m     *metrics.Set

	mu      sync.Mutex
	active  int // sessions that will make another call or end
	pending []*pendingCall
}

// pendingCall is one range session's call, waiting for its batch.
type pendingCall struct {
	call *grovev1.RangeCall
	size int
	ans  *grovev1.RangeAnswer
	err  error
	done chan struct{}
}

func newBatcher(ctx context.Context, peer NodePeer, limit int, stats *Stats, m *metrics.Set) *batcher {
	return &batcher{ctx: ctx, peer: peer, limit: limit, stats: stats, m: m}
}

// do queues call and waits for its answer. The call that completes the
// batch — every active session waiting — sends it.
func (b *batcher) do(call *grovev1.RangeCall) (*grovev1.RangeAnswer, error) {
	pc := &pendingCall{call: call, size: int(MessageBytes(call)), done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, pc)
	batch := b.ready()
	b.mu.Unlock()
	if batch != nil {
		b.flush(batch)
	}
	// No select on a context: the batch holding this call is sent as soon
	// as every other session has called or ended, and a cancelled context
	// makes them do so quickly; flush always answers every call it takes.
	<-pc.done
	return pc.ans, pc.err
}

// end says one session (a worker) will make no more calls; the others may
// now be a complete batch.
func (b *batcher) end() {
	b.mu.Lock()
	b.active--
	batch := b.ready()
	b.mu.Unlock()
	if batch != nil {
		b.flush(batch)
	}
}

// ready takes the pending calls when every active session has made one.
// The caller holds b.mu.
func (b *batcher) ready() []*pendingCall {
	if len(b.pending) == 0 || len(b.pending) < b.active {
		return nil
	}
	batch := b.pending
	b.pending = nil
	return batch
}

// flush sends the calls in as few Batch messages as the limit allows, sends
// again those the responder deferred, and answers every call.
func (b *batcher) flush(calls []*pendingCall) {
	defer func() {
		for _, pc := range calls {
			close(pc.done)
		}
	}()
	todo := calls
	for len(todo) > 0 {
		// The calls that fit one message, at least one: each call alone
		// fits, since every session builds its messages under half the
		// limit.
		n, size := 0, 0
		for n < len(todo) && (n == 0 || size+todo[n].size <= b.limit-batchMargin) {
			size += todo[n].size
			n++
		}
		chunk := todo[:n]
		req := &grovev1.BatchRequest{Calls: make([]*grovev1.RangeCall, n)}
		for i, pc := range chunk {
			req.Calls[i] = pc.call
		}
		resp, err := nodeCall(b.ctx, b.stats, b.m, b.peer.Batch, req)
		if err == nil && len(resp.GetAnswers()) != n {
			err = fmt.Errorf("%w: batch answer holds %d answers for %d calls", ErrBadMessage, len(resp.GetAnswers()), n)
		}
		if err != nil {
			for _, pc := range todo {
				pc.err = err
			}
			return
		}
		var deferred []*pendingCall
		for i, a := range resp.GetAnswers() {
			if a.GetDeferred() {
				deferred = append(deferred, chunk[i])
				continue
			}
			chunk[i].ans = a
		}
		if len(deferred) == n {
			err := fmt.Errorf("%w: batch answer deferred every call", ErrBadMessage)
			for _, pc := range todo {
				pc.err = err
			}
			return
		}
		todo = append(deferred, todo[n:]...)
	}
}

// rangePeer is one range's session's Peer: each call goes through the
// batcher, marked with the range's index among the peer's ranges.
type rangePeer struct {
	b     *batcher
	index uint32
}

var _ Peer = (*rangePeer)(nil)

// answer sends one call and checks the answer is what the call expects.
func answer[Resp any](p *rangePeer, call *grovev1.RangeCall, get func(*grovev1.RangeAnswer) *Resp, what string) (*Resp, error) {
	call.Range = p.index
	a, err := p.b.do(call)
	if err != nil {
		return nil, err
	}
	if e := a.GetError(); e != nil {
		return nil, rangeError(e)
	}
	if r := get(a); r != nil {
		return r, nil
	}
	return nil, fmt.Errorf("%w: the answer to a %s call is not a %s answer", ErrBadMessage, what, what)
}

// rangeError restores a range's failure: the sentinel its code names, or
// ErrPeerFailed.
func rangeError(e *grovev1.RangeError) error {
	sentinel := FromCode(e.GetCode())
	if sentinel == nil {
		sentinel = ErrPeerFailed
	}
	return &peerError{sentinel: sentinel, msg: e.GetMessage()}
}

// peerError is an error a peer reported for one call: it reads as the
// peer's text and unwraps to the sentinel.
type peerError struct {
	sentinel error
	msg      string
}

func (e *peerError) Error() string { return "peer: " + e.msg }
func (e *peerError) Unwrap() error { return e.sentinel }

// Hello implements Peer.
func (p *rangePeer) Hello(ctx context.Context, req *grovev1.HelloRequest) (*grovev1.HelloResponse, error) {
	return answer(p, &grovev1.RangeCall{Call: &grovev1.RangeCall_Hello{Hello: req}}, (*grovev1.RangeAnswer).GetHello, "hello")
}

// Descend implements Peer.
func (p *rangePeer) Descend(ctx context.Context, req *grovev1.DescendRequest) (*grovev1.DescendResponse, error) {
	return answer(p, &grovev1.RangeCall{Call: &grovev1.RangeCall_Descend{Descend: req}}, (*grovev1.RangeAnswer).GetDescend, "descend")
}

// Reconcile implements Peer.
func (p *rangePeer) Reconcile(ctx context.Context, req *grovev1.ReconcileRequest) (*grovev1.ReconcileResponse, error) {
	return answer(p, &grovev1.RangeCall{Call: &grovev1.RangeCall_Reconcile{Reconcile: req}}, (*grovev1.RangeAnswer).GetReconcile, "reconcile")
}

// Push implements Peer.
func (p *rangePeer) Push(ctx context.Context, req *grovev1.PushRequest) (*grovev1.PushResponse, error) {
	return answer(p, &grovev1.RangeCall{Call: &grovev1.RangeCall_Push{Push: req}}, (*grovev1.RangeAnswer).GetPush, "push")
}

// Commit implements Peer.
func (p *rangePeer) Commit(ctx context.Context, req *grovev1.CommitRequest) (*grovev1.CommitResponse, error) {
	return answer(p, &grovev1.RangeCall{Call: &grovev1.RangeCall_Commit{Commit: req}}, (*grovev1.RangeAnswer).GetCommit, "commit")
}

// Close implements Peer.
func (p *rangePeer) Close(ctx context.Context, req *grovev1.CloseRequest) (*grovev1.CloseResponse, error) {
	return answer(p, &grovev1.RangeCall{Call: &grovev1.RangeCall_Close{Close: req}}, (*grovev1.RangeAnswer).GetClose, "close")
}
