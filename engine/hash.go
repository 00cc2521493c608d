package engine

import (
	"context"
	"fmt"
	"sync"

	"github.com/antientropy/grove/simd"
)

// hashChunk is how many parent nodes one batched kernel call computes: big
// enough to amortise the call, small enough that a cancelled context is
// noticed within microseconds.
const hashChunk = 4096

// hashLevels recomputes every inner node of t from its leaves. The tree is
// cut at a split level with at least 4 subtrees per worker, so workers stay
// busy even when one is descheduled; each worker hashes whole subtrees from
// the leaves up to the split level, then one goroutine finishes the top.
// Callers hold t.mu for writing.
func hashLevels(ctx context.Context, t *Tree, workers int) error {
	if t.depth == 0 {
		return nil
	}
	split := 0
	for split < t.depth && 1<<split < 4*workers {
		split++
	}
	if workers <= 1 || t.depth-split < 4 {
		// Too small to be worth a goroutine: the tree fits in cache.
		return hashSubtree(ctx, t, 0, 0, t.depth-1, newGather(t))
	}
	var (
		wg   sync.WaitGroup
		next = make(chan int, 1<<split)
		errs = make([]error, workers)
	)
	for i := range 1 << split {
		next <- i
	}
	close(next)
	for w := range workers {
		wg.Go(func() {
			g := newGather(t)
			for root := range next {
				if err := hashSubtree(ctx, t, split, root, t.depth-1, g); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return hashSubtree(ctx, t, 0, 0, split-1, newGather(t))
}

// hashSubtree computes the inner nodes of the subtree rooted at (level,
// index) on levels deepest up to level, bottom-up.
func hashSubtree(ctx context.Context, t *Tree, level, index, deepest int, g *gather) error {
	for l := deepest; l >= level; l-- {
		width := 1 << (l - level)
		first := index * width
		for from := first; from < first+width; from += hashChunk {
			if err := ctx.Err(); err != nil {
				return err
			}
			to := min(from+hashChunk, first+width)
			if err := hashRange(t, l, from, to, g); err != nil {
				return err
			}
		}
	}
	return nil
}

// gather is a worker's scratch space for layouts whose levels are not
// contiguous: children are copied in, hashed in one batched call, and the
// parents copied out. The copies cost a few ns per node against ~43 ns to
// hash it, and keep the batched kernel usable for every layout.
type gather struct {
	src, dst []byte
}

// newGather returns scratch space for t's layout, or nil when the layout
// needs none.
func newGather(t *Tree) *gather {
	if t.layout.LevelContiguous() {
		return nil
	}
	return newScratch()
}

// gatherChunk is how many parents one gathered batch holds: 24 KiB of
// scratch, which stays in L1 beside the nodes being read.
const gatherChunk = 256

// hashRange sets the nodes [from, to) of level l from their children.
func hashRange(t *Tree, l, from, to int, g *gather) error {
	if g == nil {
		ps := t.layout.Slot(t.depth, l, from) * NodeSize
		cs := t.layout.Slot(t.depth, l+1, 2*from) * NodeSize
		n := to - from
		if err := simd.HashPairs(t.nodes[ps:ps+n*NodeSize], t.nodes[cs:cs+2*n*NodeSize]); err != nil {
			return fmt.Errorf("engine: hashing level %d: %w", l, err)
		}
		return nil
	}
	for start := from; start < to; start += gatherChunk {
		n := min(gatherChunk, to-start)
		for i := range 2 * n {
			copy(g.src[i*NodeSize:], t.node(l+1, 2*start+i))
		}
		if err := simd.HashPairs(g.dst[:n*NodeSize], g.src[:2*n*NodeSize]); err != nil {
			return fmt.Errorf("engine: hashing level %d: %w", l, err)
		}
		for i := range n {
			copy(t.node(l, start+i), g.dst[i*NodeSize:(i+1)*NodeSize])
		}
	}
	return nil
}
