package grovepebble

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"sync/atomic"
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
	// Legacy counts the rows read without a checksum — written before
	// layout 3, in a database upgraded from layout 2 — each written again
	// with one (the same version: no tree changes). A pass over every
	// range that finds none makes the database strict: from then on a
	// row without a checksum is damage.
	Legacy int64
	// Excised are the key spans whose rows were dropped because a table
	// holding them was damaged (Pebble's block checksums): their ranges'
	// trees now leave them out, for the next repair to restore them.
	Excised []Excised
	// Quarantined are the rows found damaged — not decoding, or failing
	// their checksum — and moved aside: left out of the trees, never
	// served, for the next repair to bring a replica's version back.
	Quarantined []Quarantined
	Duration    time.Duration
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
// by Options.ScanRate like every scan of the rows, and by rate bytes a
// second unless rate is 0. A node of many ranges checkpoints its trees
// after each range it corrected.
//
// Each range checked is recorded with the time of its snapshot
// (LastScrubbed), and a pass takes the ranges never scrubbed first, then
// the longest ago: a pass cut short resumes, after a restart too, with
// the ranges it did not reach.
//
// A row that does not decode or fails its checksum is left out of the
// leaves and moved aside (Quarantined); a damaged table's rows are
// dropped (Excised): either way the next repair fetches them from peers.
func (n *Node) Scrub(ctx context.Context, rate float64) (rep ScrubReport, err error) {
	defer n.catch(&err)
	if err := n.use(); err != nil {
		return ScrubReport{}, err
	}
	defer n.life.RUnlock()
	if !(rate >= 0) || math.IsInf(rate, 1) {
		return ScrubReport{}, fmt.Errorf("%w: scrub rate %v bytes/s, want 0 (unlimited) or more", ErrOptions, rate)
	}
	pace := newRateLimiter(rate)
	start := time.Now()
	defer func() { rep.Duration = time.Since(start) }()
	for _, r := range n.scrubRanges() {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := n.scrubOne(ctx, r, &rep, pace); err != nil {
			return rep, fmt.Errorf("grovepebble: scrub of %v: %w", r, err)
		}
	}
	return rep, n.passDone(&rep)
}

