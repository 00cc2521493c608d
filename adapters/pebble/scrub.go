package grovepebble

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
)

// A live tree holds the digests of what was written. When the stored bytes
// change underneath it — a flipped bit, a restored backup, a lost file, a
// write around the write path — the tree still vouches for them and every
// repair session passes the damage over. Scrub reads the rows again and
// makes each leaf say what is on disk, so that the next session with a
// peer sees the divergence and repairs it (issue 16).

// ScrubReport is what one Scrub pass read and found.
type ScrubReport struct {
	// Ranges is how many ranges were checked; Skipped how many were not,
	// because their tree was replaced (a rebalance) while they were read:
	// the next pass checks them.
	Ranges, Skipped int
	// Rows and Bytes are what was read: every stored row of the checked
	// ranges, tombstones included, in the stored layout.
	Rows, Bytes int64
	// Mismatches are the leaves whose tree sum was not the sum of their
	// rows, each now set to what the rows say, in range and leaf order.
	Mismatches []ScrubMismatch
	// RowsCorrected is how far the trees' row counts moved to match the
	// rows (negative when rows had gone).
	RowsCorrected int64
	Duration      time.Duration
}

// ScrubMismatch is one leaf a scrub found its tree wrong about.
type ScrubMismatch struct {
	// Range is the node's range, Leaf the leaf's index in its tree, Span
	// the leaf's tokens: where a repair will find the rows that differ.
	Range token.Range
	Leaf  int
	Span  token.Range
}

// Scrub reads every row of every range the node holds and checks each leaf
// of the live trees against the rows: a leaf whose sum is not the sum of
// its rows' digests is set to it, counted, and logged with its range and
// tokens, and a tree whose row count is wrong is corrected. Writes go on
// meanwhile: each range's leaves are frozen together with a snapshot of
// the database, the snapshot's rows are read with no lock held, and the
// differences are handed back to the tree, where they stay right after
// the writes it took since (engine.Tree.CorrectLeaves). The read is paced
// by Options.ScanRate like every scan of the rows. A node of many ranges
// checkpoints its trees afterwards if anything was corrected.
//
// Each range checked is recorded with the time of its snapshot
// (LastScrubbed), and a pass takes the ranges never scrubbed first, then
// the longest ago: a pass cut short resumes, after a restart too, with
// the ranges it did not reach.
//
// A row that does not decode fails the pass with ErrCorrupt, naming it.
func (n *Node) Scrub(ctx context.Context) (rep ScrubReport, err error) {
	defer n.catch(&err)
	if err := n.use(); err != nil {
		return ScrubReport{}, err
	}
	defer n.life.RUnlock()
	start := time.Now()
	defer func() { rep.Duration = time.Since(start) }()
	for _, r := range n.scrubRanges() {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := n.scrubRange(ctx, r, &rep); err != nil {
			return rep, fmt.Errorf("grovepebble: scrub of %v: %w", r, err)
		}
	}
	if len(rep.Mismatches) > 0 || rep.RowsCorrected != 0 {
		n.mu.Lock()
		err = n.checkpointNow()
		n.mu.Unlock()
	}
	return rep, err
}

// scrubRanges are the ranges whose trees Scrub checks, in the order it
// checks them: those never scrubbed first, then the longest ago, so that a
// pass cut short by a restart resumes where it stopped.
func (n *Node) scrubRanges() []token.Range {
	rs := n.Ranges()
	slices.SortStableFunc(rs, func(a, b token.Range) int {
		ta, oka := n.LastScrubbed(a)
		tb, okb := n.LastScrubbed(b)
		switch {
		case oka != okb:
			if !oka {
				return -1
			}
			return 1
		case !oka:
			return 0
		}
		return ta.Compare(tb)
	})
	return rs
}

// liveTree is the tree of range r now; the caller holds n.mu.
func (n *Node) liveTree(r token.Range) (*engine.Tree, bool) {
	if n.forest == nil {
		return n.tree, r == n.rng
	}
	t, ok := n.forest.Tree(r)
	if !ok {
		return nil, false
	}
	return t.Live, true
}

