package repair

import (
	"context"
	"fmt"

	"github.com/antientropy/grove/engine"
)

// What both roles do with the rows under a node: the responder to answer
// Descend and Reconcile, the initiator to compare and to ask.
//
// A session's nodes down to the meeting depth are the trees' own, whose sums
// the view holds. Below it they are virtual: the leaf's token span split
// into 2^k equal widths, exactly as the leaves of a deeper tree would split
// it (token.Range nests), each holding the sum of its rows' digests. Both
// sides compute those sums by scanning the rows of the node above, and check
// the scan against what they knew of that node's sum: a write that landed
// after the snapshot fails the session with ErrChanged rather than make it
// compare one state's rows against another's sums.

// leafRows is one node's rows on this side, with their digests and
// fingerprints, checked against the node's known sum.
type leafRows struct {
	rows []engine.Row
	dig  []engine.Digest
	fp   []uint32
	// buf holds the rows' keys and values. It only grows: rows already
	// handed on (into an answer, or kept as differing) keep pointing at
	// what they were given, even after buf moves.
	buf []byte
}

// verify checks that total, the digests of the rows just scanned under node
// at level, is still that node's sum: the view's at a tree level, the kept
// check below the meeting depth.
func verify(ctx context.Context, view *engine.LeafView, depth, level int, node, check uint64, total *engine.Digest) error {
	if level <= depth {
		var want [1]engine.Digest
		if err := view.Sums(ctx, level, int(node), want[:]); err != nil {
			return err
		}
		if *total == want[0] {
			return nil
		}
	} else if checkOf(total) == check {
		return nil
	}
	return fmt.Errorf("%w: the rows of node %d at level %d no longer add up to the snapshot's", ErrChanged, node, level)
}

// scanNode reads the rows of node (at level; check is its kept sum below
// the meeting depth) through replica and checks they add up to its sum.
func scanNode(ctx context.Context, replica Replica, view *engine.LeafView, key *fpKey, depth, level int, node, check uint64, into *leafRows) error {
	into.rows, into.dig, into.fp = into.rows[:0], into.dig[:0], into.fp[:0]
	var h engine.Hasher
	var total engine.Digest
	err := replica.Scan(ctx, view.Range().Leaf(int(node), level), func(row *engine.Row) error {
		d := h.Digest(row)
		total.Add(&d)
		at := len(into.buf)
		into.buf = append(append(into.buf, row.Key...), row.Value...)
		k, end := at+len(row.Key), len(into.buf)
		into.rows = append(into.rows, engine.Row{Key: into.buf[at:k:k], Value: into.buf[k:end:end], TS: row.TS, Deleted: row.Deleted})
		into.dig = append(into.dig, d)
		into.fp = append(into.fp, key.of(&d))
		return nil
	})
	if err != nil {
		return err
	}
	return verify(ctx, view, depth, level, node, check, &total)
}

// childSums writes into dst the sums of node's 2^levels descendants
// `levels` levels below it and, when they are virtual and counts is not
// nil, how many of our rows each holds. Virtual ones come from one scan of
// node's rows, checked against node's sum.
func childSums(ctx context.Context, replica Replica, view *engine.LeafView, depth, level int, node, check uint64, levels int, dst []engine.Digest, counts []int) error {
	child := level + levels
	first := int(node) << levels
	if child <= depth {
		return view.Sums(ctx, child, first, dst)
	}
	clear(dst)
	if counts != nil {
		clear(counts)
	}
	var h engine.Hasher
	var total engine.Digest
	rng, part := view.Range(), view.Partitioner()
	err := replica.Scan(ctx, rng.Leaf(int(node), level), func(row *engine.Row) error {
		d := h.Digest(row)
		total.Add(&d)
		j := rng.LeafOf(part.Token(row.Key), child) - first
		if j < 0 || j >= len(dst) {
			return fmt.Errorf("repair: the replica's scan of node %d at level %d returned a row outside it", node, level)
		}
		dst[j].Add(&d)
		if counts != nil {
			counts[j]++
		}
		return nil
	})
	if err != nil {
		return err
	}
	return verify(ctx, view, depth, level, node, check, &total)
}

// rowSize is what a row costs in a message, near enough to keep answers,
// pushed batches, staged commits and the rows an initiator holds under their
// limits. Both roles use it, so they agree on what fits.
func rowSize(r *engine.Row) int { return len(r.Key) + len(r.Value) + 24 }
