package repair

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"time"

	"github.com/antientropy/grove/engine"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
)

// The answer to each request a Responder serves. responder.go holds the
// sessions they work on and wraps each answer in its accounting.

// hello answers Hello.
func (r *Responder) hello(ctx context.Context, req *grovev1.HelloRequest) (*grovev1.HelloResponse, error) {
	shape := r.replica.Shape()
	if err := checkParams(shape, req.GetParams()); err != nil {
		return nil, err
	}
	theirs, err := parseDigest(req.GetSum(), "hello.sum")
	if err != nil {
		return nil, err
	}
	key, err := parseSalt(req.GetSalt())
	if err != nil {
		return nil, err
	}
	depth := min(shape.Depth, int(req.GetParams().GetDepth()), MaxSessionDepth)
	sub := subtreeOf(req)
	if err := sub.check(depth, ErrBadMessage, "hello.subtree"); err != nil {
		return nil, err
	}
	resp := &grovev1.HelloResponse{Params: paramsOf(shape)}
	var view *engine.LeafView
	var release func()
	var sum engine.Digest // the snapshot's, once taken
	if sub.Whole() {
		// The live sum settles agreement without a snapshot: the common
		// case of replicas in sync costs one round trip and no copy.
		live, err := r.replica.Sum(ctx)
		if err != nil {
			return nil, err
		}
		if live == theirs {
			resp.Sum = live[:]
			return resp, nil
		}
	} else {
		// A subtree's sum is read from a view: the replica's live tree
		// gives its root alone. The view serves the session if one opens,
		// and a subtree found equal costs no session, whatever MaxSessions.
		if view, release, err = r.replica.View(ctx); err != nil {
			return nil, fmt.Errorf("%w: cannot take a snapshot: %v", ErrBusy, err)
		}
		if sum, err = nodeSum(ctx, view, sub); err != nil {
			release()
			return nil, err
		}
		if sum == theirs {
			release()
			resp.Sum = sum[:]
			return resp, nil
		}
	}
	// The initiator picks the first band before it knows our depth: a band
	// deeper than the meeting depth stops at it.
	levels := int(req.GetLevels())
	if levels < 1 || levels > MaxBandLevels {
		if release != nil {
			release()
		}
		return nil, fmt.Errorf("%w: hello.levels is %d, want 1..%d", ErrBadMessage, levels, MaxBandLevels)
	}
	// It stops at the meeting depth: the initiator goes on into the leaves
	// only where it finds them dense.
	levels = min(levels, depth-sub.Level)

	r.mu.Lock()
	busy, closed := len(r.sessions) >= r.opts.MaxSessions, r.closed
	r.mu.Unlock()
	if busy || closed {
		if release != nil {
			release()
		}
		if closed {
			return nil, fmt.Errorf("%w: responder closed", ErrBusy)
		}
		return nil, fmt.Errorf("%w: %d sessions open", ErrBusy, r.opts.MaxSessions)
	}
	if view == nil {
		if view, release, err = r.replica.View(ctx); err != nil {
			return nil, fmt.Errorf("%w: cannot take a snapshot: %v", ErrBusy, err)
		}
		if sum, err = nodeSum(ctx, view, sub); err != nil {
			release()
			return nil, err
		}
	}
	resp.Sum = sum[:]
	if sum == theirs {
		release()
		return resp, nil
	}
	s := &session{view: view, release: release, key: key, depth: depth, level: sub.Level, subtree: sub, metrics: r.opts.Metrics}
	if levels == 0 {
		s.pending, s.checks = []uint64{sub.Index}, []uint64{0}
	} else {
		band, err := s.band(ctx, r.replica, []uint64{sub.Index}, []uint64{0}, levels, r.opts.MaxMessageBytes)
		if err != nil {
			release()
			return nil, err
		}
		resp.Band = band
	}
	var id [16]byte
	rand.Read(id[:])
	s.id = string(id[:])
	resp.Session = id[:]
	s.timer = time.AfterFunc(r.opts.IdleTimeout, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		r.drop(s)
	})
	r.mu.Lock()
	if len(r.sessions) >= r.opts.MaxSessions || r.closed {
		r.mu.Unlock()
		s.mu.Lock()
		s.end()
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %d sessions open", ErrBusy, r.opts.MaxSessions)
	}
	r.sessions[s.id] = s
	r.mu.Unlock()
	return resp, nil
}

