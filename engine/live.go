package engine

import (
	"fmt"
	"sync/atomic"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine/token"
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
	l := &liveState{region: r, bits: bitsOf(r)[:words]}
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
	return t.UpdateDigestAt(t.part.Token(key), key, old, new)
}

// UpdateDigestAt is UpdateDigest for a caller that has key's token already
// (a forest, which found the key's tree by it): tok must be the tree's
// partitioner's token of key.
func (t *Tree) UpdateDigestAt(tok token.Token, key []byte, old, new *Digest) error {
	if old == nil && new == nil {
		return nil
	}
	if t.rng.LeafOf(tok, t.depth) < 0 {
		return outOfRange(key, tok, t.rng)
	}
	// A batch of one: the same locks, leaf, bit and count.
	one := [1]DigestChange{{Token: tok, Old: old, New: new}}
	return t.applyChanges(one[:])
}

// DigestChange is one change of a key's row for UpdateDigests: its token
// (the tree's partitioner's token of Key) and the digests of its old and
// new versions, either nil, as UpdateDigestAt takes them.
type DigestChange struct {
	Token    token.Token
	Key      []byte // for error messages only
	Old, New *Digest
}

// UpdateDigests applies changes as that many UpdateDigestAt calls would,
// in one pass under the tree's lock: the leaves changes touch are
// independent, so their cache misses overlap, where each UpdateDigestAt
// waits for its own behind the locks and atomic operations around it.
// Changes in token order take each band's lock once. If a token lies
// outside the tree's range, nothing is applied.
func (t *Tree) UpdateDigests(changes []DigestChange) error {
	for i := range changes {
		if c := &changes[i]; t.rng.LeafOf(c.Token, t.depth) < 0 {
			return outOfRange(c.Key, c.Token, t.rng)
		}
	}
	return t.applyChanges(changes)
}

// applyChanges is UpdateDigests once every token is known to be in range.
// It formats no error of its own from changes, so that they stay on the
// caller's stack: UpdateDigestAt's batch of one allocates nothing.
func (t *Tree) applyChanges(changes []DigestChange) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	bits, err := t.startUpdate()
	if err != nil {
		return err
	}
	var rows int64
	for i := 0; i < len(changes); {
		band := t.rng.LeafOf(changes[i].Token, t.depth) >> t.bandShift
		lock := &t.bands[band]
		lock.Lock()
		for ; i < len(changes); i++ {
			c := &changes[i]
			leaf := t.rng.LeafOf(c.Token, t.depth)
			if leaf>>t.bandShift != band {
				break
			}
			node := t.node(t.depth, leaf)
			if c.Old != nil {
				addLeaf(node, c.Old, true)
			}
			if c.New != nil {
				addLeaf(node, c.New, false)
			}
			switch {
			case c.Old == nil && c.New != nil:
				rows++
			case c.Old != nil && c.New == nil:
				rows--
			}
		}
		lock.Unlock()
	}
	// The dirty bits after the leaves: an atomic operation between two
	// leaf updates would make the second wait for the first's miss.
	for i := range changes {
		if c := &changes[i]; c.Old != nil || c.New != nil {
			leaf := t.rng.LeafOf(c.Token, t.depth)
			atomic.OrUint64(&bits[leaf>>6], 1<<(leaf&63))
		}
	}
	if rows != 0 {
		t.rows.Add(rows)
	}
	t.markDirty()
	return nil
}

// startUpdate readies the tree for changes to its leaves: it checks that
// the tree is open, sets its file's dirty flag, and returns the dirty-leaf
// bitmap. Callers hold t.mu for reading.
func (t *Tree) startUpdate() ([]uint64, error) {
	if t.closed {
		return nil, ErrClosed
	}
	if err := t.beginWrite(); err != nil {
		return nil, err
	}
	return t.liveBits()
}

// changeLeaf subtracts sub from and adds add to leaf (either may be nil),
// under the leaf's band lock, and marks it in bits for the next Hash.
// Callers hold t.mu for reading, after startUpdate.
func (t *Tree) changeLeaf(bits []uint64, leaf int, sub, add *Digest) {
	node := t.node(t.depth, leaf)
	band := &t.bands[leaf>>t.bandShift]
	band.Lock()
	if sub != nil {
		addLeaf(node, sub, true)
	}
	if add != nil {
		addLeaf(node, add, false)
	}
	band.Unlock()
	atomic.OrUint64(&bits[leaf>>6], 1<<(leaf&63))
}

// Update applies one change given whole rows: Update(nil, r) inserts r,
// Update(old, new) replaces old by new (a tombstone is a new row with
// Deleted set), Update(old, nil) purges old, as after tombstone garbage
// collection. old and new must have the same key.
func (t *Tree) Update(old, new *Row) error {
	var od, nd *Digest
	var key []byte
	var do, dn Digest
	switch {
	case old != nil && new != nil:
		do, dn = rowDigests(old, new)
	case old != nil:
		do = RowDigest(old)
	case new != nil:
		dn = RowDigest(new)
	}
	if old != nil {
		od, key = &do, old.Key
	}
	if new != nil {
		nd = &dn
		if key != nil && string(key) != string(new.Key) {
			return fmt.Errorf("%w: old key %q, new key %q", ErrBadUpdate, truncKey(key), truncKey(new.Key))
		}
		key = new.Key
	}
	return t.UpdateDigest(key, od, nd)
}
