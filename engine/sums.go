package engine

import (
	"context"
	"fmt"
)

// Sums writes into dst the subtree sums of the len(dst) consecutive nodes at
// level starting at index first: each is the lane-wise sum of the leaves under
// its node, the value that node would hold as a leaf of a tree folded to depth
// level. Because leaf boundaries nest exactly, a node's sum is the same for
// trees of any depth ≥ level built from the same rows, which is what lets two
// peers of different depths compare subtrees without folding either tree.
// Sums(0, 0, dst[:1]) is the sum of the whole tree: the multiset digest of
// its rows. Leaves are always current, so Sums needs no Hash.
func (t *Tree) Sums(ctx context.Context, level, first int, dst []Digest) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return ErrClosed
	}
	if level < 0 || level > t.depth || first < 0 || first > 1<<level || len(dst) > 1<<level-first {
		return fmt.Errorf("%w: %d nodes from (%d, %d) in a tree of depth %d", ErrNodeIndex, len(dst), level, first, t.depth)
	}
	shift := t.depth - level
	contiguous := t.layout.LevelContiguous()
	var done int
	for j := range dst {
		lo, hi := (first+j)<<shift, (first+j+1)<<shift
		var acc [4]uint64
		if contiguous {
			s := t.layout.Slot(t.depth, t.depth, lo) * NodeSize
			leaves := t.nodes[s : s+(hi-lo)*NodeSize]
			for off := 0; off < len(leaves); off += NodeSize {
				sumLanes(&acc, leaves[off:off+NodeSize])
			}
		} else {
			for i := lo; i < hi; i++ {
				sumLanes(&acc, t.node(t.depth, i))
			}
		}
		putLanes(dst[j][:], &acc)
		// A check per 64 Ki leaves keeps a whole-tree sum cancellable
		// without a measurable cost on small subtrees.
		if done += hi - lo; done >= 1<<16 {
			done = 0
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}