// band computes the fingerprints of the nodes `levels` below each frontier
// node — all but the last of each 2^levels — and makes them pending. Below
// the meeting depth they are virtual, summed from a scan of the frontier
// node's rows, which must add up to its known sum (checks).
func (s *session) band(ctx context.Context, replica Replica, frontier, checks []uint64, levels, maxBytes int) (*grovev1.Band, error) {
	level := s.level + levels
	if levels < 1 || levels > MaxBandLevels || level > maxLevel(s.depth) {
		return nil, fmt.Errorf("%w: a band of %d levels from level %d (session depth %d, deepest %d)", ErrBadMessage, levels, s.level, s.depth, maxLevel(s.depth))
	}
	if s.target != 0 && level > s.target {
		return nil, fmt.Errorf("%w: a band to level %d, past the probes' level %d", ErrBadMessage, level, s.target)
	}
	per := 1 << levels
	n := int64(len(frontier)) * int64(per-1)
	if n*FingerprintBytes > int64(maxBytes)-1024 {
		return nil, fmt.Errorf("%w: a band of %d fingerprints exceeds the %d-byte message limit", ErrLimit, n, maxBytes)
	}
	values := make([]byte, 0, n*FingerprintBytes)
	pending := make([]uint64, 0, len(frontier)*per)
	var kept []uint64
	if level > s.depth {
		kept = make([]uint64, 0, len(frontier)*per)
	}
	sums := make([]engine.Digest, per)
	for i, p := range frontier {
		if err := childSums(ctx, replica, s.view, s.depth, s.level, p, checks[i], levels, sums, nil); err != nil {
			return nil, err
		}
		for j := range per - 1 {
			values = putFP(values, s.key.of(&sums[j]))
		}
		first := p << levels
		for j := range per {
			pending = append(pending, first+uint64(j))
			if kept != nil {
				kept = append(kept, checkOf(&sums[j]))
			}
		}
	}
	s.level, s.pending, s.checks = level, pending, kept
	return &grovev1.Band{Level: uint32(level), Values: values}, nil
}

// weights computes, for each frontier node, its weight over its descendants
// `levels` down (weigh), and makes the frontier pending: the initiator
// answers with the nodes it located and those it could not.
func (s *session) weights(ctx context.Context, replica Replica, frontier, checks []uint64, levels, maxBytes int) ([]byte, error) {
	target := s.level + levels
	if levels < 1 || levels > MaxProbeLevels || target > maxLevel(s.depth) || target < s.depth || (s.target != 0 && target != s.target) {
		return nil, fmt.Errorf("%w: a probe of %d levels from level %d (session depth %d, deepest %d, probes' level %d)", ErrBadMessage, levels, s.level, s.depth, maxLevel(s.depth), s.target)
	}
	if int64(len(frontier))*FingerprintBytes > int64(maxBytes)-1024 {
		return nil, fmt.Errorf("%w: a probe of %d nodes exceeds the %d-byte message limit", ErrLimit, len(frontier), maxBytes)
	}
	weights := make([]byte, 0, len(frontier)*FingerprintBytes)
	for i, p := range frontier {
		w, _, err := weigh(ctx, replica, s.view, &s.key, s.depth, s.level, p, checks[i], levels)
		if err != nil {
			return nil, err
		}
		weights = putFP(weights, w)
	}
	s.pending, s.checks, s.probe, s.target = frontier, checks, levels, target
	return weights, nil
}

