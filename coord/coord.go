// Package coord repairs a node against every other replica of its ranges,
// as nodetool repair asks a Cassandra node to: one job per peer covering
// every range the two share, run a few peers at a time, retried when a
// session is cut short, resumed after a crash from the node's own record of
// what it already repaired, and reported per peer.
//
// The package decides what to run and what to make of the outcome; how a
// peer's ranges are reconciled — one repair session per range, or one
// session per pair of nodes over all of them — is the Syncer's.
package coord

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/token"
)

// Range is one of the node's ranges with the other replicas of it.
type Range struct {
	Range token.Range
	Peers []string
}

// Outcome is what a Syncer made of one range with one peer: the session's
// result, or why it failed.
type Outcome struct {
	Range  token.Range
	Result *repair.Result
	Err    error
}

// Syncer reconciles, and repairs on both sides, the given ranges of the
// node with their replicas on peer. It returns an outcome per range, in
// the order given, and what the attempt cost on the network — which a
// session per pair of nodes does not split by range; an error of its own
// means the peer could not be worked with at all (unreachable, refused),
// and fails every range.
type Syncer interface {
	Sync(ctx context.Context, peer string, ranges []token.Range) ([]Outcome, repair.Stats, error)
}

// Record is the node's memory of what its repairs achieved: when each range
// last matched each peer, and the run in progress, so that a run that
// crashed resumes instead of starting over. Run calls it from several
// goroutines at once.
type Record interface {
	// Matched returns when range r last matched peer, if ever.
	Matched(r token.Range, peer string) (time.Time, bool)
	// RecordMatch records that r matched peer at at.
	RecordMatch(r token.Range, peer string, at time.Time) error
	// BeginRun returns the start of the repair run in progress, if one was
	// left unfinished, or else records now as the start of a new one.
	BeginRun(now time.Time) (start time.Time, resumed bool, err error)
	// EndRun records that the run finished.
	EndRun() error
}

