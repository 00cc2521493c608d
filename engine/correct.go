package engine

import "fmt"

// LeafCorrection is a change a check of the stored rows found one leaf
// needs: Delta, added lane-wise to the leaf, brings it from what the tree
// held when the check began to what the rows held then.
type LeafCorrection struct {
	Leaf  int
	Delta Digest
}

// CorrectionFor is the correction that takes leaf from held (the tree's
// sum when the check began) to want (the sum of the rows' digests then).
func CorrectionFor(leaf int, held, want *Digest) LeafCorrection {
	c := LeafCorrection{Leaf: leaf, Delta: *want}
	c.Delta.Sub(held)
	return c
}

// CorrectLeaves adds each correction's Delta to its leaf and rowDelta to
// the row count, and marks the leaves for the next Hash. It is how a scrub
// makes a live tree say what is on disk when the two have parted (bit rot,
// a restored backup, a write that went around the write path): the scrub
// freezes the leaves (LeafView) at the moment it opens a snapshot of the
// data, sums the snapshot's rows per leaf, and hands back the differences.
// Leaf sums are sums, so the differences stay right after any updates the
// tree took since — those changed the data and the tree alike — and no
// writer need wait for the scrub.
func (t *Tree) CorrectLeaves(fixes []LeafCorrection, rowDelta int64) error {
	for _, f := range fixes {
		if f.Leaf < 0 || f.Leaf >= 1<<t.depth {
			return fmt.Errorf("%w: leaf %d of a tree of depth %d", ErrNodeIndex, f.Leaf, t.depth)
		}
	}
	if len(fixes) == 0 && rowDelta == 0 {
		return nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	bits, err := t.startUpdate()
	if err != nil {
		return err
	}
	for i := range fixes {
		t.changeLeaf(bits, fixes[i].Leaf, nil, &fixes[i].Delta)
	}
	t.rows.Add(rowDelta)
	t.markDirty()
	return nil
}