// next takes the initiator's verdict on the last step: after a band, the
// nodes whose bit differ sets (frontier); after a probe, the nodes it
// located (found, kept in s.located) and those it did not (differ, returned
// to descend under). reconciling says the descent is over: a probe must
// then have located every node.
func (s *session) next(ctx context.Context, replica Replica, differ, found []byte, reconciling bool, what string) (nodes, checks []uint64, err error) {
	if s.probe == 0 {
		if len(found) != 0 {
			return nil, nil, fmt.Errorf("%w: %s.found after a band", ErrBadMessage, what)
		}
		return s.frontier(differ, what+".differ")
	}
	k := s.probe
	marked := 0
	if !reconciling || len(differ) != 0 {
		if marked, err = checkBitmap(differ, len(s.pending), what+".differ"); err != nil {
			return nil, nil, err
		}
	}
	if reconciling && marked != 0 {
		return nil, nil, fmt.Errorf("%w: %s.differ marks %d probed nodes not located, at level %d, not the probes' %d", ErrBadMessage, what, marked, s.level, s.target)
	}
	if !reconciling && marked == 0 {
		return nil, nil, fmt.Errorf("%w: %s.differ marks no probed node to descend under", ErrBadMessage, what)
	}
	idx, err := parseIndexes(found, len(s.pending)-marked, k, what+".found")
	if err != nil {
		return nil, nil, err
	}
	at := 0
	for i, p := range s.pending {
		if marked != 0 && hasBit(differ, i) {
			nodes = append(nodes, p)
			checks = append(checks, s.checks[i])
			continue
		}
		node := p<<k | idx[at]
		at++
		c, err := locatedCheck(ctx, replica, s.view, s.depth, s.level, p, s.checks[i], s.target, node)
		if err != nil {
			return nil, nil, err
		}
		s.located = append(s.located, node)
		s.locatedChecks = append(s.locatedChecks, c)
	}
	s.probe = 0
	return nodes, checks, nil
}

// frontier returns the pending nodes whose bit differ sets, with their
// checks (zero at the trees' own levels, where the view holds the sums).
func (s *session) frontier(differ []byte, what string) (nodes, checks []uint64, err error) {
	n, err := checkBitmap(differ, len(s.pending), what)
	if err != nil {
		return nil, nil, err
	}
	if n == 0 {
		return nil, nil, fmt.Errorf("%w: %s marks no node, but their parents differ", ErrBadMessage, what)
	}
	nodes, checks = make([]uint64, 0, n), make([]uint64, 0, n)
	for i, p := range s.pending {
		if hasBit(differ, i) {
			nodes = append(nodes, p)
			var c uint64
			if s.checks != nil {
				c = s.checks[i]
			}
			checks = append(checks, c)
		}
	}
	return nodes, checks, nil
}

// descend answers Descend.
func (r *Responder) descend(ctx context.Context, req *grovev1.DescendRequest) (*grovev1.DescendResponse, error) {
	s, err := r.lookup(req.GetSession())
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if s.leaves != nil || s.level >= maxLevel(s.depth) {
		return nil, r.fail(s, fmt.Errorf("%w: descend after reconciling began or at the deepest level", ErrBadMessage))
	}
	f, checks, err := s.next(ctx, r.replica, req.GetDiffer(), req.GetFound(), false, "descend")
	if err != nil {
		return nil, r.fail(s, err)
	}
	if req.GetSparse() {
		weights, err := s.weights(ctx, r.replica, f, checks, int(req.GetLevels()), r.opts.MaxMessageBytes)
		if err != nil {
			return nil, r.fail(s, err)
		}
		return &grovev1.DescendResponse{Weights: weights}, nil
	}
	band, err := s.band(ctx, r.replica, f, checks, int(req.GetLevels()), r.opts.MaxMessageBytes)
	if err != nil {
		return nil, r.fail(s, err)
	}
	return &grovev1.DescendResponse{Band: band}, nil
}

// reconciled merges the nodes of the last band with those the probes
// located, in ring order: the nodes whose rows are reconciled.
func (s *session) reconciled(nodes, checks []uint64) ([]uint64, []uint64) {
	if len(s.located) == 0 {
		return nodes, checks
	}
	return mergeNodes(nodes, checks, s.located, s.locatedChecks)
}

