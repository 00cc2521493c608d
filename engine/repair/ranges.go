package repair

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/metrics"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
)

// The node session (docs/PROTOCOL.md, "The node session"): one session
// between two nodes over every range they share. One round trip compares a
// fingerprint of every shared range's sum; then the ranges that differ run
// the per-range session (Sync), side by side, their calls travelling
// together in one Batch per round trip (batch.go). The responder's side is
// NodeResponder (node_responder.go).

// RangesHashBytes is the width of RangesRequest.ranges_hash.
const RangesHashBytes = 16

// NodePeer is a node's responder for every range it holds, as an initiator
// sees it. *NodeResponder implements it in-process; package rpc across a
// network. Its errors wrap this package's sentinels.
type NodePeer interface {
	Ranges(context.Context, *grovev1.RangesRequest) (*grovev1.RangesResponse, error)
	Batch(context.Context, *grovev1.BatchRequest) (*grovev1.BatchResponse, error)
}

// RangesHash is what RangesRequest.ranges_hash carries for a node's ranges
// rs in token order under partitioner p: the first RangesHashBytes of the
// SHA-256 of "grove ranges", the partitioner's ID, the count and each
// range's Lo and Hi, big-endian. Two nodes that derive the same list from
// the ring agree on it; a list sent in full would cost 16 bytes a range.
func RangesHash(p token.Partitioner, rs []token.Range) [RangesHashBytes]byte {
	h := sha256.New()
	b := make([]byte, 0, 64)
	b = append(b, "grove ranges"...)
	b = binary.BigEndian.AppendUint32(b, uint32(p.ID()))
	b = binary.BigEndian.AppendUint32(b, uint32(len(rs)))
	h.Write(b)
	for _, r := range rs {
		b = binary.BigEndian.AppendUint64(b[:0], uint64(r.Lo))
		b = binary.BigEndian.AppendUint64(b, uint64(r.Hi))
		h.Write(b)
	}
	var out [RangesHashBytes]byte
	copy(out[:], h.Sum(nil))
	return out
}

// NodeOptions tune SyncNode.
type NodeOptions struct {
	// Options apply to each range's session. Their MaxMessageBytes bounds
	// the node session's messages; each range's session is given half of
	// it, so that a batch of calls or answers fits (see NodeResponder).
	// Metrics count the node session (its Ranges and Batch messages), not
	// each range's. Subtree is ignored: a node session covers whole ranges.
	Options
	// PeerRanges are the peer's ranges in token order, as the ring gives
	// them: the ranges shared are those of the local replicas among them.
	// Nil means the peer holds exactly the local replicas' ranges.
	PeerRanges []token.Range
	// Parallel bounds the ranges whose sessions run at once, each holding
	// a snapshot of its tree on both sides. Default 64.
	Parallel int
}

// RangeResult is one shared range's outcome in a node session.
type RangeResult struct {
	Range token.Range
	// Result is the range's session: for a range the first round trip
	// found equal, a Result with InSync and Converged set and nothing else.
	*Result
	// Err is the range's failure, if any; the other ranges go on.
	Err error
}

// NodeResult is what a node session found and did.
type NodeResult struct {
	// Ranges are the shared ranges in token order.
	Ranges []RangeResult
	// Differing is how many ranges the fingerprints found differing.
	Differing int
	// Passes is how many Ranges rounds ran: more than one only when the
	// equal ranges' sums disagreed, i.e. a fingerprint collision hid one.
	Passes int
	// Stats count the node session's own messages (Ranges and Batch) and
	// round trips: what crossed the network. Each range's Result counts the
	// calls it made, which travelled inside them.
	Stats
}

// InSync reports that every shared range agreed before any repair.
func (r *NodeResult) InSync() bool { return r.Differing == 0 }

// Err joins the ranges' failures.
func (r *NodeResult) Err() error {
	var errs []error
	for _, rr := range r.Ranges {
		if rr.Err != nil {
			errs = append(errs, fmt.Errorf("range %v: %w", rr.Range, rr.Err))
		}
	}
	return errors.Join(errs...)
}

