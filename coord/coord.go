// Package coord repairs a node against every other replica of its ranges,
// as nodetool repair asks a Cassandra node to: one job per peer covering
// every range the two share, run a few peers at a time, retried when a
// session is cut short, resumed after a crash from the node's own record of
// what it already repaired, and reported per peer.
//
// The package decides what to run and what to make of the outcome; how a
// peer's ranges are reconciled — one repair session per range, or one
// session per pair of nodes over all of them — is the Syncer's.
//
// A range whose attempts keep timing out — differences too many to move
// within RangeTimeout, a slow peer — is split rather than failed, when the
// Syncer can run subtree sessions (SubtreeSyncer): after two timeouts it is
// run as two sessions over the halves of its tree (repair.Subtree), each
// with the whole RangeTimeout, and a half that times out is halved again,
// down to Options.MaxSplitLevel. The range counts as repaired, and its
// match is recorded, only when every part ended in sync or converged.
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
	"github.com/antientropy/grove/ring"
)

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

// SubtreeSyncer is a Syncer that can also run one session over a subtree
// of a range's tree (repair.Subtree), repairing both sides' rows under it:
// what Run splits a range into when its sessions keep timing out. Run
// splits no range of a Syncer without it. The cost returned is the
// session's.
type SubtreeSyncer interface {
	Syncer
	SyncSubtree(ctx context.Context, peer string, r token.Range, s repair.Subtree) (*repair.Result, repair.Stats, error)
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

// MemRecord is a Record kept in memory, for a node with nothing to keep
// it in across restarts (an in-process ring, a test): a run it records is
// resumed only within the process.
type MemRecord struct {
	mu      sync.Mutex
	matched map[matchKey]time.Time
	run     *time.Time
}

type matchKey struct {
	r    token.Range
	peer string
}

// Matched implements Record.
func (m *MemRecord) Matched(r token.Range, peer string) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	at, ok := m.matched[matchKey{r, peer}]
	return at, ok
}

// RecordMatch implements Record.
func (m *MemRecord) RecordMatch(r token.Range, peer string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.matched == nil {
		m.matched = map[matchKey]time.Time{}
	}
	m.matched[matchKey{r, peer}] = at
	return nil
}

// BeginRun implements Record.
func (m *MemRecord) BeginRun(now time.Time) (time.Time, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.run != nil {
		return *m.run, true, nil
	}
	m.run = &now
	return now, false, nil
}

// EndRun implements Record.
func (m *MemRecord) EndRun() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.run = nil
	return nil
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
	// MaxSplitLevel bounds the splitting of a range whose sessions keep
	// timing out (SubtreeSyncer): at level L a part is one of the 2^L
	// subtrees of the range's tree at that level. A part at this level
	// that times out is retried as a range is (Attempts), then fails the
	// range. Default 6 (64 parts); negative never splits.
	MaxSplitLevel int
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
	if o.MaxSplitLevel == 0 {
		o.MaxSplitLevel = 6
	}
	o.MaxSplitLevel = min(o.MaxSplitLevel, repair.MaxSessionDepth)
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
	// RangesSplit is how many ranges were run as subtree sessions after
	// their sessions timed out twice, and SubtreeSessions how many such
	// sessions they took, attempts included.
	RangesSplit     int `json:"ranges_split"`
	SubtreeSessions int `json:"subtree_sessions"`
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

// addCost counts what an attempt cost on the network.
func (pr *PeerReport) addCost(c repair.Stats) {
	pr.BytesSent += c.BytesSent
	pr.BytesReceived += c.BytesReceived
	pr.RoundTrips += c.RoundTrips
}

