package forest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/antientropy/grove/engine"
)

// CheckpointPolicy says when a forest is due a checkpoint: after so many
// writes, or so long, since the last one, whichever comes first. A node
// checks Due after each write batch and checkpoints when it is, so that
// the leaves a crash leaves to recompute — and so the rows recovery reads
// — stay bounded.
type CheckpointPolicy struct {
	// Writes is how many row changes (Update calls) make a checkpoint due.
	// Zero means as many as the forest's trees have leaves, and at least
	// MinCheckpointWrites: a checkpoint writes every page of a tree that
	// a write touched, which under writes spread over the ring is all of
	// them, so checkpointing after fewer writes than there are leaves
	// would write more bytes of tree file per row than the row itself
	// holds; and a crash then leaves at most that many leaves to
	// recompute.
	Writes int64
	// Interval is how long after the last checkpoint one is due, if any
	// row changed. Zero means one minute.
	Interval time.Duration
}

// MinCheckpointWrites is the fewest writes after which the default
// CheckpointPolicy calls a checkpoint due (before its interval).
const MinCheckpointWrites = 100_000

func (p CheckpointPolicy) withDefaults() CheckpointPolicy {
	if p.Interval <= 0 {
		p.Interval = time.Minute
	}
	return p
}

// Committed tells the forest that n row changes were committed to the
// store ahead of their Updates, as by a store that feeds its trees behind
// its writes. Due counts them from their commit, since the marks a crash
// would leave to recover grow from then: counting only applied Updates
// would let a lagging feeder put checkpoints off, and the rows recovery
// reads grow past what the policy bounds.
func (f *Forest) Committed(n int64) { f.committed.Add(n) }

// Due reports whether the forest's CheckpointPolicy calls for a checkpoint
// now.
func (f *Forest) Due() bool {
	n := max(f.writes.Load(), f.committed.Load())
	if n == 0 {
		return false
	}
	if time.Since(time.Unix(0, f.lastCheckpoint.Load())) >= f.policy.Interval {
		return true
	}
	if f.policy.Writes > 0 {
		return n >= f.policy.Writes
	}
	return n >= MinCheckpointWrites && n >= f.leaves.Load()
}

// countLeaves records how many leaves the forest's trees have in all, for
// Due, once their depths have changed.
func (f *Forest) countLeaves() {
	var n int64
	for _, t := range f.trees {
		n += 1 << t.Live.Depth()
	}
	f.leaves.Store(n)
}

// Drift thresholds: a tree's row count must have moved by both before
// Drifted calls for a new plan, so that a node neither replans on noise
// nor rebuilds a range for every few rows.
const (
	driftFactor  = 2
	driftMinRows = 4096
)

// Drifted reports whether some tree's row count has moved far from the
// count its depth was planned for — doubled or halved, and by at least a
// few thousand rows — so that Rebalance may now choose another depth for
// it. A node calls it after a checkpoint, and Rebalance when it says so.
//
// A tree below its plan that has never held the planned rows since the
// forest opened does not count: its depth was planned for rows still to
// come (Options.ExpectedRows, or a manifest written for them), and
// folding it now would only mean rebuilding it from its rows as they
// arrive. Rows that fall after reaching the plan do count.
func (f *Forest) Drifted() bool {
	drifted := false
	for _, t := range f.trees {
		rows, planned := t.Live.Rows(), t.planned.Load()
		peak := t.peak.Load()
		if rows > peak {
			t.peak.Store(rows)
			peak = rows
		}
		if rows < planned && peak < planned {
			continue
		}
		lo, hi := min(rows, planned), max(rows, planned)
		if hi-lo >= driftMinRows && hi >= driftFactor*lo {
			drifted = true
		}
	}
	return drifted
}

// Redepth is one range whose depth Rebalance changed.
type Redepth struct {
	Tree     *Tree
	From, To int
	// RowsRead is what the change read from the store: none for a fold
	// to a shallower depth, the range's rows for a deeper rebuild.
	RowsRead int64
}

