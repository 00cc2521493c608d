package repair

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/metrics"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
)

// NodeResponder answers for every range a node holds, on one endpoint: the
// node session (NodePeer: Ranges, then Batch), and per-range sessions
// (Peer), each range through its own Responder. It is safe for concurrent
// use.
type NodeResponder struct {
	p      token.Partitioner
	ranges []token.Range
	resp   []*Responder
	byLo   map[token.Token]int
	hash   [RangesHashBytes]byte
	limit  int
	m      *metrics.Set

	mu       sync.Mutex
	sessions map[string]*Responder
}

var (
	_ Peer     = (*NodeResponder)(nil)
	_ NodePeer = (*NodeResponder)(nil)
)

// maxRoutedSessions bounds a NodeResponder's memory of per-range sessions:
// a session that an initiator abandons ends inside its Responder
// (IdleTimeout) without a Close the NodeResponder would see, so past this
// many it forgets those its responders no longer hold.
const maxRoutedSessions = 4096

// NewNodeResponder returns a responder for replicas, the ranges of one
// node: they must share a partitioner and not overlap (ErrIncompatible).
// Each range gets a Responder made with opts, whose limits — MaxSessions
// included — are then per range, except MaxMessageBytes: each range
// answers within half of it, so that a Batch answer holding several fits
// whole. opts.Metrics counts each range's sessions and their calls, and the
// Ranges exchanges; a Batch's envelope around its calls is not counted.
func NewNodeResponder(replicas []Replica, opts ResponderOptions) (*NodeResponder, error) {
	opts.fill()
	if len(replicas) == 0 {
		return nil, fmt.Errorf("%w: a node responder of no ranges", ErrIncompatible)
	}
	shared, ranges, err := sharedRanges(replicas, nil)
	if err != nil {
		return nil, err
	}
	per := opts
	per.MaxMessageBytes = opts.MaxMessageBytes / 2
	r := &NodeResponder{
		p:        replicas[0].Shape().Partitioner,
		ranges:   ranges,
		byLo:     map[token.Token]int{},
		limit:    opts.MaxMessageBytes,
		m:        opts.Metrics,
		sessions: map[string]*Responder{},
	}
	for i, s := range shared {
		r.resp = append(r.resp, NewResponder(s.rep, per))
		r.byLo[s.rng.Lo] = i
	}
	r.hash = RangesHash(r.p, ranges)
	return r, nil
}

// Shutdown ends every session of every range and refuses new ones.
func (r *NodeResponder) Shutdown() {
	for _, resp := range r.resp {
		resp.Shutdown()
	}
}

// Sessions returns how many per-range sessions are open over all ranges.
func (r *NodeResponder) Sessions() int {
	n := 0
	for _, resp := range r.resp {
		n += resp.Sessions()
	}
	return n
}

// Held returns the node's ranges in token order: the list a node session's
// RangesRequest must name.
func (r *NodeResponder) Held() []token.Range { return slices.Clone(r.ranges) }

// Ranges implements NodePeer: it compares the initiator's fingerprint of
// each shared range's sum with its own, read from the live trees, and
// answers which differ, with the sum of those that do not.
func (r *NodeResponder) Ranges(ctx context.Context, req *grovev1.RangesRequest) (*grovev1.RangesResponse, error) {
	r.m.SessionStarted(metrics.Responder)
	resp, err := r.ranges1(ctx, req)
	var out int64
	if err == nil {
		out = MessageBytes(resp)
	} else {
		r.m.Error("session")
	}
	r.m.Exchanged(metrics.Responder, out, MessageBytes(req))
	r.m.SessionEnded(metrics.Responder, err)
	return resp, err
}