// nodeRange is one local replica that the peer shares.
type nodeRange struct {
	rep   Replica
	rng   token.Range
	index uint32 // among the peer's ranges
}

// SyncNode runs one node session against peer over every range the local
// replicas share with it: one round trip compares the ranges' sums by
// fingerprint, and the ranges that differ run the per-range session (as
// Sync, with opts.Options), their calls batched so that the whole costs
// the round trips of the deepest range, not of every range. Every call
// runs under ctx: give it a deadline.
//
// It fails with ErrIncompatible when the local replicas disagree on their
// partitioner or overlap, or the peer does not hold opts.PeerRanges. A
// failure of one range's session does not stop the others: it is in that
// range's RangeResult.Err, and SyncNode returns the result with
// NodeResult.Err.
func SyncNode(ctx context.Context, local []Replica, peer NodePeer, opts NodeOptions) (_ *NodeResult, err error) {
	opts.fill()
	if opts.Parallel <= 0 {
		opts.Parallel = 64
	}
	m := opts.Metrics
	m.SessionStarted(metrics.Initiator)
	defer func() { m.SessionEnded(metrics.Initiator, err) }()
	// Each range's session sees half the limit: a batch then holds at
	// least two calls' worth, and the responder bounds its answers alike.
	per := opts.Options
	per.MaxMessageBytes = opts.MaxMessageBytes / 2
	// The Ranges round compares whole ranges: a range found differing is
	// descended whole.
	per.Subtree = Subtree{}
	per.Metrics = nil

	if len(local) == 0 {
		return nil, fmt.Errorf("%w: no local ranges", ErrIncompatible)
	}
	p := local[0].Shape().Partitioner
	shared, peerRanges, err := sharedRanges(local, opts.PeerRanges)
	if err != nil {
		return nil, err
	}
	res := &NodeResult{}
	if len(shared) == 0 {
		return res, fmt.Errorf("%w: the peer's %d ranges include none of the %d local ones", ErrIncompatible, len(peerRanges), len(local))
	}
	res.Ranges = make([]RangeResult, len(shared))
	for i, s := range shared {
		res.Ranges[i].Range = s.rng
	}
	hash := RangesHash(p, peerRanges)
	sharedMap := newBitmap(len(peerRanges))
	for _, s := range shared {
		setBit(sharedMap, int(s.index))
	}

	var differ []int
	for {
		if res.Passes == opts.MaxPasses {
			return res, fmt.Errorf("%w: %d node sessions in a row found the equal ranges' sums disagreeing", ErrNotConverged, res.Passes)
		}
		res.Passes++
		salt := make([]byte, SaltBytes)
		if _, err := io.ReadFull(opts.Rand, salt); err != nil {
			return res, fmt.Errorf("repair: salt: %w", err)
		}
		key, _ := parseSalt(salt)
		sums := make([]engine.Digest, len(shared))
		fps := make([]byte, 0, len(shared)*FingerprintBytes)
		for i, s := range shared {
			if sums[i], err = s.rep.Sum(ctx); err != nil {
				return res, fmt.Errorf("range %v: %w", s.rng, err)
			}
			fps = putFP(fps, key.of(&sums[i]))
		}
		req := &grovev1.RangesRequest{
			Protocol:     ProtocolVersion,
			Format:       engine.FormatVersion,
			Partitioner:  uint32(p.ID()),
			Count:        uint32(len(peerRanges)),
			RangesHash:   hash[:],
			Shared:       sharedMap,
			Salt:         salt,
			Fingerprints: fps,
		}
		resp, err := nodeCall(ctx, &res.Stats, m, peer.Ranges, req)
		if err != nil {
			return res, err
		}
		if _, err := checkBitmap(resp.GetDiffer(), len(shared), "ranges answer's differ"); err != nil {
			return res, err
		}
		theirs, err := parseDigest(resp.GetEqualSum(), "ranges answer's equal_sum")
		if err != nil {
			return res, err
		}
		// The ranges found equal must add up to the same sum on both
		// sides, in full 256-bit arithmetic: a range whose fingerprints
		// collided (about 2^-32 a range) fails the check, and the next
		// pass, with a new salt, finds it.
		var ours engine.Digest
		differ = differ[:0]
		for i := range shared {
			if hasBit(resp.GetDiffer(), i) {
				differ = append(differ, i)
			} else {
				ours.Add(&sums[i])
			}
		}
		if ours == theirs {
			break
		}
	}
	res.Differing = len(differ)
	for i := range res.Ranges {
		res.Ranges[i].Result = &Result{InSync: true, Converged: true}
	}
	if len(differ) == 0 {
		return res, nil
	}

	b := newBatcher(ctx, peer, opts.MaxMessageBytes, &res.Stats, m)
	workers := min(opts.Parallel, len(differ))
	b.active = workers
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for range workers {
		wg.Go(func() {
			// A worker stays active in the batcher from one range's session
			// to the next, so a batch never leaves without it by accident.
			defer b.end()
			for {
				mu.Lock()
				if next == len(differ) {
					mu.Unlock()
					return
				}
				i := differ[next]
				next++
				mu.Unlock()
				s := shared[i]
				r, err := Sync(ctx, s.rep, &rangePeer{b: b, index: s.index}, per)
				res.Ranges[i].Result, res.Ranges[i].Err = r, err
			}
		})
	}
	wg.Wait()
	return res, res.Err()
}