// addKeys lists the keys a session found differing.
func (pr *PeerReport) addKeys(res *repair.Result) {
	pr.OnlyHere = append(pr.OnlyHere, repair.ReportKeys(res.OnlyHere)...)
	pr.OnlyThere = append(pr.OnlyThere, repair.ReportKeys(res.OnlyThere)...)
	pr.Different = append(pr.Different, repair.ReportKeys(res.Different)...)
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

// timedOut says whether a session failed on its own attempt's deadline,
// rather than on the run's: the case a smaller part may fit in.
func timedOut(err error, ctx context.Context) bool {
	return errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil
}

// Run repairs every range of ranges — a node's, as ring.RangesOf gives
// them — with each of its peers through s, at
// most opts.PeersParallel peers at once, and records each range that ends
// in sync with a peer in rec. A run interrupted by a crash is resumed: a
// (range, peer) pair that matched after the interrupted run began is not
// redone. One peer's failure fails only its ranges. Run returns an error
// only if rec fails; failed ranges are in the report.
func Run(ctx context.Context, ranges []ring.Replica, s Syncer, rec Record, opts Options) (*Report, error) {
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
	ss, canSplit := s.(SubtreeSyncer)
	canSplit = canSplit && opts.MaxSplitLevel > 0
	timeouts := map[token.Range]int{}
	var split []token.Range
	for attempt := 1; len(todo) > 0; attempt++ {
		actx, cancel := context.WithTimeout(ctx, opts.RangeTimeout*time.Duration(len(todo)))
		outs, cost, err := s.Sync(actx, peer, todo)
		cancel()
		pr.addCost(cost)
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
					pr.addKeys(o.Result)
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
			if canSplit && timedOut(o.Err, ctx) {
				// Twice out of time: another try of the whole would likely
				// be too, its halves each get the whole deadline.
				if timeouts[o.Range]++; timeouts[o.Range] >= min(2, opts.Attempts) {
					split = append(split, o.Range)
					continue
				}
			}
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
	for _, r := range split {
		pr.RangesSplit++
		sp := &splitter{ss: ss, peer: peer, r: r, opts: &opts, pr: &pr}
		var failed error
		for _, half := range (repair.Subtree{}).Halves() {
			if err := sp.part(ctx, half); err != nil && failed == nil {
				failed = err
			}
		}
		if sp.differs {
			differing[r] = true
		}
		if failed != nil {
			pr.RangesFailed++
			if pr.Error == "" {
				pr.Error = fmt.Sprintf("range %v, split: %v", r, failed)
			}
			continue
		}
		if err := rec.RecordMatch(r, peer, opts.Now()); err != nil {
			return pr, err
		}
	}
	pr.RangesDiffering = len(differing)
	return pr, nil
}

// splitter runs one range with one peer as subtree sessions.
type splitter struct {
	ss   SubtreeSyncer
	peer string
	r    token.Range
	opts *Options
	pr   *PeerReport
	// differs records that some part of the range differed.
	differs bool
}

// part runs subtree sub of the range, each attempt with the whole
// RangeTimeout, halving it again when it times out above MaxSplitLevel, and
// returns the failure that left some of it unrepaired, if any. Its halves
// both run even when one fails: what the other repairs stays repaired.
func (sp *splitter) part(ctx context.Context, sub repair.Subtree) error {
	var lastErr error
	for attempt := 1; attempt <= sp.opts.Attempts; attempt++ {
		actx, cancel := context.WithTimeout(ctx, sp.opts.RangeTimeout)
		res, cost, err := sp.ss.SyncSubtree(actx, sp.peer, sp.r, sub)
		cancel()
		sp.pr.SubtreeSessions++
		sp.pr.addCost(cost)
		if err == nil && res != nil && (res.InSync || res.Converged) {
			if !res.InSync {
				sp.differs = true
				sp.pr.addKeys(res)
			}
			return nil
		}
		if err == nil {
			err = fmt.Errorf("coord: subtree %v of range %v with %s did not converge", sub, sp.r, sp.peer)
		}
		if res != nil && res.DifferingLeaves > 0 {
			sp.differs = true
		}
		lastErr = fmt.Errorf("subtree %v: %w", sub, err)
		if timedOut(err, ctx) && sub.Level < sp.opts.MaxSplitLevel {
			var failed error
			for _, half := range sub.Halves() {
				if err := sp.part(ctx, half); err != nil && failed == nil {
					failed = err
				}
			}
			return failed
		}
		if !sp.opts.retryable(err) || ctx.Err() != nil {
			break
		}
	}
	return lastErr
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
			cost.Add(res.Stats)
		}
	}
	return out, cost, nil
}

// SyncSubtree implements SubtreeSyncer: one session over subtree sub of
// range r.
func (p PerRange) SyncSubtree(ctx context.Context, peer string, r token.Range, sub repair.Subtree) (*repair.Result, repair.Stats, error) {
	local, err := p.Local(r)
	if err != nil {
		return nil, repair.Stats{}, err
	}
	remote, err := p.Peer(peer, r)
	if err != nil {
		return nil, repair.Stats{}, err
	}
	opts := p.Options
	opts.Repair, opts.Subtree = true, sub
	return syncStats(repair.Sync(ctx, local, remote, opts))
}

// syncStats passes on a session's outcome with its cost.
func syncStats(res *repair.Result, err error) (*repair.Result, repair.Stats, error) {
	if res == nil {
		return nil, repair.Stats{}, err
	}
	return res, res.Stats, err
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
	// RangePeer, if set, returns the peer's side of per-range sessions,
	// which SyncSubtree runs. Unset, SyncSubtree uses the node session's
	// peer when it answers per-range sessions too, as repair.NodeResponder
	// and rpc.Client do, routing each by its range.
	RangePeer func(id string) (repair.Peer, error)
}

// SyncSubtree implements SubtreeSyncer: one per-range session over subtree
// sub of range r, outside any node session. Its messages are held to half
// the node session's limit, as a node session holds each range's, since
// the peer's responder answers each range within that. It fails with an
// error wrapping errors.ErrUnsupported when the peer answers node sessions
// only.
func (p PerPeer) SyncSubtree(ctx context.Context, peer string, r token.Range, sub repair.Subtree) (*repair.Result, repair.Stats, error) {
	local, err := p.Local(r)
	if err != nil {
		return nil, repair.Stats{}, err
	}
	var remote repair.Peer
	if p.RangePeer != nil {
		remote, err = p.RangePeer(peer)
	} else {
		var np repair.NodePeer
		np, _, err = p.Peer(peer)
		if err == nil {
			var ok bool
			if remote, ok = np.(repair.Peer); !ok {
				err = fmt.Errorf("coord: peer %s answers no per-range session to run subtree %v of range %v in: %w", peer, sub, r, errors.ErrUnsupported)
			}
		}
	}
	if err != nil {
		return nil, repair.Stats{}, err
	}
	opts := p.Options.Options
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = repair.DefaultMaxMessageBytes
	}
	opts.MaxMessageBytes /= 2
	opts.Repair, opts.Subtree = true, sub
	return syncStats(repair.Sync(ctx, local, remote, opts))
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
