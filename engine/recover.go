package engine

import (
	"context"
	"fmt"
	"slices"

	"github.com/antientropy/grove/engine/token"
)

// ScanFunc calls fn for every stored row whose token is in r: how a tree
// reads back the rows of the leaves it must recompute. The *Row is valid
// only during the call.
type ScanFunc func(ctx context.Context, r token.Range, fn func(*Row) error) error

// RebuildLeaves recomputes the given leaves from the stored rows, each set
// to the sum of the digests of the rows scan yields for its token range,
// and adjusts the row count by rowDelta. It is how a tree file left dirty by
// a crash is made to match its data again without reading every row: the
// storage records, in each write batch, which leaves the batch touched (and
// by how many rows it changed them), so after a crash only those leaves can
// differ from the data. It returns how many rows it read. The tree must be
// hashed afterwards; its next Hash recomputes every inner node.
func (t *Tree) RebuildLeaves(ctx context.Context, leaves []int, rowDelta int64, scan ScanFunc) (read int64, err error) {
	leaves = slices.Clone(leaves)
	slices.Sort(leaves)
	leaves = slices.Compact(leaves)
	for _, i := range leaves {
		if i < 0 || i >= 1<<t.depth {
			return 0, fmt.Errorf("%w: leaf %d of a tree of depth %d", ErrNodeIndex, i, t.depth)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, ErrClosed
	}
	if err := t.beginWrite(); err != nil {
		return 0, err
	}
	// Whatever happens next, the inner levels no longer follow the leaves.
	t.markUnrecorded()
	var h Hasher
	for _, i := range leaves {
		lr := t.rng.Leaf(i, t.depth)
		var acc Digest
		err := scan(ctx, lr, func(r *Row) error {
			if tok := t.part.Token(r.Key); !lr.Contains(tok) {
				return fmt.Errorf("%w: scan of leaf %s returned key %q with token %d", ErrOutOfRange, lr, truncKey(r.Key), tok)
			}
			d := h.Digest(r)
			acc.Add(&d)
			read++
			return nil
		})
		if err != nil {
			return read, fmt.Errorf("engine: rebuilding leaf %d %s: %w", i, lr, err)
		}
		copy(t.node(t.depth, i), acc[:])
	}
	t.rows.Add(rowDelta)
	return read, nil
}