// Options tune Run. The zero value runs two peers at a time, with three
// attempts per range and a minute per range.
type Options struct {
	// PeersParallel is how many peers are repaired at once. Default 2.
	PeersParallel int
	// RangeTimeout bounds one attempt at one range: a peer's attempt gets
	// this times the number of its ranges still to do. Default 1 minute.
	RangeTimeout time.Duration
	// Attempts is how many times a range is tried when its session fails
	// with an error worth retrying (repair.ErrChanged, repair.ErrBusy, a
	// timeout, a failed transport). Default 3.
	Attempts int
	// Transient, if set, reports errors of the Syncer's transport worth
	// another attempt, such as rpc.ErrTransport: this package does not
	// know the transport.
	Transient func(error) bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.PeersParallel <= 0 {
		o.PeersParallel = 2
	}
	if o.RangeTimeout <= 0 {
		o.RangeTimeout = time.Minute
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// PeerReport is what a run did with one peer.
type PeerReport struct {
	ID string `json:"id"`
	// Ranges is how many ranges the node shares with the peer;
	// RangesDiffering how many of those differed; RangesSkipped how many
	// an earlier, interrupted run had already repaired.
	Ranges          int `json:"ranges"`
	RangesDiffering int `json:"ranges_differing"`
	RangesSkipped   int `json:"ranges_skipped"`
	// RangesFailed is how many failed every attempt.
	RangesFailed int `json:"ranges_failed"`
	// OnlyHere, OnlyThere and Different are the keys found, over every
	// range, from this node's point of view.
	OnlyHere  []repair.ReportKey `json:"only_here"`
	OnlyThere []repair.ReportKey `json:"only_there"`
	Different []repair.ReportKey `json:"different"`
	// BytesSent, BytesReceived and RoundTrips sum the sessions' costs,
	// failed attempts included.
	BytesSent     int64 `json:"bytes_sent"`
	BytesReceived int64 `json:"bytes_received"`
	RoundTrips    int   `json:"round_trips"`
	// Error is the first failure that made a range give up, if any.
	Error string `json:"error"`
}

// Report is what a run did.
type Report struct {
	Peers []PeerReport `json:"peers"`
	// RangesRepaired counts (range, peer) pairs that ended in sync,
	// RangesFailed those that did not.
	RangesRepaired int `json:"ranges_repaired"`
	RangesFailed   int `json:"ranges_failed"`
	// Resumed reports that the run picked up one a crash interrupted.
	Resumed bool `json:"resumed"`
}

// Differences reports whether the run found any range out of sync.
func (r *Report) Differences() bool {
	for _, p := range r.Peers {
		if p.RangesDiffering > 0 {
			return true
		}
	}
	return false
}

// retryable says whether a failed session is worth another attempt: the
// data moved under it, the peer was busy, or the attempt ran out of time
// or connection. A bad message or an incompatible peer will fail the same
// way again.
func (o *Options) retryable(err error) bool {
	for _, e := range []error{repair.ErrChanged, repair.ErrBusy, repair.ErrNotConverged, context.DeadlineExceeded} {
		if errors.Is(err, e) {
			return true
		}
	}
	return o.Transient != nil && o.Transient(err)
}

// Run repairs every range of ranges with each of its peers through s, at
// most opts.PeersParallel peers at once, and records each range that ends
// in sync with a peer in rec. A run interrupted by a crash is resumed: a
// (range, peer) pair that matched after the interrupted run began is not
// redone. One peer's failure fails only its ranges. Run returns an error
// only if rec fails; failed ranges are in the report.
func Run(ctx context.Context, ranges []Range, s Syncer, rec Record, opts Options) (*Report, error) {
	opts.defaults()
	start, resumed, err := rec.BeginRun(opts.Now())
	if err != nil {
		return nil, err
	}
	byPeer := map[string][]token.Range{}
	for _, r := range ranges {
		for _, p := range r.Peers {
			byPeer[p] = append(byPeer[p], r.Range)
		}
	}
	peers := slices.Sorted(maps.Keys(byPeer))
	rep := &Report{Peers: make([]PeerReport, len(peers)), Resumed: resumed}
	sem := make(chan struct{}, opts.PeersParallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var recErr error
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				rep.Peers[i] = PeerReport{ID: p, Ranges: len(byPeer[p]), RangesFailed: len(byPeer[p]), Error: ctx.Err().Error()}
				return
			}
			defer func() { <-sem }()
			pr, err := repairPeer(ctx, p, byPeer[p], s, rec, start, opts)
			rep.Peers[i] = pr
			if err != nil {
				mu.Lock()
				recErr = errors.Join(recErr, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, p := range rep.Peers {
		rep.RangesFailed += p.RangesFailed
		rep.RangesRepaired += p.Ranges - p.RangesFailed
	}
	if recErr != nil {
		return rep, recErr
	}
	if rep.RangesFailed == 0 {
		// A run with failures stays open: the next run resumes it and
		// redoes only what failed.
		if err := rec.EndRun(); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// repairPeer runs the attempts of one peer. Its error is rec's only.
func repairPeer(ctx context.Context, peer string, ranges []token.Range, s Syncer, rec Record, start time.Time, opts Options) (PeerReport, error) {
	pr := PeerReport{ID: peer, Ranges: len(ranges), OnlyHere: []repair.ReportKey{}, OnlyThere: []repair.ReportKey{}, Different: []repair.ReportKey{}}
	var todo []token.Range
	for _, r := range ranges {
		if at, ok := rec.Matched(r, peer); ok && !at.Before(start) {
			pr.RangesSkipped++
			continue
		}
		todo = append(todo, r)
	}
	differing := map[token.Range]bool{}
	for attempt := 1; len(todo) > 0; attempt++ {
		actx, cancel := context.WithTimeout(ctx, opts.RangeTimeout*time.Duration(len(todo)))
		outs, cost, err := s.Sync(actx, peer, todo)
		cancel()
		pr.BytesSent += cost.BytesSent
		pr.BytesReceived += cost.BytesReceived
		pr.RoundTrips += cost.RoundTrips
		if err == nil && len(outs) != len(todo) {
			err = fmt.Errorf("coord: the syncer gave %d outcomes for %d ranges", len(outs), len(todo))
		}
		if err != nil {
			outs = make([]Outcome, len(todo))
			for i, r := range todo {
				outs[i] = Outcome{Range: r, Err: err}
			}
		}
		var again []token.Range
		var lastErr error
		for _, o := range outs {
			if o.Err == nil && o.Result != nil && (o.Result.InSync || o.Result.Converged) {
				if !o.Result.InSync {
					differing[o.Range] = true
					pr.OnlyHere = append(pr.OnlyHere, repair.ReportKeys(o.Result.OnlyHere)...)
					pr.OnlyThere = append(pr.OnlyThere, repair.ReportKeys(o.Result.OnlyThere)...)
					pr.Different = append(pr.Different, repair.ReportKeys(o.Result.Different)...)
				}
				if err := rec.RecordMatch(o.Range, peer, opts.Now()); err != nil {
					return pr, err
				}
				continue
			}
			if o.Err == nil {
				o.Err = fmt.Errorf("coord: range %v with %s did not converge", o.Range, peer)
			}
			if o.Result != nil && o.Result.DifferingLeaves > 0 {
				// A failed session's result says what it saw, if anything.
				differing[o.Range] = true
			}
			lastErr = fmt.Errorf("range %v: %w", o.Range, o.Err)
			if opts.retryable(o.Err) && attempt < opts.Attempts && ctx.Err() == nil {
				again = append(again, o.Range)
				continue
			}
			pr.RangesFailed++
			if pr.Error == "" {
				pr.Error = lastErr.Error()
			}
		}
		todo = again
	}
	pr.RangesDiffering = len(differing)
	return pr, nil
}

// PerRange is a Syncer that runs one repair session per range, one range
// after another, each repairing both sides.
type PerRange struct {
	// Local returns the node's replica of range r.
	Local func(r token.Range) (repair.Replica, error)
	// Peer returns the peer's side of range r's sessions.
	Peer func(id string, r token.Range) (repair.Peer, error)
	// Options are the sessions' options; Repair is always set.
	Options repair.Options
}

// Sync implements Syncer; the cost is the sum of the sessions'.
func (p PerRange) Sync(ctx context.Context, peer string, ranges []token.Range) ([]Outcome, repair.Stats, error) {
	opts := p.Options
	opts.Repair = true
	out := make([]Outcome, len(ranges))
	var cost repair.Stats
	for i, r := range ranges {
		out[i].Range = r
		local, err := p.Local(r)
		if err != nil {
			out[i].Err = err
			continue
		}
		remote, err := p.Peer(peer, r)
		if err != nil {
			return nil, cost, err
		}
		res, err := repair.Sync(ctx, local, remote, opts)
		out[i].Result, out[i].Err = res, err
		if res != nil {
			cost.BytesSent += res.BytesSent
			cost.BytesReceived += res.BytesReceived
			cost.RoundTrips += res.RoundTrips
		}
	}
	return out, cost, nil
}

// PerPeer is a Syncer that runs one node session per peer over every range
// the two share (repair.SyncNode): one round trip finds the ranges that
// differ, and their sessions travel together, so an attempt costs the round
// trips of its deepest differing range.
type PerPeer struct {
	// Local returns the node's replica of range r.
	Local func(r token.Range) (repair.Replica, error)
	// Peer returns the peer's node session and its ranges in token order,
	// as the ring gives them.
	Peer func(id string) (repair.NodePeer, []token.Range, error)
	// Options are the node sessions' options; Repair is always set.
	Options repair.NodeOptions
}

// Sync implements Syncer; the cost is the node session's own messages.
func (p PerPeer) Sync(ctx context.Context, peer string, ranges []token.Range) ([]Outcome, repair.Stats, error) {
	locals := make([]repair.Replica, len(ranges))
	for i, r := range ranges {
		l, err := p.Local(r)
		if err != nil {
			return nil, repair.Stats{}, err
		}
		locals[i] = l
	}
	remote, theirs, err := p.Peer(peer)
	if err != nil {
		return nil, repair.Stats{}, err
	}
	opts := p.Options
	opts.Repair = true
	opts.PeerRanges = theirs
	res, err := repair.SyncNode(ctx, locals, remote, opts)
	if res == nil {
		return nil, repair.Stats{}, err
	}
	byRange := make(map[token.Range]repair.RangeResult, len(res.Ranges))
	for _, rr := range res.Ranges {
		byRange[rr.Range] = rr
	}
	out := make([]Outcome, len(ranges))
	for i, r := range ranges {
		rr, ok := byRange[r]
		switch {
		case !ok && err != nil:
			out[i] = Outcome{Range: r, Err: err}
		case !ok:
			out[i] = Outcome{Range: r, Err: fmt.Errorf("coord: the node session left range %v out", r)}
		default:
			out[i] = Outcome{Range: r, Result: rr.Result, Err: rr.Err}
		}
	}
	return out, res.Stats, nil
}
