package engine

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"unsafe"

	"github.com/antientropy/grove/engine/token"
)

// DiffResult is what Diff found.
type DiffResult struct {
	// Depth is the depth at which the trees were compared: the shallower of
	// the two.
	Depth int
	// DifferingLeaves is how many leaves differ at that depth.
	DifferingLeaves int
	// Ranges are the token ranges of the differing leaves, in ring order,
	// with adjacent leaves merged into one range.
	Ranges []token.Range
	// NodesCompared is how many node pairs the walk compared. An exchange
	// between two peers that walks the same way sends one 32-byte hash per
	// compared node, so this is the cost of finding the difference.
	NodesCompared int
}

// Identical reports whether the trees had the same root.
func (r *DiffResult) Identical() bool { return r.DifferingLeaves == 0 }

// Diff compares two hashed trees and returns the token ranges where they
// differ. It descends only into subtrees whose hashes differ, so identical
// trees cost one comparison and k differing leaves cost O(k·depth).
//
// Trees of different depths are compared exactly at the shallower depth: the
// deeper tree is folded first (see Fold), which needs a temporary tree of the
// shallower depth charged to the deeper tree's budget. Trees with different
// partitioners, ranges or format versions give ErrIncompatible.
func Diff(ctx context.Context, a, b *Tree) (res *DiffResult, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m := cmp.Or(a.metrics, b.metrics)
	defer func() {
		if err != nil {
			m.Error("diff")
		}
	}()
	// Before any fold: folding incompatible trees would spend a mapping and
	// a pass over every leaf only to fail, or fail for the wrong reason.
	// The fields compared never change after construction.
	if err := compatible(a, b); err != nil {
		return nil, err
	}
	if a.depth != b.depth {
		deep, shallow := a, b
		if b.depth > a.depth {
			deep, shallow = b, a
		}
		folded, err := deep.Fold(ctx, shallow.depth)
		if err != nil {
			return nil, err
		}
		defer folded.Close()
		if deep == a {
			return Diff(ctx, folded, b)
		}
		return Diff(ctx, a, folded)
	}
	unlock, err := rlockPair(a, b)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := compatible(a, b); err != nil {
		return nil, err
	}
	// Counted here, where the walk happens, not in the folding call above.
	m.Diffed()
	if a.dirty.Load() || b.dirty.Load() {
		return nil, ErrNotHashed
	}
	w := diffWalk{a: a, b: b, res: &DiffResult{Depth: a.depth}}
	if err := w.walk(ctx, 0, 0); err != nil {
		return nil, err
	}
	return w.res, nil
}

// rlockPair read-locks both trees in address order, so that two Diffs of the
// same pair in opposite orders cannot deadlock against waiting writers, and
// read-locks a tree compared with itself only once (RWMutex forbids
// recursive read locks).
func rlockPair(a, b *Tree) (unlock func(), err error) {
	first, second := a, b
	if uintptr(unsafe.Pointer(b)) < uintptr(unsafe.Pointer(a)) {
		first, second = b, a
	}
	first.mu.RLock()
	if second != first {
		second.mu.RLock()
	}
	unlock = func() {
		if second != first {
			second.mu.RUnlock()
		}
		first.mu.RUnlock()
	}
	if a.closed || b.closed {
		unlock()
		return nil, ErrClosed
	}
	return unlock, nil
}

type diffWalk struct {
	a, b *Tree
	res  *DiffResult
}

// walk compares node (level, index) and descends only where it differs.
// Leaves are visited left to right, so ranges come out in ring order and
// merging adjacent ones needs only the last range.
func (w *diffWalk) walk(ctx context.Context, level, index int) error {
	w.res.NodesCompared++
	if bytes.Equal(w.a.node(level, index), w.b.node(level, index)) {
		return nil
	}
	if level == w.a.depth {
		w.res.DifferingLeaves++
		leaf := w.a.rng.Leaf(index, w.a.depth)
		if n := len(w.res.Ranges); n > 0 && w.res.Ranges[n-1].Hi == leaf.Lo {
			w.res.Ranges[n-1].Hi = leaf.Hi
		} else {
			w.res.Ranges = append(w.res.Ranges, leaf)
		}
		return nil
	}
	if level%8 == 0 {
		// Checked now and then rather than per node: a walk down a
		// difference is microseconds, a walk over a whole differing tree
		// is not.
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if err := w.walk(ctx, level+1, 2*index); err != nil {
		return err
	}
	return w.walk(ctx, level+1, 2*index+1)
}

// Fold returns the tree of the given shallower depth that a build from the
// same rows would give, byte for byte: the leaf boundaries nest exactly, so
// each of its leaves is the sum of the 2^(Depth−depth) leaves below it; its
// inner levels are then hashed. The new tree is charged to t's budget and
// has t's partitioner, range and layout; the caller closes it.
func (t *Tree) Fold(ctx context.Context, depth int) (*Tree, error) {
	if depth < 0 || depth > t.depth {
		return nil, fmt.Errorf("%w: cannot fold depth %d to %d", ErrDepth, t.depth, depth)
	}
	t.mu.RLock()
	if t.closed {
		t.mu.RUnlock()
		return nil, ErrClosed
	}
	f, err := t.newLike(depth)
	if err != nil {
		t.mu.RUnlock()
		return nil, fmt.Errorf("engine: folding depth %d to %d: %w", t.depth, depth, err)
	}
	f.version = t.version
	shift := t.depth - depth
	for j := range 1 << depth {
		if j%4096 == 0 {
			if err := ctx.Err(); err != nil {
				t.mu.RUnlock()
				f.Close()
				return nil, err
			}
		}
		var acc [4]uint64
		for i := j << shift; i < (j+1)<<shift; i++ {
			sumLanes(&acc, t.node(t.depth, i))
		}
		putLanes(f.node(depth, j), &acc)
	}
	f.rows.Store(t.rows.Load())
	t.mu.RUnlock()
	if err := f.Hash(ctx); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