// scrubRange checks one range's tree against its rows, adding to rep.
func (n *Node) scrubRange(ctx context.Context, r token.Range, rep *ScrubReport) error {
	// The leaves and the snapshot, together: with n.mu held and the
	// maintainer settled, the tree is exactly the committed data.
	n.mu.Lock()
	if n.broken != nil {
		n.mu.Unlock()
		return n.broken
	}
	if err := n.settle(); err != nil {
		n.mu.Unlock()
		return err
	}
	live, ok := n.liveTree(r)
	if !ok {
		n.mu.Unlock()
		return fmt.Errorf("%w: %v", ErrNoSuchRange, r)
	}
	view, err := live.LeafView(ctx)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	snap := n.db.NewSnapshot()
	at := time.Now()
	n.mu.Unlock()
	fixes, rowDelta, err := n.scrubRead(ctx, snap, view, rep)
	err = errors.Join(err, snap.Close(), view.Close())
	if err != nil {
		return err
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.settle(); err != nil {
		return err
	}
	if now, ok := n.liveTree(r); !ok || now != live {
		rep.Skipped++
		return nil
	}
	if err := live.CorrectLeaves(fixes, rowDelta); err != nil {
		return err
	}
	// Recorded as of the snapshot the rows were read from.
	if err := n.recordMatch(r, scrubPeer, at); err != nil {
		return err
	}
	rep.Ranges++
	rep.RowsCorrected += rowDelta
	for _, f := range fixes {
		m := ScrubMismatch{Range: r, Leaf: f.Leaf, Span: r.Leaf(f.Leaf, view.Depth())}
		rep.Mismatches = append(rep.Mismatches, m)
		n.events.log.Errorf("grovepebble: scrub: range %v, leaf %d (tokens %v): the tree did not match the rows stored in %s; set to the rows, for the next repair to see", r, m.Leaf, m.Span, n.dir)
	}
	if rowDelta != 0 {
		n.events.log.Errorf("grovepebble: scrub: range %v: the tree counted %d rows more than %s holds; corrected", r, -rowDelta, n.dir)
	}
	return nil
}

// scrubLeaves is how many leaf sums scrubRead takes from the view at a
// time.
const scrubLeaves = 4096

// scrubRead sums the snapshot's rows of the view's range per leaf and
// returns the corrections that take each leaf of the view to its rows'
// sum, and the row count's.
func (n *Node) scrubRead(ctx context.Context, snap *pebble.Snapshot, view *engine.LeafView, rep *ScrubReport) ([]engine.LeafCorrection, int64, error) {
	rng, depth := view.Range(), view.Depth()
	lower, upper := rangeBounds(rng)
	it, err := snap.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, 0, err
	}
	defer it.Close()
	var (
		fixes  []engine.LeafCorrection
		held   = make([]engine.Digest, min(scrubLeaves, 1<<depth))
		base   = -len(held) // first leaf in held
		leaf   = 0          // the leaf being summed
		sum    engine.Digest
		rows   int64
		owed   int64
		h      engine.Hasher
		row    engine.Row
		leaves = 1 << depth
	)
	// close checks leaf against sum, and moves on to the next leaf.
	closeLeaf := func() error {
		if leaf >= base+len(held) {
			base = leaf - leaf%len(held)
			if err := view.Sums(ctx, depth, base, held[:min(len(held), leaves-base)]); err != nil {
				return err
			}
		}
		if held[leaf-base] != sum {
			fixes = append(fixes, engine.CorrectionFor(leaf, &held[leaf-base], &sum))
		}
		leaf++
		sum = engine.Digest{}
		return nil
	}
	for ok := it.First(); ok; ok = it.Next() {
		if rows%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, 0, err
			}
		}
		ck := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, 0, asCorrupt(n.dir, err)
		}
		tok, err := decodeRow(n.p, ck, v, &row)
		if err != nil {
			return nil, 0, err
		}
		for at := rng.LeafOf(tok, depth); leaf < at; {
			if err := closeLeaf(); err != nil {
				return nil, 0, err
			}
		}
		d := h.Digest(&row)
		sum.Add(&d)
		rows++
		b := int64(len(ck) + len(v))
		rep.Bytes += b
		if owed += b; owed >= scanChunk {
			if err := n.limit.wait(ctx, owed); err != nil {
				return nil, 0, err
			}
			owed = 0
		}
	}
	if err := it.Error(); err != nil {
		return nil, 0, asCorrupt(n.dir, err)
	}
	for leaf < leaves {
		if err := closeLeaf(); err != nil {
			return nil, 0, err
		}
	}
	if err := n.limit.wait(ctx, owed); err != nil {
		return nil, 0, err
	}
	rep.Rows += rows
	return fixes, rows - view.Rows(), nil
}