// sharedRanges checks the local replicas and returns those the peer holds
// too, in token order, with the peer's ranges (the local ones when
// peerRanges is nil).
func sharedRanges(local []Replica, peerRanges []token.Range) ([]nodeRange, []token.Range, error) {
	p := local[0].Shape().Partitioner
	all := make([]nodeRange, len(local))
	for i, rep := range local {
		sh := rep.Shape()
		if sh.Partitioner.ID() != p.ID() {
			return nil, nil, fmt.Errorf("%w: local replicas of partitioners %s and %s", ErrIncompatible, p.Name(), sh.Partitioner.Name())
		}
		all[i] = nodeRange{rep: rep, rng: sh.Range}
	}
	slices.SortFunc(all, func(a, b nodeRange) int { return cmp.Compare(a.rng.Lo, b.rng.Lo) })
	for i := 1; i < len(all); i++ {
		if all[i].rng.Lo < all[i-1].rng.Hi {
			return nil, nil, fmt.Errorf("%w: local ranges %v and %v overlap", ErrIncompatible, all[i-1].rng, all[i].rng)
		}
	}
	if peerRanges == nil {
		peerRanges = make([]token.Range, len(all))
		for i, s := range all {
			peerRanges[i] = s.rng
		}
	}
	var shared []nodeRange
	for i, r := range peerRanges {
		if i > 0 && r.Lo < peerRanges[i-1].Hi {
			return nil, nil, fmt.Errorf("%w: the peer's ranges %v and %v are not in token order or overlap", ErrIncompatible, peerRanges[i-1], r)
		}
		j, found := slices.BinarySearchFunc(all, r.Lo, func(s nodeRange, lo token.Token) int { return cmp.Compare(s.rng.Lo, lo) })
		if found && all[j].rng == r {
			s := all[j]
			s.index = uint32(i)
			shared = append(shared, s)
		}
	}
	return shared, peerRanges, nil
}

// nodeCall runs one round trip of the node session and counts it in st and
// m.
func nodeCall[Req, Resp proto.Message](ctx context.Context, st *Stats, m *metrics.Set, f func(context.Context, Req) (Resp, error), req Req) (Resp, error) {
	sent := MessageBytes(req)
	st.BytesSent += sent
	resp, err := f(ctx, req)
	if err != nil {
		m.Error("session")
		m.Exchanged(metrics.Initiator, sent, 0)
		return resp, err
	}
	received := MessageBytes(resp)
	st.RoundTrips++
	st.BytesReceived += received
	m.Exchanged(metrics.Initiator, sent, received)
	return resp, nil
}
