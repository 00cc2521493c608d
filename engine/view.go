package engine

import (
	"context"
	"fmt"
	"sync"
	"unsafe"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine/token"
)

// View is a frozen, read-only tree: a Snapshot of a live tree, a tree file
// opened with Open, or a Fold. Nothing changes its nodes, so everything it
// answers stays true until Close. It is safe for concurrent use.
type View struct {
	mu sync.RWMutex // Close against readers
	shape
	closed bool
	rows   int64
	// hashed is false only for a file left dirty (mid-update): its inner
	// nodes may be stale and, the mapping being read-only, cannot be
	// recomputed in place.
	hashed bool
	file   *fileInfo // the file it was opened from; else nil
}

// Rows is the number of rows the tree held when it was frozen.
func (v *View) Rows() int64 { return v.rows }

// Root returns the root hash. Only a tree file left dirty has none: it
// fails with ErrNotHashed.
func (v *View) Root() (Digest, error) { return v.Node(0, 0) }

// Node returns the node at (level, index), level 0 being the root and level
// Depth the leaves. Inner nodes of a tree file left dirty fail with
// ErrNotHashed.
func (v *View) Node(level, index int) (Digest, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.closed {
		return Digest{}, ErrClosed
	}
	if err := v.checkNode(level, index); err != nil {
		return Digest{}, err
	}
	if level < v.depth && !v.hashed {
		return Digest{}, ErrNotHashed
	}
	return Digest(v.node(level, index)), nil
}

// Sums writes into dst the subtree sums of the len(dst) consecutive nodes
// at level starting at index first, as Tree.Sums does.
func (v *View) Sums(ctx context.Context, level, first int, dst []Digest) error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.closed {
		return ErrClosed
	}
	return subtreeSums(ctx, v.depth, level, first, dst, v.sumLeaves)
}

// Fold returns the view of the given shallower depth that a build from the
// same rows would give, as Tree.Fold does.
func (v *View) Fold(ctx context.Context, depth int) (*View, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.closed {
		return nil, ErrClosed
	}
	return v.fold(ctx, depth, v.rows)
}

// Close unmaps the view's memory and returns it to the budget. Every method
// called afterwards returns ErrClosed. Close is idempotent.
func (v *View) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return nil
	}
	v.closed = true
	return v.unmap()
}

// Snapshot returns a frozen, hashed copy of the tree in its own memory
// charged to the tree's budget: diffs and saves can use it while writes to
// the live tree go on. Writers are held off only while the nodes (and the
// marks of leaves changed since the last Hash) are copied; the copy's dirty
// paths are then rehashed without holding the live tree.
func (t *Tree) Snapshot(ctx context.Context) (*View, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	s, err := t.like(t.depth)
	if err != nil {
		t.mu.Unlock()
		return nil, fmt.Errorf("engine: snapshot: %w", err)
	}
	v := &View{shape: s, rows: t.rows.Load(), hashed: true}
	copy(v.nodes, t.nodes)
	dirty, full := t.dirty.Load(), t.needsFullHash.Load()
	var marks *arena.Region
	if l := t.live.Load(); l != nil && dirty && !full {
		// The marks travel with the copy, so only the changed paths are
		// rehashed, as the live tree's next Hash would.
		if marks, err = arena.Map(t.budget, len(l.bits)*8); err != nil {
			t.mu.Unlock()
			v.Close()
			return nil, fmt.Errorf("engine: snapshot: %w", err)
		}
		copy(marks.Bytes(), unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(l.bits))), len(l.bits)*8))
	}
	t.mu.Unlock()
	if dirty {
		if marks != nil {
			err = rehashMarked(ctx, &v.shape, bitsOf(marks), 0)
			marks.Close()
		} else {
			err = hashLevels(ctx, &v.shape, 0)
		}
		if err != nil {
			v.Close()
			return nil, err
		}
	}
	return v, nil
}

// bitsOf returns r's memory as the words of a bitmap.
func bitsOf(r *arena.Region) []uint64 {
	b := r.Bytes()
	return unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/8)
}

// LeafView is a frozen copy of a tree's leaves alone: what a repair session
// reads (subtree sums, leaf by leaf) without paying to copy, fault in or
// hash the inner levels, which are as large as the leaves. It is safe for
// concurrent use.
type LeafView struct {
	mu     sync.RWMutex // Close against readers
	region *arena.Region
	leaves []byte // 2^depth leaves in index order
	part   token.Partitioner
	rng    token.Range
	depth  int
	rows   int64
	obs    Observer
	closed bool
}

// LeafView returns a frozen copy of the tree's leaves, charged to the
// tree's budget. Writers are held off only while the leaves are copied.
func (t *Tree) LeafView(ctx context.Context) (*LeafView, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	r, err := arena.Map(t.budget, (1<<t.depth)*NodeSize)
	if err != nil {
		return nil, fmt.Errorf("engine: leaf view: %w", err)
	}
	// As for the tree itself (Options.NoHugePages): the copy faults in a
	// few huge pages instead of thousands of small ones. Advice only.
	_ = r.AdviseHugePages()
	v := &LeafView{region: r, leaves: r.Bytes(), part: t.part, rng: t.rng, depth: t.depth, rows: t.rows.Load(), obs: t.obs}
	t.copyLeaves(v.leaves)
	v.obs.TreeOpened()
	return v, nil
}

// Depth is the number of levels below the root of the tree it was taken
// from.
func (v *LeafView) Depth() int { return v.depth }

// Range is the (lo, hi] range the tree covers.
func (v *LeafView) Range() token.Range { return v.rng }

// Partitioner is the partitioner that maps keys to tokens for this tree.
func (v *LeafView) Partitioner() token.Partitioner { return v.part }

// Rows is the number of rows the tree held when the view was taken.
func (v *LeafView) Rows() int64 { return v.rows }

// Sums writes into dst the subtree sums of the len(dst) consecutive nodes
// at level starting at index first, as Tree.Sums does.
func (v *LeafView) Sums(ctx context.Context, level, first int, dst []Digest) error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.closed {
		return ErrClosed
	}
	return subtreeSums(ctx, v.depth, level, first, dst, func(acc *[4]uint64, lo, hi int) {
		sumRun(acc, v.leaves[lo*NodeSize:hi*NodeSize])
	})
}

// Close unmaps the view's memory and returns it to the budget. Every method
// called afterwards returns ErrClosed. Close is idempotent.
func (v *LeafView) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return nil
	}
	v.closed = true
	v.obs.TreeClosed()
	v.leaves = nil
	err := v.region.Close()
	v.region = nil
	return err
}
