package repair

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/metrics"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
	"google.golang.org/protobuf/proto"
)

// ResponderOptions tune a Responder. The zero value is ready.
type ResponderOptions struct {
	// MaxSessions bounds the sessions open at once (each holds a snapshot of
	// the tree); Hello beyond it fails with ErrBusy. Default 4.
	MaxSessions int
	// IdleTimeout ends a session no call has touched for this long, so an
	// initiator that died mid-session does not pin a snapshot. Default 2 min.
	IdleTimeout time.Duration
	// MaxMessageBytes bounds each answer; a band or a leaf's rows that would
	// not fit fail with ErrLimit. Default DefaultMaxMessageBytes.
	MaxMessageBytes int
	// MaxStagedBytes bounds the rows a session stages for one Commit.
	// Default 256 MiB; initiators commit every CommitBytes, well below it.
	MaxStagedBytes int64
	// OnCommit, if set, is called after each commit that applied rows, with
	// how many; the grove command writes its rows out there.
	OnCommit func(ctx context.Context, applied int) error
	// Metrics, if set, counts sessions (a Hello that finds the replicas in
	// sync is a session of one round trip), their message bytes and round
	// trips, and failures.
	Metrics *metrics.Set
}

func (o *ResponderOptions) fill() {
	if o.MaxSessions <= 0 {
		o.MaxSessions = 4
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 2 * time.Minute
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.MaxStagedBytes <= 0 {
		o.MaxStagedBytes = 256 << 20
	}
}

// Responder answers sessions against one replica. It implements Peer, so an
// initiator in the same process can call it directly; package rpc serves it
// over Connect/gRPC. It is safe for concurrent use by many sessions.
type Responder struct {
	replica Replica
	opts    ResponderOptions

	mu       sync.Mutex
	sessions map[string]*session
	closed   bool
}

// session is the responder's state between calls. Its view is a snapshot
// taken at Hello; every band and every leaf check is computed from it.
type session struct {
	mu      sync.Mutex
	id      string
	view    *engine.LeafView
	release func()
	key     fpKey
	depth   int      // the meeting depth
	subtree Subtree  // the node the session is confined to; the root by default
	level   int      // level of the nodes in pending
	pending []uint64 // nodes of the last band, or the frontier at level 0
	// checks holds, below the meeting depth, checkOf each pending node's
	// sum: its rows are scanned again when the initiator descends into it
	// or reconciles it, and must still add up.
	checks []uint64
	// probe is the span of the last step when it was a probe (pending then
	// holds the probed nodes, at level), zero after a band. target is the
	// level every probe of the session ends at, once one did: the level
	// whose nodes are reconciled. located holds the nodes the initiator
	// located there, with their checks.
	probe, target          int
	located, locatedChecks []uint64
	// leaves are the differing nodes whose rows are reconciled (leaves, or
	// sub-buckets of them at level), with their checks, once reconciling
	// starts.
	leaves, leafChecks []uint64
	staged             []engine.Row
	bytes              int64 // of the staged rows
	failed             bool  // ended by an error
	metrics            *metrics.Set
	applied            int // by the session's commits so far
	timer              *time.Timer
	ended              bool
}

// NewResponder returns a responder for replica.
func NewResponder(replica Replica, opts ResponderOptions) *Responder {
	opts.fill()
	return &Responder{replica: replica, opts: opts, sessions: map[string]*session{}}
}

// Sessions returns how many sessions are open.
func (r *Responder) Sessions() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

// Shutdown ends every session, releasing their snapshots, and refuses new
// ones. (Close is the protocol's call that ends one session.)
func (r *Responder) Shutdown() {
	r.mu.Lock()
	r.closed = true
	all := make([]*session, 0, len(r.sessions))
	for _, s := range r.sessions {
		all = append(all, s)
	}
	clear(r.sessions)
	r.mu.Unlock()
	for _, s := range all {
		s.mu.Lock()
		s.end()
		s.mu.Unlock()
	}
}

// end releases the session's view. The caller holds s.mu.
func (s *session) end() {
	if s.ended {
		return
	}
	s.ended = true
	s.timer.Stop()
	s.release()
	s.staged = nil
	var err error
	if s.failed {
		err = errSessionFailed
	}
	s.metrics.SessionEnded(metrics.Responder, err)
}

// errSessionFailed marks a failed session in the metrics.
var errSessionFailed = errors.New("session failed")

// drop ends the session and forgets it. The caller holds s.mu.
func (r *Responder) drop(s *session) {
	s.end()
	r.mu.Lock()
	if r.sessions[s.id] == s {
		delete(r.sessions, s.id)
	}
	r.mu.Unlock()
}

// lookup finds a session and locks it; the caller unlocks s.mu.
func (r *Responder) lookup(id []byte) (*session, error) {
	r.mu.Lock()
	s := r.sessions[string(id)]
	r.mu.Unlock()
	if s == nil {
		return nil, fmt.Errorf("%w: %x", ErrUnknownSession, id)
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %x has ended", ErrUnknownSession, id)
	}
	s.timer.Reset(r.opts.IdleTimeout)
	return s, nil
}

// fail ends the session on an error that leaves its state unusable, so the
// initiator's retry starts afresh rather than from a half-advanced state.
func (r *Responder) fail(s *session, err error) error {
	s.failed = true
	r.drop(s)
	return err
}

// account counts one answered call in the metrics.
func (r *Responder) account(req, resp proto.Message, err error) {
	m := r.opts.Metrics
	if m == nil {
		return
	}
	var out int64
	if err == nil {
		out = MessageBytes(resp)
	} else {
		m.Error("session")
	}
	m.Exchanged(metrics.Responder, out, MessageBytes(req))
}

// Hello implements Peer.
func (r *Responder) Hello(ctx context.Context, req *grovev1.HelloRequest) (*grovev1.HelloResponse, error) {
	resp, err := r.hello(ctx, req)
	r.account(req, resp, err)
	if m := r.opts.Metrics; m != nil {
		m.SessionStarted(metrics.Responder)
		// A session that ends at Hello — in sync, or refused — ends here;
		// an open one ends when it is dropped.
		if err != nil || len(resp.GetSession()) == 0 {
			m.SessionEnded(metrics.Responder, err)
		}
	}
	return resp, err
}

// Descend implements Peer.
func (r *Responder) Descend(ctx context.Context, req *grovev1.DescendRequest) (*grovev1.DescendResponse, error) {
	resp, err := r.descend(ctx, req)
	r.account(req, resp, err)
	return resp, err
}

// Reconcile implements Peer.
func (r *Responder) Reconcile(ctx context.Context, req *grovev1.ReconcileRequest) (*grovev1.ReconcileResponse, error) {
	resp, err := r.reconcile(ctx, req)
	r.account(req, resp, err)
	return resp, err
}

// Push implements Peer.
func (r *Responder) Push(ctx context.Context, req *grovev1.PushRequest) (*grovev1.PushResponse, error) {
	resp, err := r.push(ctx, req)
	r.account(req, resp, err)
	return resp, err
}

// Commit implements Peer. Each commit applies its batch atomically; with
// more set the session stays open for the next batch, and OnCommit runs once,
// after the last.
func (r *Responder) Commit(ctx context.Context, req *grovev1.CommitRequest) (*grovev1.CommitResponse, error) {
	resp, err := r.commit(ctx, req)
	r.account(req, resp, err)
	return resp, err
}

// Close implements Peer.
func (r *Responder) Close(ctx context.Context, req *grovev1.CloseRequest) (*grovev1.CloseResponse, error) {
	resp, err := r.close(ctx, req)
	r.account(req, resp, err)
	return resp, err
}