// reconcile answers Reconcile.
func (r *Responder) reconcile(ctx context.Context, req *grovev1.ReconcileRequest) (*grovev1.ReconcileResponse, error) {
	s, err := r.lookup(req.GetSession())
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if s.leaves == nil {
		// Rows are reconciled at the leaves or below, and once a probe ran,
		// at its level only: straight after it, or when the bands under
		// the nodes it did not locate reach that level too.
		if (s.target == 0 && s.level < s.depth) || (s.target != 0 && s.probe == 0 && s.level != s.target) {
			return nil, r.fail(s, fmt.Errorf("%w: reconcile at level %d, before the descent reached the leaves (level %d) or the probes' level (%d)", ErrBadMessage, s.level, s.depth, s.target))
		}
		f, checks, err := s.next(ctx, r.replica, req.GetDiffer(), req.GetFound(), true, "reconcile")
		if err != nil {
			return nil, r.fail(s, err)
		}
		s.leaves, s.leafChecks = s.reconciled(f, checks)
		if s.target != 0 {
			s.level = s.target
		}
		s.pending, s.checks, s.located, s.locatedChecks = nil, nil, nil, nil
	} else if len(req.GetDiffer()) != 0 || len(req.GetFound()) != 0 {
		return nil, r.fail(s, fmt.Errorf("%w: reconcile.differ or reconcile.found sent twice", ErrBadMessage))
	}
	first, counts, fps := int(req.GetFirst()), req.GetCounts(), req.GetFingerprints()
	if first > len(s.leaves) || len(counts) > len(s.leaves)-first {
		return nil, r.fail(s, fmt.Errorf("%w: reconcile covers leaves %d..%d of %d", ErrBadMessage, first, first+len(counts), len(s.leaves)))
	}
	if len(fps)%FingerprintBytes != 0 {
		return nil, r.fail(s, fmt.Errorf("%w: reconcile.fingerprints is %d bytes, not a multiple of %d", ErrBadMessage, len(fps), FingerprintBytes))
	}
	total := int64(0)
	for _, c := range counts {
		total += int64(c)
	}
	if total != int64(len(fps)/FingerprintBytes) {
		return nil, r.fail(s, fmt.Errorf("%w: reconcile.counts add up to %d rows but %d fingerprints came", ErrBadMessage, total, len(fps)/FingerprintBytes))
	}

	resp := &grovev1.ReconcileResponse{}
	missing := newBitmap(len(fps) / FingerprintBytes)
	budget := r.opts.MaxMessageBytes - len(missing) - 1024
	var lr leafRows
	theirs := make([]uint32, 0, 16)
	at := 0
	done := 0
	for j, c := range counts {
		if err := scanNode(ctx, r.replica, s.view, &s.key, s.depth, s.level, s.leaves[first+j], s.leafChecks[first+j], &lr); err != nil {
			return nil, r.fail(s, err)
		}
		theirs = theirs[:0]
		for k := range int(c) {
			theirs = append(theirs, fpAt(fps, at+k))
		}
		theirOnly, mineOnly := match(theirs, lr.fp)
		size := 0
		for _, k := range mineOnly {
			size += rowSize(&lr.rows[k])
		}
		if size > budget {
			if j == 0 {
				return nil, r.fail(s, fmt.Errorf("%w: node %d's differing rows (level %d) take %d bytes, over the %d-byte message limit", ErrLimit, s.leaves[first+j], s.level, size, r.opts.MaxMessageBytes))
			}
			break
		}
		budget -= size
		for _, k := range theirOnly {
			setBit(missing, at+k)
		}
		for _, k := range mineOnly {
			row := &lr.rows[k]
			m := &grovev1.Row{Key: row.Key, Ts: row.TS, Deleted: row.Deleted}
			if req.GetKeysOnly() {
				m.Digest = append([]byte(nil), lr.dig[k][:]...)
			} else {
				m.Value = row.Value
			}
			resp.Rows = append(resp.Rows, m)
		}
		at += int(c)
		done++
	}
	resp.Done = uint32(done)
	// Only handled leaves set bits, so the bitmap cut to their fingerprints
	// has nothing set past its end.
	resp.Missing = missing[:(at+7)/8]
	if req.GetEnd() && done == len(counts) && first+done == len(s.leaves) {
		r.drop(s)
	}
	return resp, nil
}

// match pairs two multisets of fingerprints and reports, for each side,
// which positions found no partner.
func match(a, b []uint32) (aOnly, bOnly []int) {
	ia, ib := order(a), order(b)
	i, j := 0, 0
	for i < len(ia) && j < len(ib) {
		switch x, y := a[ia[i]], b[ib[j]]; {
		case x == y:
			i++
			j++
		case x < y:
			aOnly = append(aOnly, ia[i])
			i++
		default:
			bOnly = append(bOnly, ib[j])
			j++
		}
	}
	aOnly = append(aOnly, ia[i:]...)
	bOnly = append(bOnly, ib[j:]...)
	slices.Sort(aOnly)
	slices.Sort(bOnly)
	return aOnly, bOnly
}

