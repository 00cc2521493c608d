package engine

import (
	"context"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/simd"
)

// Live trees: a storage node keeps a tree current on every write instead of
// rebuilding it for every repair. A write changes one leaf in O(1) — the
// leaf sum subtracts the old row's digest and adds the new one — and marks
// the leaf in a bitmap; Hash then recomputes only the paths above marked
// leaves. docs/LIVE.md describes how a node feeds the tree.

// liveState is the dirty-leaf bitmap: one bit per leaf, set by updates and
// cleared by Hash. It lives outside the Go heap like the nodes, charged to
// the tree's budget (1/256 of a tree's size), and is made on the first
// update, so trees that are only ever built pay nothing.
type liveState struct {
	region *arena.Region
	bits   []uint64
}

// liveBits returns the bitmap, making it on first use. Callers hold t.mu
// (either side).
func (t *Tree) liveBits() ([]uint64, error) {
	if l := t.live.Load(); l != nil {
		return l.bits, nil
	}
	t.liveMu.Lock()
	defer t.liveMu.Unlock()
	if l := t.live.Load(); l != nil {
		return l.bits, nil
	}
	words := (1<<t.depth + 63) / 64
	r, err := arena.Map(t.budget, words*8)
	if err != nil {
		return nil, fmt.Errorf("engine: dirty-leaf bitmap: %w", err)
	}
	l := &liveState{region: r, bits: unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(r.Bytes()))), words)}
	t.live.Store(l)
	return l.bits, nil
}

// closeLive releases the bitmap. Callers hold t.mu for writing.
func (t *Tree) closeLive() error {
	if l := t.live.Swap(nil); l != nil {
		return l.region.Close()
	}
	return nil
}

// UpdateDigest applies one change to the leaf of key: it subtracts old and
// adds new (either may be nil), and marks the leaf for the next Hash. It is
// O(1), safe from many goroutines at once, and allocates nothing.
// The row count changes by +1 for an insert (old nil), −1 for a purge (new
// nil), and not at all for a replace.
func (t *Tree) UpdateDigest(key []byte, old, new *Digest) error {
	if old == nil && new == nil {
		return nil
	}
	tok := t.part.Token(key)
	leaf := t.rng.LeafOf(tok, t.depth)
	if leaf < 0 {
		return outOfRange(key, tok, t.rng)
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return ErrClosed
	}
	if err := t.beginWrite(); err != nil {
		return err
	}
	bits, err := t.liveBits()
	if err != nil {
		return err
	}
	node := t.node(t.depth, leaf)
	band := &t.bands[leaf>>t.bandShift]
	band.Lock()
	if old != nil {
		addLeaf(node, old, true)
	}
	if new != nil {
		addLeaf(node, new, false)
	}
	band.Unlock()
	atomic.OrUint64(&bits[leaf>>6], 1<<(leaf&63))
	switch {
	case old == nil:
		t.rows.Add(1)
	case new == nil:
		t.rows.Add(-1)
	}
	t.markDirty()
	return nil
}

// Update applies one change given whole rows: Update(nil, r) inserts r,
// Update(old, new) replaces old by new (a tombstone is a new row with
// Deleted set), Update(old, nil) purges old, as after tombstone garbage
// collection. old and new must have the same key.
func (t *Tree) Update(old, new *Row) error {
	var od, nd *Digest
	var key []byte
	if old != nil {
		d := RowDigest(old)
		od, key = &d, old.Key
	}
	if new != nil {
		d := RowDigest(new)
		nd = &d
		if key != nil && string(key) != string(new.Key) {
			return fmt.Errorf("%w: old key %q, new key %q", ErrBadUpdate, truncKey(key), truncKey(new.Key))
		}
		key = new.Key
	}
	return t.UpdateDigest(key, od, nd)
}

// Insert adds a row whose key the tree does not hold.
func (t *Tree) Insert(r *Row) error { return t.Update(nil, r) }

// Replace replaces old by new (same key): a new value, or a tombstone.
func (t *Tree) Replace(old, new *Row) error { return t.Update(old, new) }

// Delete replaces old by a tombstone for its key written at ts.
func (t *Tree) Delete(old *Row, ts int64) error {
	return t.Update(old, &Row{Key: old.Key, TS: ts, Deleted: true})
}

// Purge removes old entirely (a tombstone purged by compaction, or a row
// dropped with its range).
func (t *Tree) Purge(old *Row) error { return t.Update(old, nil) }

// rehashDirty recomputes the inner nodes above the leaves marked in bits,
// level by level with the batched kernel, and clears the marks. Callers hold
// t.mu for writing.
func rehashDirty(ctx context.Context, t *Tree, marks []uint64, workers int) error {
	var cur []int
	for w, word := range marks {
		for word != 0 {
			cur = append(cur, w*64+bits.TrailingZeros64(word))
			word &= word - 1
		}
	}
	if len(cur) > 1<<t.depth/8 {
		// Most paths are dirty: the full, subtree-parallel pass is faster
		// than gathering them.
		clear(marks)
		return hashLevels(ctx, t, workers)
	}
	clear(marks)
	g := newScratch() // shared by the levels hashed on this goroutine
	for l := t.depth - 1; l >= 0 && len(cur) > 0; l-- {
		// cur is sorted, so the parents come out sorted with duplicates
		// adjacent.
		parents := cur[:0]
		for _, c := range cur {
			if p := c >> 1; len(parents) == 0 || parents[len(parents)-1] != p {
				parents = append(parents, p)
			}
		}
		cur = parents
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := hashNodes(t, l, cur, workers, g); err != nil {
			return err
		}
	}
	return nil
}