func (r *NodeResponder) ranges1(ctx context.Context, req *grovev1.RangesRequest) (*grovev1.RangesResponse, error) {
	switch {
	case req.GetProtocol() != ProtocolVersion:
		return nil, fmt.Errorf("%w: protocol version %d, ours is %d", ErrIncompatible, req.GetProtocol(), ProtocolVersion)
	case req.GetFormat() != engine.FormatVersion:
		return nil, fmt.Errorf("%w: tree format version %d, ours is %d", ErrIncompatible, req.GetFormat(), engine.FormatVersion)
	case req.GetPartitioner() != uint32(r.p.ID()):
		return nil, fmt.Errorf("%w: partitioner %d, ours is %s (%d)", ErrIncompatible, req.GetPartitioner(), r.p.Name(), r.p.ID())
	case len(req.GetRangesHash()) != RangesHashBytes:
		return nil, fmt.Errorf("%w: ranges.ranges_hash is %d bytes, want %d", ErrBadMessage, len(req.GetRangesHash()), RangesHashBytes)
	case int(req.GetCount()) != len(r.ranges) || string(req.GetRangesHash()) != string(r.hash[:]):
		return nil, fmt.Errorf("%w: the initiator expects %d ranges here (hash %x), this node holds %d (hash %x): do the two nodes read the same ring?",
			ErrIncompatible, req.GetCount(), req.GetRangesHash(), len(r.ranges), r.hash)
	}
	n, err := checkBitmap(req.GetShared(), len(r.ranges), "ranges.shared")
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: ranges.shared marks no range", ErrBadMessage)
	}
	key, err := parseSalt(req.GetSalt())
	if err != nil {
		return nil, err
	}
	fps := req.GetFingerprints()
	if len(fps) != n*FingerprintBytes {
		return nil, fmt.Errorf("%w: ranges.fingerprints is %d bytes, want %d for %d shared ranges", ErrBadMessage, len(fps), n*FingerprintBytes, n)
	}
	resp := &grovev1.RangesResponse{Differ: newBitmap(n)}
	var equal engine.Digest
	at := 0
	for i := range r.ranges {
		if !hasBit(req.GetShared(), i) {
			continue
		}
		sum, err := r.resp[i].replica.Sum(ctx)
		if err != nil {
			return nil, err
		}
		if key.of(&sum) != fpAt(fps, at) {
			setBit(resp.Differ, at)
		} else {
			equal.Add(&sum)
		}
		at++
	}
	resp.EqualSum = equal[:]
	return resp, nil
}

// Batch implements NodePeer: it runs each call against its range's
// Responder, in order, and answers each. A call whose answer could take
// the answer past the message limit is not run but deferred: every range
// answers within half the limit, so the calls before it are kept under
// the other half.
func (r *NodeResponder) Batch(ctx context.Context, req *grovev1.BatchRequest) (*grovev1.BatchResponse, error) {
	calls := req.GetCalls()
	if len(calls) == 0 {
		return nil, fmt.Errorf("%w: batch.calls is empty", ErrBadMessage)
	}
	if len(calls) > len(r.ranges) {
		return nil, fmt.Errorf("%w: batch.calls holds %d calls, this node holds %d ranges", ErrBadMessage, len(calls), len(r.ranges))
	}
	seen := newBitmap(len(r.ranges))
	for i, c := range calls {
		switch idx := int(c.GetRange()); {
		case idx >= len(r.ranges):
			return nil, fmt.Errorf("%w: batch.calls[%d].range is %d, this node holds %d ranges", ErrBadMessage, i, idx, len(r.ranges))
		case hasBit(seen, idx):
			return nil, fmt.Errorf("%w: batch.calls[%d].range %d has a call already", ErrBadMessage, i, idx)
		case c.GetCall() == nil:
			return nil, fmt.Errorf("%w: batch.calls[%d].call is empty", ErrBadMessage, i)
		default:
			setBit(seen, idx)
		}
	}
	resp := &grovev1.BatchResponse{Answers: make([]*grovev1.RangeAnswer, len(calls))}
	var size int64
	for i, c := range calls {
		if i > 0 && size > int64(r.limit/2-batchMargin) {
			resp.Answers[i] = &grovev1.RangeAnswer{Answer: &grovev1.RangeAnswer_Deferred{Deferred: true}}
			continue
		}
		a := r.run(ctx, r.resp[c.GetRange()], c)
		resp.Answers[i] = a
		size += MessageBytes(a)
	}
	return resp, nil
}