// Rebalance plans the forest's depths again from its trees' row counts
// now and moves every range whose planned depth differs from its tree's:
// a shallower tree is an exact fold of the current one (no rows read), a
// deeper one is rebuilt from that range's rows alone. It checkpoints first,
// so the new tree files carry the checkpoint's label, and returns the
// generation that checkpoint covered, as Checkpoint does. It replaces the
// Live tree of each range it moves, so nothing else may use the forest or
// its trees while it runs — no write, no repair session — and callers
// holding a *Tree read its Live again afterwards.
func (f *Forest) Rebalance(ctx context.Context) ([]Redepth, uint64, error) {
	// Whatever moved, even if a later move failed.
	defer f.countLeaves()
	g, err := f.Checkpoint(ctx)
	if err != nil {
		return nil, 0, err
	}
	rows := make([]int64, len(f.trees))
	var current int64
	page := int64(f.opts.Budget.PageSize())
	for i, t := range f.trees {
		rows[i] = t.Live.Rows()
		current += engine.LiveBytes(f.opts.Plan.Layout, t.Live.Depth(), page)
	}
	po := f.opts.Plan
	if po.PageSize == 0 {
		po.PageSize = page
	}
	// The trees' own bytes are theirs to redistribute; what else the
	// budget holds, and the reserve, stay where they are.
	plan, err := PlanDepths(rows, f.opts.Budget.Available()+current-f.reserve, po)
	if err != nil {
		return nil, g, err
	}
	// Every tree's depth is now planned for its rows, moved or not.
	for i, t := range f.trees {
		t.planned.Store(rows[i])
		t.peak.Store(max(t.peak.Load(), rows[i]))
	}
	var moved []Redepth
	// Shallower first: the memory they give back pays for the deeper.
	for pass := range 2 {
		for i, t := range f.trees {
			from, to := t.Live.Depth(), plan.Depths[i]
			if (pass == 0) != (to < from) || to == from {
				continue
			}
			n, err := f.redepth(ctx, t, to, g)
			if err != nil {
				return moved, g, err
			}
			moved = append(moved, Redepth{Tree: t, From: from, To: to, RowsRead: n})
		}
	}
	// Written even if nothing moved: the planned counts changed.
	if err := f.writeManifest(g); err != nil {
		return moved, g, err
	}
	return moved, g, nil
}

// redepth replaces t's tree with one of the given depth, labelled g: a fold
// when shallower, a rebuild from the store when deeper. The new tree is
// written beside the old one and renamed over it only when complete.
func (f *Forest) redepth(ctx context.Context, t *Tree, depth int, g uint64) (int64, error) {
	path := filepath.Join(f.dir, t.file)
	next := path + ".redepth"
	var read int64
	if depth < t.Live.Depth() {
		v, err := t.Live.Fold(ctx, depth)
		if err != nil {
			return 0, fmt.Errorf("forest: folding %s to depth %d: %w", t.Range, depth, err)
		}
		err = v.Save(next)
		v.Close()
		if err != nil {
			return 0, err
		}
	} else {
		b, err := engine.New(engine.Options{Partitioner: f.part, Range: t.Range, Depth: depth, Layout: f.opts.Plan.Layout, Budget: f.opts.Budget, Observer: f.opts.Observer})
		if err != nil {
			return 0, fmt.Errorf("forest: deepening %s to %d: %w", t.Range, depth, err)
		}
		err = f.opts.Store.Scan(ctx, t.Range, func(r *engine.Row) error {
			read++
			return b.Add(r)
		})
		if err == nil {
			err = b.Hash(ctx)
		}
		if err == nil {
			err = b.Save(next)
		}
		b.Close()
		if err != nil {
			os.Remove(next)
			return read, fmt.Errorf("forest: deepening %s to %d: %w", t.Range, depth, err)
		}
	}
	// The new file carries the checkpoint's label before it takes the old
	// one's name: marks up to g, not yet deleted if the node crashes now,
	// are then never applied to it again.
	w, err := engine.OpenWritable(next, f.opts.Budget)
	if err == nil {
		err = w.CheckpointAt(g)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		os.Remove(next)
		return read, fmt.Errorf("forest: %w", err)
	}
	if err := t.Live.Close(); err != nil {
		return read, err
	}
	if err := os.Rename(next, path); err != nil {
		return read, fmt.Errorf("forest: %w", err)
	}
	live, err := engine.OpenWritable(path, f.opts.Budget, engine.WithObserver(f.opts.Observer))
	if err != nil {
		return read, fmt.Errorf("forest: %w", err)
	}
	t.Live = live
	return read, nil
}