// hashNodes recomputes the given nodes of level l, in parallel when there
// are enough of them to be worth it.
func hashNodes(t *Tree, l int, idx []int, workers int, g *gather) error {
	const perWorker = 2048
	if workers <= 1 || len(idx) < 2*perWorker {
		return hashNodeList(t, l, idx, g)
	}
	var (
		wg   sync.WaitGroup
		errs = make([]error, workers)
	)
	chunk := (len(idx) + workers - 1) / workers
	for w := range workers {
		part := idx[min(w*chunk, len(idx)):min((w+1)*chunk, len(idx))]
		wg.Go(func() { errs[w] = hashNodeList(t, l, part, newScratch()) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func newScratch() *gather {
	return &gather{src: make([]byte, 2*gatherChunk*NodeSize), dst: make([]byte, gatherChunk*NodeSize)}
}

// hashNodeList gathers the children of the listed nodes, hashes them in
// batches, and writes the parents back.
func hashNodeList(t *Tree, l int, idx []int, g *gather) error {
	for len(idx) > 0 {
		n := min(gatherChunk, len(idx))
		for i, p := range idx[:n] {
			copy(g.src[2*i*NodeSize:], t.node(l+1, 2*p))
			copy(g.src[(2*i+1)*NodeSize:], t.node(l+1, 2*p+1))
		}
		if err := simd.HashPairs(g.dst[:n*NodeSize], g.src[:2*n*NodeSize]); err != nil {
			return fmt.Errorf("engine: rehashing level %d: %w", l, err)
		}
		for i, p := range idx[:n] {
			copy(t.node(l, p), g.dst[i*NodeSize:(i+1)*NodeSize])
		}
		idx = idx[n:]
	}
	return nil
}

// Snapshot returns a frozen, read-only copy of the tree, hashed, in its own
// memory charged to the tree's budget: diffs and syncs can use it while
// writes to the live tree go on. Writers are held off only while the nodes
// are copied (a memory copy: ~10 ms for a depth-20 tree); the snapshot's
// dirty paths are then rehashed without holding the live tree.
func (t *Tree) Snapshot(ctx context.Context) (*Tree, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	s, err := t.newLike(t.depth)
	if err != nil {
		t.mu.Unlock()
		return nil, fmt.Errorf("engine: snapshot: %w", err)
	}
	copy(s.nodes, t.nodes)
	s.version = t.version
	s.rows.Store(t.rows.Load())
	s.dirty.Store(t.dirty.Load())
	s.bulk.Store(t.bulk.Load())
	if l := t.live.Load(); l != nil && !t.bulk.Load() && t.dirty.Load() {
		bits, err := s.liveBits()
		if err != nil {
			t.mu.Unlock()
			s.Close()
			return nil, fmt.Errorf("engine: snapshot: %w", err)
		}
		copy(bits, l.bits)
	}
	t.mu.Unlock()
	if s.dirty.Load() {
		if err := s.Hash(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	s.frozen = true
	return s, nil
}

// LeafSnapshot returns a frozen copy of the tree's leaves only: what a
// repair session reads (subtree sums, leaf by leaf) without paying to copy
// and fault in the inner levels, half the tree. Its leaves, Sums and Rows
// are those of the moment it was taken; its inner nodes are not hashed and
// cannot be (Root and Node above the leaves give ErrNotHashed, Hash gives
// ErrReadOnly). Writers are held off only while the leaves are copied.
func (t *Tree) LeafSnapshot(ctx context.Context) (*Tree, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	s, err := t.newLike(t.depth)
	if err != nil {
		return nil, fmt.Errorf("engine: leaf snapshot: %w", err)
	}
	if t.layout.LevelContiguous() {
		first := t.layout.Slot(t.depth, t.depth, 0) * NodeSize
		n := (1 << t.depth) * NodeSize
		copy(s.nodes[first:first+n], t.nodes[first:first+n])
	} else {
		for i := range 1 << t.depth {
			copy(s.node(t.depth, i), t.node(t.depth, i))
		}
	}
	s.version = t.version
	s.rows.Store(t.rows.Load())
	s.frozen = true // New left it dirty and bulk: inner nodes count as unhashed
	return s, nil
}

// newLike returns an empty tree of the given depth with t's partitioner,
// range, layout, budget and metrics: the shape of t's snapshots and folds.
func (t *Tree) newLike(depth int) (*Tree, error) {
	return New(Options{Partitioner: t.part, Range: t.rng, Depth: depth, Layout: t.layout, Budget: t.budget, Metrics: t.metrics})
}
