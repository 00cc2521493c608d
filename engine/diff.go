package engine

import (
	"bytes"
	"context"
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

// Comparable is a tree Diff can compare: a live *Tree or a frozen *View.
type Comparable interface {
	// Depth is the number of levels below the root.
	Depth() int
	// Fold returns the tree of the given shallower depth that a build from
	// the same rows would give.
	Fold(ctx context.Context, depth int) (*View, error)
	// base is the tree's nodes, for Diff to read under readLock.
	base() *shape
	// readLock holds the tree's nodes still until unlock is called; it
	// fails if the tree is closed or its inner nodes are not current.
	readLock() (unlock func(), err error)
}

func (t *Tree) base() *shape { return &t.shape }
func (v *View) base() *shape { return &v.shape }

func (t *Tree) readLock() (func(), error) {
	t.mu.RLock()
	switch {
	case t.closed:
		t.mu.RUnlock()
		return nil, ErrClosed
	case t.dirty.Load():
		t.mu.RUnlock()
		return nil, ErrNotHashed
	}
	return t.mu.RUnlock, nil
}

func (v *View) readLock() (func(), error) {
	v.mu.RLock()
	switch {
	case v.closed:
		v.mu.RUnlock()
		return nil, ErrClosed
	case !v.hashed:
		v.mu.RUnlock()
		return nil, ErrNotHashed
	}
	return v.mu.RUnlock, nil
}

// Diff compares two hashed trees and returns the token ranges where they
// differ. It descends only into subtrees whose hashes differ, so identical
// trees cost one comparison and k differing leaves cost O(k·depth).
//
// Trees of different depths are compared exactly at the shallower depth: the
// deeper tree is folded first (see Tree.Fold), which needs a temporary tree
// of the shallower depth charged to the deeper tree's budget. Trees with
// different partitioners, ranges or format versions give ErrIncompatible.
func Diff(ctx context.Context, a, b Comparable) (res *DiffResult, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sa, sb := a.base(), b.base()
	obs := sa.obs
	if _, none := obs.(nopObserver); none {
		obs = sb.obs
	}
	defer func() {
		if err != nil {
			obs.DiffFailed()
		}
	}()
	// Before any fold: folding incompatible trees would spend a mapping and
	// a pass over every leaf only to fail, or fail for the wrong reason.
	// The fields compared never change after construction.
	if err := compatible(sa, sb); err != nil {
		return nil, err
	}
	if sa.depth != sb.depth {
		deep, shallow := a, b
		if sb.depth > sa.depth {
			deep, shallow = b, a
		}
		folded, err := deep.Fold(ctx, shallow.Depth())
		if err != nil {
			return nil, err
		}
		defer folded.Close()
		if deep == a {
			return Diff(ctx, folded, b)
		}
		return Diff(ctx, a, folded)
	}
	unlock, err := lockPair(a, b)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Counted here, where the walk happens, not in the folding call above.
	obs.Diffed()
	w := diffWalk{a: sa, b: sb, res: &DiffResult{Depth: sa.depth}}
	if err := w.walk(ctx, 0, 0); err != nil {
		return nil, err
	}
	return w.res, nil
}

// lockPair read-locks both trees in address order, so that two Diffs of the
// same pair in opposite orders cannot deadlock against waiting writers, and
// read-locks a tree compared with itself only once (RWMutex forbids
// recursive read locks).
func lockPair(a, b Comparable) (unlock func(), err error) {
	first, second := a, b
	if uintptr(unsafe.Pointer(b.base())) < uintptr(unsafe.Pointer(a.base())) {
		first, second = b, a
	}
	u1, err := first.readLock()
	if err != nil {
		return nil, err
	}
	if second.base() == first.base() {
		return u1, nil
	}
	u2, err := second.readLock()
	if err != nil {
		u1()
		return nil, err
	}
	return func() { u2(); u1() }, nil
}

type diffWalk struct {
	a, b *shape
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