// run runs one call of a batch and wraps its answer or its error.
func (r *NodeResponder) run(ctx context.Context, resp *Responder, c *grovev1.RangeCall) *grovev1.RangeAnswer {
	var a grovev1.RangeAnswer
	var err error
	switch x := c.GetCall().(type) {
	case *grovev1.RangeCall_Hello:
		var out *grovev1.HelloResponse
		if out, err = resp.Hello(ctx, x.Hello); err == nil {
			a.Answer = &grovev1.RangeAnswer_Hello{Hello: out}
		}
	case *grovev1.RangeCall_Descend:
		var out *grovev1.DescendResponse
		if out, err = resp.Descend(ctx, x.Descend); err == nil {
			a.Answer = &grovev1.RangeAnswer_Descend{Descend: out}
		}
	case *grovev1.RangeCall_Reconcile:
		var out *grovev1.ReconcileResponse
		if out, err = resp.Reconcile(ctx, x.Reconcile); err == nil {
			a.Answer = &grovev1.RangeAnswer_Reconcile{Reconcile: out}
		}
	case *grovev1.RangeCall_Push:
		var out *grovev1.PushResponse
		if out, err = resp.Push(ctx, x.Push); err == nil {
			a.Answer = &grovev1.RangeAnswer_Push{Push: out}
		}
	case *grovev1.RangeCall_Commit:
		var out *grovev1.CommitResponse
		if out, err = resp.Commit(ctx, x.Commit); err == nil {
			a.Answer = &grovev1.RangeAnswer_Commit{Commit: out}
		}
	case *grovev1.RangeCall_Close:
		var out *grovev1.CloseResponse
		if out, err = resp.Close(ctx, x.Close); err == nil {
			a.Answer = &grovev1.RangeAnswer_Close{Close: out}
		}
	}
	if err != nil {
		a.Answer = &grovev1.RangeAnswer_Error{Error: &grovev1.RangeError{Code: Code(err), Message: err.Error()}}
	}
	return &a
}

// Hello implements Peer: it starts a per-range session with the Responder
// of the range the request names, or fails with ErrIncompatible when the
// node holds no such range.
func (r *NodeResponder) Hello(ctx context.Context, req *grovev1.HelloRequest) (*grovev1.HelloResponse, error) {
	p := req.GetParams()
	if p == nil {
		return nil, fmt.Errorf("%w: no parameters", ErrBadMessage)
	}
	rg := token.Range{Lo: p.GetRangeLo(), Hi: p.GetRangeHi()}
	i, ok := r.byLo[rg.Lo]
	if !ok || r.ranges[i] != rg {
		return nil, fmt.Errorf("%w: range %v is not one of this node's %d ranges", ErrIncompatible, rg, len(r.ranges))
	}
	out, err := r.resp[i].Hello(ctx, req)
	if err == nil && len(out.GetSession()) > 0 {
		r.remember(string(out.GetSession()), r.resp[i])
	}
	return out, err
}

// remember records which Responder holds a per-range session.
func (r *NodeResponder) remember(id string, resp *Responder) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sessions) >= maxRoutedSessions && r.Sessions() < len(r.sessions) {
		// Some are gone; which is not knowable from here, so start afresh:
		// a forgotten live session fails its next call with
		// ErrUnknownSession, and its initiator retries.
		clear(r.sessions)
	}
	r.sessions[id] = resp
}

// route returns the Responder of session id; an unknown id goes to the
// first, which answers it with ErrUnknownSession.
func (r *NodeResponder) route(id []byte) *Responder {
	r.mu.Lock()
	defer r.mu.Unlock()
	if resp, ok := r.sessions[string(id)]; ok {
		return resp
	}
	return r.resp[0]
}

// Descend implements Peer.
func (r *NodeResponder) Descend(ctx context.Context, req *grovev1.DescendRequest) (*grovev1.DescendResponse, error) {
	return r.route(req.GetSession()).Descend(ctx, req)
}

// Reconcile implements Peer.
func (r *NodeResponder) Reconcile(ctx context.Context, req *grovev1.ReconcileRequest) (*grovev1.ReconcileResponse, error) {
	return r.route(req.GetSession()).Reconcile(ctx, req)
}

// Push implements Peer.
func (r *NodeResponder) Push(ctx context.Context, req *grovev1.PushRequest) (*grovev1.PushResponse, error) {
	return r.route(req.GetSession()).Push(ctx, req)
}

// Commit implements Peer.
func (r *NodeResponder) Commit(ctx context.Context, req *grovev1.CommitRequest) (*grovev1.CommitResponse, error) {
	return r.route(req.GetSession()).Commit(ctx, req)
}

// Close implements Peer; the session is forgotten.
func (r *NodeResponder) Close(ctx context.Context, req *grovev1.CloseRequest) (*grovev1.CloseResponse, error) {
	out, err := r.route(req.GetSession()).Close(ctx, req)
	r.mu.Lock()
	delete(r.sessions, string(req.GetSession()))
	r.mu.Unlock()
	return out, err
}
