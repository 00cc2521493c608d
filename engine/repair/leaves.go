package repair

import (
	"context"
	"fmt"

	"github.com/antientropy/grove/engine"
)

// What both roles do with one leaf's rows: the responder to answer
// Reconcile, the initiator to ask it.

// leafRows is one leaf's rows on this side, with their digests and
// fingerprints, checked against the view's leaf.
type leafRows struct {
	rows []engine.Row
	dig  []engine.Digest
	fp   []uint32
	// buf holds the rows' keys and values. It only grows: rows already
	// handed on (into an answer, or kept as differing) keep pointing at
	// what they were given, even after buf moves.
	buf []byte
}

// scanLeaf reads the rows of leaf i (at depth) through replica and checks
// their digests add up to the view's leaf: rows that changed after the view
// was taken would make the session compare one state's rows against
// another's tree.
func scanLeaf(ctx context.Context, replica Replica, view *engine.LeafView, key *fpKey, depth int, i uint32, into *leafRows) error {
	into.rows, into.dig, into.fp = into.rows[:0], into.dig[:0], into.fp[:0]
	var h engine.Hasher
	var total engine.Digest
	err := replica.Scan(ctx, view.Range().Leaf(int(i), depth), func(row *engine.Row) error {
		d := h.Digest(row)
		total.Add(&d)
		at := len(into.buf)
		into.buf = append(append(into.buf, row.Key...), row.Value...)
		k, end := at+len(row.Key), len(into.buf)
		into.rows = append(into.rows, engine.Row{Key: into.buf[at:k:k], Value: into.buf[k:end:end], TS: row.TS, Deleted: row.Deleted})
		into.dig = append(into.dig, d)
		into.fp = append(into.fp, key.of(&d))
		return nil
	})
	if err != nil {
		return err
	}
	var want [1]engine.Digest
	if err := view.Sums(ctx, depth, int(i), want[:]); err != nil {
		return err
	}
	if total != want[0] {
		return fmt.Errorf("%w: the rows of leaf %d no longer add up to the snapshot's leaf", ErrChanged, i)
	}
	return nil
}

// rowSize is what a row costs in a message, near enough to keep answers,
// pushed batches, staged commits and the rows an initiator holds under their
// limits. Both roles use it, so they agree on what fits.
func rowSize(r *engine.Row) int { return len(r.Key) + len(r.Value) + 24 }