// scrubRanges are the ranges whose trees Scrub checks, in the order it
// checks them: those never scrubbed first, then the longest ago, so that a
// pass cut short by a restart resumes where it stopped.
func (n *Node) scrubRanges() []token.Range {
	rs := n.Ranges()
	// Ranges where reads met damaged rows or tables first; then a range never scrubbed,
	// which has the zero time, before every other.
	suspect := map[token.Range]bool{}
	if spans := n.suspectSpans(); len(spans) > 0 {
		for _, r := range rs {
			suspect[r] = slices.ContainsFunc(spans, func(s token.Range) bool { return overlaps(r, s) })
		}
	}
	slices.SortStableFunc(rs, func(a, b token.Range) int {
		if suspect[a] != suspect[b] {
			if suspect[a] {
				return -1
			}
			return 1
		}
		ta, _ := n.LastScrubbed(a)
		tb, _ := n.LastScrubbed(b)
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
func (n *Node) scrubRange(ctx context.Context, r token.Range, rep *ScrubReport, pace *rateLimiter) error {
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
	// The leaves are about to be made the snapshot's: the maintainer's
	// next round must take previous versions from it too.
	n.resnap()
	at := time.Now()
	n.mu.Unlock()
	fixes, rowDelta, err := n.scrubRead(ctx, snap, view, rep, pace)
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
	// The leaves now leave the damaged rows out, as the read did: moving
	// them aside keeps the tree right.
	moved, err := n.quarantine(r)
	if err != nil {
		return err
	}
	rep.Quarantined = append(rep.Quarantined, moved...)
	n.scrubber.total.quarantined.Add(int64(len(moved)))
	for _, q := range moved {
		n.events.log.Errorf("grovepebble: scrub: range %v: key %s (token %d) is damaged in %s (%s); moved aside, for the next repair to replace", r, keyText(q.Key), q.Token, n.dir, q.Reason)
	}
	// Recorded as of the snapshot the rows were read from.
	if err := n.recordMatch(r, scrubPeer, at); err != nil {
		return err
	}
	rep.Ranges++
	rep.RowsCorrected += rowDelta
	n.scrubber.total.ranges.Add(1)
	n.scrubber.total.mismatches.Add(int64(len(fixes)))
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
func (n *Node) scrubRead(ctx context.Context, snap *pebble.Snapshot, view *engine.LeafView, rep *ScrubReport, pace *rateLimiter) ([]engine.LeafCorrection, int64, error) {
	rng, depth := view.Range(), view.Depth()
	src, err := n.sourceOn(ctx, snap, rng)
	if err != nil {
		return nil, 0, err
	}
	defer src.close()
	src.pace = pace
	var (
		fixes  []engine.LeafCorrection
		held   = make([]engine.Digest, min(scrubLeaves, 1<<depth))
		base   = -len(held) // first leaf in held
		leaf   = 0          // the leaf being summed
		sum    engine.Digest
		h      engine.Hasher
		row    engine.Row
		leaves = 1 << depth
		read   int64 // bytes counted in ScrubStats so far
		legacy []engine.Row
	)
	// closeLeaf checks leaf against sum, and moves on to the next leaf.
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
	for {
		err := src.NextRow(&row)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, asCorrupt(n.dir, err)
		}
		for at := rng.LeafOf(src.tok, depth); leaf < at; {
			if err := closeLeaf(); err != nil {
				return nil, 0, err
			}
		}
		d := h.Digest(&row)
		sum.Add(&d)
		if src.legacy {
			legacy = append(legacy, engine.Row{Key: slices.Clone(row.Key), Value: slices.Clone(row.Value), TS: row.TS, Deleted: row.Deleted})
			if len(legacy) == rewriteRows {
				if err := n.rewrite(ctx, legacy); err != nil {
					return nil, 0, err
				}
				rep.Legacy += int64(len(legacy))
				legacy = legacy[:0]
			}
		}
		// Counted as read, for a live rate.
		n.scrubber.total.bytes.Add(src.bytes - read)
		read = src.bytes
	}
	for leaf < leaves {
		if err := closeLeaf(); err != nil {
			return nil, 0, err
		}
	}
	if len(legacy) > 0 {
		if err := n.rewrite(ctx, legacy); err != nil {
			return nil, 0, err
		}
		rep.Legacy += int64(len(legacy))
	}
	rep.Rows += src.rows
	rep.Bytes += src.bytes
	n.scrubber.total.rows.Add(src.rows)
	return fixes, src.rows - view.Rows(), nil
}

// rewriteRows is how many rows without a checksum a scrub writes again
// in one batch.
const rewriteRows = 1024

// rewrite writes rows read without a checksum again, each the version
// that is stored, so that they get one: the merge keeps one of two equal
// versions, and writes what it keeps with a checksum; the trees do not
// change. The caller holds the life lock, and not n.mu.
func (n *Node) rewrite(ctx context.Context, rows []engine.Row) error {
	plan, err := n.plan(rows)
	if err != nil {
		return err
	}
	_, err = n.writePlanned(ctx, rows, plan, pebble.Sync)
	return err
}

// passDone ends a scrub pass over every range: if it read no row without
// a checksum, every row the node serves has one (those it rewrote were
// read with one too, by then), and the database is made strict. The
// caller holds the life lock.
func (n *Node) passDone(pass *ScrubReport) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.isStrict() || pass.Legacy > 0 || pass.Skipped > 0 || pass.Ranges < len(n.Ranges()) || len(n.unowned) > 0 {
		return nil
	}
	if err := n.db.Set(metaFormat, []byte{layoutVersion, n.p.ID(), formatStrict}, pebble.Sync); err != nil {
		return err
	}
	n.setStrict(true)
	n.events.log.Infof("grovepebble: every row of %s has a checksum now; a row without one is damage from now on", n.dir)
	return nil
}

// DefaultScrubPass is how long AutoScrubRate gives a pass over a node's
// data: well inside Cassandra's default gc_grace_seconds of ten days, so
// that damage is found, and repaired from a peer, before the tombstones
// that could bring deleted rows back are purged.
const DefaultScrubPass = 3 * 24 * time.Hour

// MinScrubRate is the least rate AutoScrubRate gives, in bytes a second.
const MinScrubRate = 1 << 20

// AutoScrubRate is the rate, in bytes a second, at which a scrub of
// diskBytes of data takes DefaultScrubPass, and at least MinScrubRate.
func AutoScrubRate(diskBytes uint64) float64 {
	return max(MinScrubRate, float64(diskBytes)/DefaultScrubPass.Seconds())
}

// scrubber is a background scrub's handle, and what every scrub of the
// node has done since Open.
type scrubber struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	total  struct {
		ranges, rows, bytes, mismatches, quarantined atomic.Int64
	}
}

// ScrubStats are what every scrub of a node, in the background or by
// Scrub, has done since Open.
type ScrubStats struct {
	// Ranges counts the ranges checked (a range checked in each of three
	// passes counts three times); Rows and Bytes what was read;
	// Mismatches the leaves corrected; Quarantined the damaged rows
	// moved aside.
	Ranges, Rows, Bytes, Mismatches, Quarantined int64
}

// ScrubStats says what the node's scrubs have done since Open.
func (n *Node) ScrubStats() ScrubStats {
	t := &n.scrubber.total
	return ScrubStats{Ranges: t.ranges.Load(), Rows: t.rows.Load(), Bytes: t.bytes.Load(), Mismatches: t.mismatches.Load(), Quarantined: t.quarantined.Load()}
}

// scrubIdle is how long the background scrub waits after a pass that read
// nothing or failed, before the next.
const scrubIdle = time.Minute

// StartScrub starts a background scrub that checks the node's ranges
// without end, a range at a time in the order Scrub takes them, reading
// at most rate bytes a second (and within Options.ScanRate, which every
// scan shares): each range's tree is checked against its rows and
// corrected as Scrub does, and LastScrubbed records it, so that a restart
// resumes where the scrub stopped. Mismatches are logged as they are
// found. It runs until Close; a second StartScrub is refused.
func (n *Node) StartScrub(rate float64) error {
	if !(rate > 0) || math.IsInf(rate, 1) {
		return fmt.Errorf("%w: scrub rate %v bytes/s, want more than 0", ErrOptions, rate)
	}
	if err := n.use(); err != nil {
		return err
	}
	defer n.life.RUnlock()
	s := &n.scrubber
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		return fmt.Errorf("%w: a background scrub is already running", ErrOptions)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go n.scrubLoop(ctx, newRateLimiter(rate), s.done)
	return nil
}

// stopScrub stops the background scrub, if any, and waits for it.
func (n *Node) stopScrub() {
	s := &n.scrubber
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// scrubLoop is the background scrub.
func (n *Node) scrubLoop(ctx context.Context, pace *rateLimiter, done chan struct{}) {
	defer close(done)
	for ctx.Err() == nil {
		var pass ScrubReport
		failed := false
		for _, r := range n.scrubRanges() {
			if ctx.Err() != nil || n.use() != nil {
				return
			}
			err := n.scrubOne(ctx, r, &pass, pace)
			n.life.RUnlock()
			if err != nil && ctx.Err() == nil {
				n.events.log.Errorf("grovepebble: background scrub of %v in %s: %v", r, n.dir, err)
				failed = true
			}
		}
		if !failed && ctx.Err() == nil {
			if n.use() != nil {
				return
			}
			err := n.passDone(&pass)
			n.life.RUnlock()
			if err != nil {
				n.events.log.Errorf("grovepebble: background scrub of %s: %v", n.dir, err)
			}
		}
		if pass.Bytes == 0 || failed {
			select {
			case <-ctx.Done():
			case <-time.After(scrubIdle):
			}
		}
	}
}

// scrubOne scrubs range r into rep and, if it corrected anything,
// checkpoints, so that the corrections outlive a restart. A damaged table
// met on the way is dropped (recoverTable), and r scrubbed again. The
// caller holds the life lock.
func (n *Node) scrubOne(ctx context.Context, r token.Range, rep *ScrubReport, pace *rateLimiter) (err error) {
	defer n.catch(&err)
	fixed, counted, moved, dropped := len(rep.Mismatches), rep.RowsCorrected, len(rep.Quarantined), len(rep.Excised)
	if err := n.scrubRecovering(ctx, r, rep, pace, maxDamagedTables); err != nil {
		return err
	}
	if len(rep.Mismatches) == fixed && rep.RowsCorrected == counted && len(rep.Quarantined) == moved && len(rep.Excised) == dropped {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.checkpointNow()
}

// maxDamagedTables bounds the damaged tables one range's scrub drops
// before it gives up, reporting the last.
const maxDamagedTables = 8

// scrubRecovering is scrubRange, dropping up to tables damaged tables it
// meets: each one's rows are excised, and every range they cross is
// scrubbed again, so that its tree leaves them out for the next repair to
// bring back.
func (n *Node) scrubRecovering(ctx context.Context, r token.Range, rep *ScrubReport, pace *rateLimiter, tables int) error {
	for {
		err := n.scrubRange(ctx, r, rep, pace)
		path, damaged := damagedTable(err)
		if !damaged || tables == 0 {
			return err
		}
		tables--
		n.mu.Lock()
		var ex []Excised
		if err = n.settle(); err == nil {
			ex, err = n.exciseTable(ctx, path)
		}
		n.mu.Unlock()
		if err != nil {
			return err
		}
		for i, e := range ex {
			for _, other := range n.Ranges() {
				if crosses(other, ex[i:i+1]) {
					ex[i].Ranges = append(ex[i].Ranges, other)
				}
			}
			n.events.log.Errorf("grovepebble: scrub: table %s is damaged; dropped the rows of tokens %v from %s (ranges %v), for the next repair to restore from peers", e.File, e.Span, n.dir, ex[i].Ranges)
		}
		rep.Excised = append(rep.Excised, ex...)
		for _, other := range n.Ranges() {
			if other == r || !crosses(other, ex) {
				continue
			}
			if err := n.scrubRecovering(ctx, other, rep, pace, tables); err != nil {
				return fmt.Errorf("range %v, after dropping damaged table %s: %w", other, path, err)
			}
		}
	}
}

// crosses reports whether r shares a token with any span of ex.
func crosses(r token.Range, ex []Excised) bool {
	return slices.ContainsFunc(ex, func(e Excised) bool { return overlaps(r, e.Span) })
}

// overlaps reports whether two token ranges share a token.
func overlaps(a, b token.Range) bool { return a.Lo < b.Hi && b.Lo < a.Hi }
