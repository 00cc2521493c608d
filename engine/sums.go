package engine

import (
	"context"
	"fmt"
)

// subtreeSums writes into dst the subtree sums of the len(dst) consecutive
// nodes at level starting at index first, in a tree of the given depth whose
// leaves sumLeaves adds up, a subtree at a time: each is the lane-wise sum of the leaves under
// its node, the value that node would hold as a leaf of a tree folded to
// depth level. Because leaf boundaries nest exactly, a node's sum is the same
// for trees of any depth ≥ level built from the same rows, which is what lets
// two peers of different depths compare subtrees without folding either
// tree. A sum at (0, 0) is the sum of the whole tree: the multiset digest of
// its rows.
func subtreeSums(ctx context.Context, depth, level, first int, dst []Digest, sumLeaves func(acc *[4]uint64, lo, hi int)) error {
	if level < 0 || level > depth || first < 0 || first > 1<<level || len(dst) > 1<<level-first {
		return fmt.Errorf("%w: %d nodes from (%d, %d) in a tree of depth %d", ErrNodeIndex, len(dst), level, first, depth)
	}
	shift := depth - level
	var done int
	for j := range dst {
		lo, hi := (first+j)<<shift, (first+j+1)<<shift
		var acc [4]uint64
		sumLeaves(&acc, lo, hi)
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
