package engine

import (
	"fmt"
	"unsafe"
)

// adderBatch is how many hashed rows an adder holds before it applies them
// to the leaves: enough to amortise the tree lock and the shared row
// counter, and few enough that the leaves it touches stay in L1.
const adderBatch = 256

// pendingRow is a hashed row waiting to be added to its leaf.
type pendingRow struct {
	leaf int
	d    Digest
}

// adder turns rows into leaf updates on one goroutine. Hashing, which is
// nearly all the work, happens outside the tree's lock; the leaf updates are
// applied in batches under one read lock.
type adder struct {
	t       *Tree
	h       Hasher
	n       int
	pending [adderBatch]pendingRow
	added   int64
}

func (t *Tree) newAdder() *adder { return &adder{t: t} }

// add hashes r and queues it for its leaf.
func (a *adder) add(r *Row) error {
	tok := a.t.part.Token(r.Key)
	leaf := a.t.rng.LeafOf(tok, a.t.depth)
	if leaf < 0 {
		return fmt.Errorf("%w: key %q has token %d, tree covers %s", ErrOutOfRange, truncKey(r.Key), tok, a.t.rng)
	}
	p := &a.pending[a.n]
	p.leaf = leaf
	p.d = a.h.Digest(r)
	a.n++
	if a.n == adderBatch {
		return a.flush()
	}
	return nil
}

// flush applies the queued rows to their leaves.
func (a *adder) flush() error {
	if a.n == 0 {
		return nil
	}
	t := a.t
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		a.n = 0
		return ErrClosed
	}
	leaf0 := t.layout.Slot(t.depth, t.depth, 0)
	base := unsafe.Pointer(unsafe.SliceData(t.nodes))
	contiguous := t.layout.LevelContiguous()
	for i := range a.pending[:a.n] {
		p := &a.pending[i]
		var slot int
		if contiguous {
			slot = leaf0 + p.leaf
		} else {
			slot = t.layout.Slot(t.depth, t.depth, p.leaf)
		}
		addLanes(unsafe.Add(base, slot*NodeSize), &p.d, false)
	}
	t.rows.Add(int64(a.n))
	a.added += int64(a.n)
	a.n = 0
	if !t.dirty.Load() {
		t.dirty.Store(true)
	}
	return nil
}
