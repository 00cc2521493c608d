package grovepebble

import (
	"context"
	"fmt"
	"sync"

	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/token"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
)

// Router answers repair sessions for every range of a node of many ranges
// on one endpoint: a session repairs one range, so each range has its own
// repair.Responder, and the Router hands a session's Hello to the one whose
// range the Hello names, then every later call of that session to the same
// one. It implements repair.Peer, so rpc.NewHandler serves it.
type Router struct {
	byRange map[token.Range]*repair.Responder
	all     []*repair.Responder

	mu       sync.Mutex
	sessions map[string]*repair.Responder
}

var _ repair.Peer = (*Router)(nil)

// maxRoutedSessions bounds the Router's memory of sessions: a session that
// an initiator abandons ends inside its responder (IdleTimeout) without a
// Close the Router would see, so past this many the Router forgets those
// its responders no longer hold.
const maxRoutedSessions = 4096

// NewRouter returns a Router over every range of n, each with a responder
// made with opts (whose limits, MaxSessions included, are then per range).
// A node of one range gets a Router of its one range.
func NewRouter(n *Node, opts repair.ResponderOptions) *Router {
	r := &Router{byRange: map[token.Range]*repair.Responder{}, sessions: map[string]*repair.Responder{}}
	reps := n.Replicas()
	if reps == nil {
		resp := repair.NewResponder(n, opts)
		r.byRange[n.rng] = resp
		r.all = append(r.all, resp)
		return r
	}
	for _, rr := range reps {
		resp := repair.NewResponder(rr, opts)
		r.byRange[rr.Range()] = resp
		r.all = append(r.all, resp)
	}
	return r
}

// Shutdown ends every session of every range and refuses new ones.
func (r *Router) Shutdown() {
	for _, resp := range r.all {
		resp.Shutdown()
	}
}

// Sessions returns how many sessions are open over all ranges.
func (r *Router) Sessions() int {
	s := 0
	for _, resp := range r.all {
		s += resp.Sessions()
	}
	return s
}

// Hello implements repair.Peer: it starts the session with the responder of
// the range the request names, or fails with repair.ErrIncompatible when
// the node holds no such range.
func (r *Router) Hello(ctx context.Context, req *grovev1.HelloRequest) (*grovev1.HelloResponse, error) {
	p := req.GetParams()
	if p == nil {
		return nil, fmt.Errorf("%w: no parameters", repair.ErrBadMessage)
	}
	rg := token.Range{Lo: p.GetRangeLo(), Hi: p.GetRangeHi()}
	resp, ok := r.byRange[rg]
	if !ok {
		return nil, fmt.Errorf("%w: range %v is not one of this node's %d ranges", repair.ErrIncompatible, rg, len(r.byRange))
	}
	out, err := resp.Hello(ctx, req)
	if err == nil && len(out.GetSession()) > 0 {
		r.remember(string(out.GetSession()), resp)
	}
	return out, err
}

// remember records which responder holds a session.
func (r *Router) remember(id string, resp *repair.Responder) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sessions) >= maxRoutedSessions {
		open := 0
		for _, x := range r.all {
			open += x.Sessions()
		}
		if open < len(r.sessions) {
			// Some are gone; which is not knowable from here, so start
			// afresh: a forgotten live session fails its next call with
			// ErrUnknownSession, and its initiator retries.
			clear(r.sessions)
		}
	}
	r.sessions[id] = resp
}

// route returns the responder of session id; an unknown id goes to the
// first, which answers it with repair.ErrUnknownSession.
func (r *Router) route(id []byte) *repair.Responder {
	r.mu.Lock()
	defer r.mu.Unlock()
	if resp, ok := r.sessions[string(id)]; ok {
		return resp
	}
	return r.all[0]
}

func (r *Router) forget(id []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.sessions, string(id))
}

// Descend implements repair.Peer.
func (r *Router) Descend(ctx context.Context, req *grovev1.DescendRequest) (*grovev1.DescendResponse, error) {
	return r.route(req.GetSession()).Descend(ctx, req)
}

// Reconcile implements repair.Peer.
func (r *Router) Reconcile(ctx context.Context, req *grovev1.ReconcileRequest) (*grovev1.ReconcileResponse, error) {
	return r.route(req.GetSession()).Reconcile(ctx, req)
}

// Push implements repair.Peer.
func (r *Router) Push(ctx context.Context, req *grovev1.PushRequest) (*grovev1.PushResponse, error) {
	return r.route(req.GetSession()).Push(ctx, req)
}

// Commit implements repair.Peer.
func (r *Router) Commit(ctx context.Context, req *grovev1.CommitRequest) (*grovev1.CommitResponse, error) {
	return r.route(req.GetSession()).Commit(ctx, req)
}

// Close implements repair.Peer; the session is forgotten.
func (r *Router) Close(ctx context.Context, req *grovev1.CloseRequest) (*grovev1.CloseResponse, error) {
	out, err := r.route(req.GetSession()).Close(ctx, req)
	r.forget(req.GetSession())
	return out, err
}