func order(v []uint32) []int {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(x, y int) int {
		if v[x] != v[y] {
			if v[x] < v[y] {
				return -1
			}
			return 1
		}
		return x - y
	})
	return idx
}

// stage checks pushed rows and keeps them for Commit. A row may only land in
// a leaf the session found differing: a peer repairs what differed, nothing
// else.
func (r *Responder) stage(s *session, rows []*grovev1.Row) error {
	if s.leaves == nil {
		return fmt.Errorf("%w: rows pushed before reconciling", ErrBadMessage)
	}
	shape := r.replica.Shape()
	for i, m := range rows {
		if len(m.GetKey()) > MaxKeyBytes {
			// The row alone fails: an initiator of this version never pushes
			// one (Result.Refused), and the rest of the batch still applies.
			continue
		}
		row, err := rowFromWire(m, i)
		if err != nil {
			return err
		}
		tok := shape.Partitioner.Token(row.Key)
		if !s.view.Range().Contains(tok) {
			return fmt.Errorf("%w: pushed row %d has token %d outside the range", ErrBadMessage, i, tok)
		}
		node := uint64(s.view.Range().LeafOf(tok, s.level))
		if _, ok := slices.BinarySearch(s.leaves, node); !ok {
			return fmt.Errorf("%w: pushed row %d falls in node %d at level %d, which did not differ", ErrBadMessage, i, node, s.level)
		}
		s.bytes += int64(rowSize(&row))
		if s.bytes > r.opts.MaxStagedBytes {
			return fmt.Errorf("%w: more than %d bytes of rows staged", ErrLimit, r.opts.MaxStagedBytes)
		}
		s.staged = append(s.staged, row)
	}
	return nil
}

// rowFromWire copies a row out of a message, checking it.
func rowFromWire(m *grovev1.Row, i int) (engine.Row, error) {
	if len(m.GetDigest()) != 0 {
		return engine.Row{}, fmt.Errorf("%w: row %d carries a digest instead of its value", ErrBadMessage, i)
	}
	return engine.Row{
		Key:     append([]byte(nil), m.GetKey()...),
		Value:   append([]byte(nil), m.GetValue()...),
		TS:      m.GetTs(),
		Deleted: m.GetDeleted(),
	}, nil
}

// lookupAndStage finds a session, locks it and stages rows in it; the
// caller unlocks s.mu.
func (r *Responder) lookupAndStage(id []byte, rows []*grovev1.Row) (*session, error) {
	s, err := r.lookup(id)
	if err != nil {
		return nil, err
	}
	if err := r.stage(s, rows); err != nil {
		err = r.fail(s, err)
		s.mu.Unlock()
		return nil, err
	}
	return s, nil
}

// push answers Push.
func (r *Responder) push(ctx context.Context, req *grovev1.PushRequest) (*grovev1.PushResponse, error) {
	s, err := r.lookupAndStage(req.GetSession(), req.GetRows())
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return &grovev1.PushResponse{Staged: uint32(len(s.staged))}, nil
}

// commit answers Commit. Each commit applies its batch atomically; with
// more set the session stays open for the next batch, and OnCommit runs once,
// after the last.
func (r *Responder) commit(ctx context.Context, req *grovev1.CommitRequest) (*grovev1.CommitResponse, error) {
	s, err := r.lookupAndStage(req.GetSession(), req.GetRows())
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	staged := s.staged
	s.staged, s.bytes = nil, 0
	if !req.GetMore() {
		r.drop(s)
	}
	applied, err := r.replica.Apply(ctx, staged)
	if err != nil {
		return nil, r.fail(s, err)
	}
	s.applied += applied
	if !req.GetMore() && s.applied > 0 && r.opts.OnCommit != nil {
		if err := r.opts.OnCommit(ctx, s.applied); err != nil {
			return nil, err
		}
	}
	sum, err := liveSum(ctx, r.replica, s.subtree)
	if err != nil {
		return nil, err
	}
	return &grovev1.CommitResponse{Applied: uint32(applied), Sum: sum[:]}, nil
}

// close answers Close.
func (r *Responder) close(ctx context.Context, req *grovev1.CloseRequest) (*grovev1.CloseResponse, error) {
	s, err := r.lookup(req.GetSession())
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	r.drop(s)
	return &grovev1.CloseResponse{}, nil
}
