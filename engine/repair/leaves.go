package repair

import (
	"cmp"
	"context"
	"fmt"
	"slices"

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

// scanUnder reads the rows of node (at level; check is its kept sum below
// the meeting depth) through replica, calls fn with each and its digest,
// and checks the rows add up to the node's sum: the one scan every step
// below a band's sums makes.
func scanUnder(ctx context.Context, replica Replica, view *engine.LeafView, depth, level int, node, check uint64, fn func(row *engine.Row, d *engine.Digest) error) error {
	var h engine.Hasher
	var total engine.Digest
	err := replica.Scan(ctx, view.Range().Leaf(int(node), level), func(row *engine.Row) error {
		d := h.Digest(row)
		total.Add(&d)
		return fn(row, &d)
	})
	if err != nil {
		return err
	}
	return verify(ctx, view, depth, level, node, check, &total)
}

// scanNode reads the rows of node (at level; check is its kept sum below
// the meeting depth) through replica and checks they add up to its sum.
func scanNode(ctx context.Context, replica Replica, view *engine.LeafView, key *fpKey, depth, level int, node, check uint64, into *leafRows) error {
	into.rows, into.dig, into.fp = into.rows[:0], into.dig[:0], into.fp[:0]
	return scanUnder(ctx, replica, view, depth, level, node, check, func(row *engine.Row, d *engine.Digest) error {
		at := len(into.buf)
		into.buf = append(append(into.buf, row.Key...), row.Value...)
		k, end := at+len(row.Key), len(into.buf)
		into.rows = append(into.rows, engine.Row{Key: into.buf[at:k:k], Value: into.buf[k:end:end], TS: row.TS, Deleted: row.Deleted})
		into.dig = append(into.dig, *d)
		into.fp = append(into.fp, key.of(d))
		return nil
	})
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
	rng, part := view.Range(), view.Partitioner()
	return scanUnder(ctx, replica, view, depth, level, node, check, func(row *engine.Row, d *engine.Digest) error {
		j := rng.LeafOf(part.Token(row.Key), child) - first
		if j < 0 || j >= len(dst) {
			return fmt.Errorf("repair: the replica's scan of node %d at level %d returned a row outside it", node, level)
		}
		dst[j].Add(d)
		if counts != nil {
			counts[j]++
		}
		return nil
	})
}

// rowSize is what a row costs in a message, near enough to keep answers,
// pushed batches, staged commits and the rows an initiator holds under their
// limits. Both roles use it, so they agree on what fits.
func rowSize(r *engine.Row) int { return len(r.Key) + len(r.Value) + 24 }

// weigh computes a probe's weight for node (at level; check is its kept sum
// below the meeting depth): Σ (j+1)·fp(descendant j) mod 2^32 over its
// descendants `levels` further down, and the node's own fingerprint. Down to
// the meeting depth the view's sums give it; below, one scan of the node's
// rows does, weighting each row by the descendant it falls in (fingerprints
// are linear, so a row's share of its bucket's weight is its own
// fingerprint times the bucket's weight), checked against the node's sum.
func weigh(ctx context.Context, replica Replica, view *engine.LeafView, key *fpKey, depth, level int, node, check uint64, levels int) (w, fp uint32, err error) {
	target := level + levels
	first := node << levels
	if target <= depth {
		var buf [4096]engine.Digest
		n := uint64(1) << levels
		for at := uint64(0); at < n; {
			chunk := buf[:min(uint64(len(buf)), n-at)]
			if err := view.Sums(ctx, target, int(first+at), chunk); err != nil {
				return 0, 0, err
			}
			for i := range chunk {
				f := key.of(&chunk[i])
				w += uint32(at+uint64(i)+1) * f
				fp += f
			}
			at += uint64(len(chunk))
		}
		return w, fp, nil
	}
	rng, part := view.Range(), view.Partitioner()
	var total engine.Digest
	err = scanUnder(ctx, replica, view, depth, level, node, check, func(row *engine.Row, d *engine.Digest) error {
		j := uint64(rng.LeafOf(part.Token(row.Key), target)) - first
		if j >= 1<<levels {
			return fmt.Errorf("repair: the replica's scan of node %d at level %d returned a row outside it", node, level)
		}
		total.Add(d)
		w += uint32(j+1) * key.of(d)
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return w, key.of(&total), nil
}

// locatedCheck returns the check (checkOf its sum) of node at level
// target, located by a probe under parent (at level; pcheck its kept sum):
// zero at the trees' own levels, where the view holds the sums. Below the
// meeting depth it scans the smallest node above whose sum is known — the
// leaf above, or the probed node when that is itself below the leaves —
// and checks that scan, so that the rows reconciled later are checked
// against the snapshot as a band's would be.
func locatedCheck(ctx context.Context, replica Replica, view *engine.LeafView, depth, level int, parent, pcheck uint64, target int, node uint64) (uint64, error) {
	if target <= depth {
		return 0, nil
	}
	anchor, at, check := parent, level, pcheck
	if level <= depth {
		anchor, at, check = node>>(target-depth), depth, 0
	}
	var sum engine.Digest
	rng, part := view.Range(), view.Partitioner()
	err := scanUnder(ctx, replica, view, depth, at, anchor, check, func(row *engine.Row, d *engine.Digest) error {
		if uint64(rng.LeafOf(part.Token(row.Key), target)) == node {
			sum.Add(d)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return checkOf(&sum), nil
}

// mergeNodes merges two disjoint lists of nodes with their checks into one
// in ring order. a is sorted; b, gathered by probes under different
// nodes, is sorted here.
func mergeNodes(a, ac, b, bc []uint64) (nodes, checks []uint64) {
	if !slices.IsSorted(b) {
		idx := make([]int, len(b))
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(x, y int) int { return cmp.Compare(b[x], b[y]) })
		sb, sc := make([]uint64, len(b)), make([]uint64, len(b))
		for i, x := range idx {
			sb[i], sc[i] = b[x], bc[x]
		}
		b, bc = sb, sc
	}
	nodes, checks = make([]uint64, 0, len(a)+len(b)), make([]uint64, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		if j == len(b) || (i < len(a) && a[i] < b[j]) {
			nodes, checks = append(nodes, a[i]), append(checks, ac[i])
			i++
		} else {
			nodes, checks = append(nodes, b[j]), append(checks, bc[j])
			j++
		}
	}
	return nodes, checks
}
