package engine

import "github.com/antientropy/grove/simd"

// adderBatch is how many hashed rows an adder holds before it applies them
// to the leaves: enough to amortise the tree lock and the shared row
// counter, and few enough that the leaves it touches stay in L1. Even, so
// that rows queued two at a time fill it exactly.
const adderBatch = 256

// An odd adderBatch does not compile.
var _ [1 - 2*(adderBatch%2)]struct{}

// pendingRow is a hashed row waiting to be added to its leaf.
type pendingRow struct {
	leaf int
	d    Digest
}

// adder turns rows into leaf updates on one goroutine. Hashing, which is
// nearly all the work, happens outside any lock; the leaf updates are applied
// in batches, grouped by band, under the tree's read lock and one band lock
// per group.
//
// Rows are hashed two at a time (simd.Sum256x2: two rows cost little more
// than one). The caller's Row is only valid during add, so the first of a
// pair is kept as its encoding in held until the second arrives; flush
// hashes a row still held alone.
type adder struct {
	t        *Tree
	n        int
	pending  [adderBatch]pendingRow
	sorted   [adderBatch]pendingRow
	added    int64
	held     []byte // the encoding of a row waiting for a partner
	heldLeaf int
	holding  bool
	enc      []byte // the encoding of its partner
}

func (t *Tree) newAdder() *adder { return &adder{t: t} }

// add hashes r (now, or with the next row) and queues it for its leaf.
func (a *adder) add(r *Row) error {
	tok := a.t.part.Token(r.Key)
	leaf := a.t.rng.LeafOf(tok, a.t.depth)
	if leaf < 0 {
		return outOfRange(r.Key, tok, a.t.rng)
	}
	if !a.holding {
		a.held = AppendEncoding(scratch(a.held), r)
		a.heldLeaf, a.holding = leaf, true
		return nil
	}
	a.enc = AppendEncoding(scratch(a.enc), r)
	// pending holds an even number of rows here: only pairs are queued
	// between flushes, and adderBatch is even.
	p, q := &a.pending[a.n], &a.pending[a.n+1]
	p.leaf, q.leaf = a.heldLeaf, leaf
	p.d, q.d = simd.Sum256x2(a.held, a.enc)
	a.n += 2
	a.holding = false
	a.held, a.enc = trim(a.held), trim(a.enc)
	if a.n == adderBatch {
		return a.flush()
	}
	return nil
}

// flush hashes a row held without a partner and applies the queued rows to
// their leaves.
func (a *adder) flush() error {
	if a.holding {
		// add flushes a full batch as soon as it fills, so there is room.
		p := &a.pending[a.n]
		p.leaf, p.d = a.heldLeaf, simd.Sum256(a.held)
		a.n++
		a.holding = false
	}
	if a.n == 0 {
		return nil
	}
	t := a.t
	pending := a.pending[:a.n]
	a.n = 0
	// Group by band with a counting sort, keeping each band's rows in order.
	var start [leafBands + 1]int
	for i := range pending {
		start[pending[i].leaf>>t.bandShift+1]++
	}
	for b := 1; b <= leafBands; b++ {
		start[b] += start[b-1]
	}
	next := start
	for i := range pending {
		b := pending[i].leaf >> t.bandShift
		a.sorted[next[b]] = pending[i]
		next[b]++
	}

	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return ErrClosed
	}
	if err := t.beginWrite(); err != nil {
		return err
	}
	// Leaves are owned by their band's lock: every load and store of a leaf
	// word happens under it, never a plain store beside another goroutine's
	// atomic load (the race detector cannot see tree memory, which is
	// outside the Go heap, so this rule is kept by construction). The
	// updates of a group are independent, so their cache misses overlap
	// without a separate pass touching the leaves first (measured slower).
	contiguous := t.layout.LevelContiguous()
	leaf0 := t.layout.Slot(t.depth, t.depth, 0)
	sorted := a.sorted[:len(pending)]
	for i := range sorted {
		if contiguous {
			sorted[i].leaf += leaf0
		} else {
			sorted[i].leaf = t.layout.Slot(t.depth, t.depth, sorted[i].leaf)
		}
	}
	for b := range leafBands {
		group := sorted[start[b]:start[b+1]]
		if len(group) == 0 {
			continue
		}
		t.bands[b].Lock()
		for i := range group {
			s := group[i].leaf * NodeSize
			addLeaf(t.nodes[s:s+NodeSize], &group[i].d, false)
		}
		t.bands[b].Unlock()
	}
	t.rows.Add(int64(len(pending)))
	a.added += int64(len(pending))
	t.markUnrecorded()
	return nil
}
