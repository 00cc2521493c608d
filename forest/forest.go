package forest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/internal/atomicfile"
	"github.com/antientropy/grove/internal/flock"
)

// Store is the node's storage as a forest reads it: every row whose token
// lies in a range. Rows come in any order; the *Row is valid only during
// the call. Open scans different ranges at once, one goroutine each, so
// that builds and recoveries use every core: Scan must be safe for
// concurrent use.
type Store interface {
	Scan(ctx context.Context, r token.Range, fn func(*engine.Row) error) error
}

// SourceStore is a Store that can also hand out a range's rows as an
// engine.RowSource. A build then loads them with the tree's batched loader
// (engine.Tree.AddFrom), which hashes each row outside the tree's locks and
// adds the rows to their leaves in batches, rather than one locked update
// per row: a build is mostly reading and hashing, and this keeps it so.
type SourceStore interface {
	Store
	// Source returns a reader of the rows of r, in any order, and the func
	// that releases it, which the forest calls once it is done reading.
	Source(ctx context.Context, r token.Range) (engine.RowSource, func() error, error)
}

// Mark records that a write batch touched one leaf of one range's tree:
// the node writes it into the same batch as the rows (adding up the Rows
// of marks for the same leaf and generation), so that after a crash the
// forest recomputes just the leaves whose rows may differ from their tree.
// Forest.Mark makes one; Options.Marks gives them back at the next Open.
type Mark struct {
	// Generation is the forest's generation when the batch was written;
	// marks of generations a checkpoint covers may be deleted.
	Generation uint64
	// Leaf is the token range of the touched leaf.
	Leaf token.Range
	// Rows is how the batch changed the leaf's row count: +1 an insert,
	// −1 a purge, 0 a replacement.
	Rows int64
}

// Options describe the forest to open.
type Options struct {
	// Budget is charged for every tree. Required.
	Budget *arena.Budget
	// Partitioner maps keys to tokens. Default: token.Murmur3{}.
	Partitioner token.Partitioner
	// Ranges are the token ranges the node replicates (ring.RangesOf), in
	// token order and disjoint. Trees of ranges no longer listed are
	// dropped; listed ranges without a tree are built from Store.
	Ranges []token.Range
	// Store reads rows for builds and recovery. Required.
	Store Store
	// Marks are the node's marks, read back from its storage: after a
	// crash, those of generations a tree's last checkpoint does not cover
	// name the leaves to recompute.
	Marks []Mark
	// Plan shapes the depths of trees built at open.
	Plan PlanOptions
	// Reserve is the part of the budget kept free for repair sessions'
	// leaf views and folds. Zero means an eighth of the budget.
	Reserve int64
	// Observer is told what the trees do (metrics.Set is one).
	Observer engine.Observer
	// Checkpoints says when Due calls for a checkpoint.
	Checkpoints CheckpointPolicy
	// ExpectedRows, if set, gives the rows a range without a tree is about
	// to hold, for planning its depth, instead of counting the rows it
	// holds now: a node about to load a file sizes its trees for what the
	// file brings (so that a crash mid-load rereads only the leaves marked
	// since the last checkpoint, not whole one-leaf ranges), and skips the
	// counting pass.
	ExpectedRows func(token.Range) int64
}

// Stats say what an Open did.
type Stats struct {
	// RowsScanned is how many rows the open read from the store: to
	// build new ranges' trees and to recompute the leaves marked since a
	// tree's last checkpoint. A new range's rows are read twice, once to
	// count them for the depth plan and once to add them, unless
	// Options.ExpectedRows gives the count or the range lies within
	// ranges whose trees the forest held (a split), whose recorded counts
	// give an estimate.
	RowsScanned int64
	// Reused, Recovered and Built count ranges whose tree was opened as it
	// was, opened and repaired from marks, or built from the store;
	// Dropped counts trees of ranges the node no longer replicates.
	Reused, Recovered, Built, Dropped int
	// Damaged counts tree files that did not check out (ErrCorrupt): each
	// was rebuilt from the store at its depth, and is counted in Built.
	Damaged int
}

// Forest is a node's live trees, one per range it replicates, in one
// directory and under one budget. Writes go to the tree of the key's range;
// Checkpoint makes every tree file clean, after which the node deletes the
// marks the checkpoint covers. A Forest is safe for concurrent use except
// that Checkpoint must not run while a write batch is between its commit
// and its Update (the node holds its write lock across Checkpoint).
type Forest struct {
	dir     string
	part    token.Partitioner
	opts    Options
	reserve int64
	policy  CheckpointPolicy
	lock    *os.File
	trees   []*Tree
	gen     atomic.Uint64 // the generation marks are written in now
	stats   Stats

	writes         atomic.Int64 // Updates since the last checkpoint
	committed      atomic.Int64 // changes committed ahead of their Updates since then (Committed)
	lastCheckpoint atomic.Int64 // its time, in Unix nanoseconds
	// leaves is how many leaves the trees have in all: set when their
	// depths are (Open, Rebalance), read by Due after every batch.
	leaves atomic.Int64
}

// Tree is one range's live tree in a forest.
type Tree struct {
	// Range is the tokens it covers.
	Range token.Range
	// Live is the tree; it belongs to the forest, which closes it.
	Live *engine.Tree
	file string
	// planned is the row count its depth was last planned for (Drifted).
	planned atomic.Int64
	// peak is the most rows Drifted (or the plan) has seen it hold since
	// this open: a tree that has never held what it was planned for is
	// still growing into a plan made for rows to come.
	peak atomic.Int64
}

// manifest is the forest's own record of its trees, written atomically.
type manifest struct {
	Format      int             `json:"format"`
	Partitioner string          `json:"partitioner"`
	Checkpoint  uint64          `json:"checkpoint"`
	Trees       []manifestEntry `json:"trees"`
}

type manifestEntry struct {
	Lo    string `json:"lo"`
	Hi    string `json:"hi"`
	Depth int    `json:"depth"`
	File  string `json:"file"`
	// Rows is the tree's row count at the checkpoint that wrote the
	// manifest; absent in manifests written before it was recorded.
	Rows *int64 `json:"rows,omitempty"`
	// Planned is the row count the tree's depth was planned for; absent
	// in older manifests.
	Planned *int64 `json:"planned,omitempty"`
}

const (
	manifestName   = "FOREST"
	lockName       = "LOCK"
	manifestFormat = 1
)

// Sentinel errors, for errors.Is.
var (
	// ErrInUse means another Forest, in this process or another, has the
	// directory open.
	ErrInUse = errors.New("forest: directory in use")
	// ErrBadRanges means Options.Ranges that are not in token order,
	// overlap, or lie outside the partitioner's ring.
	ErrBadRanges = errors.New("forest: bad ranges")
	// ErrBadManifest means a forest directory whose manifest cannot be
	// read.
	ErrBadManifest = errors.New("forest: bad manifest")
	// ErrNoRange means a key whose token is in none of the forest's
	// ranges.
	ErrNoRange = errors.New("forest: key in none of the node's ranges")
)

// Open opens the forest in dir, creating it if needed, and makes its trees
// those of opts.Ranges: it reuses the trees of ranges it already has
// (reading no rows when they were checkpointed), recomputes the leaves
// that opts.Marks name for trees a crash left behind their data, builds
// trees for new ranges from the store alone, and drops the trees of ranges
// no longer listed. A tree file that does not check out is rebuilt from the
// store (Stats.Damaged): the data is whole, only its summary was not. The
// depths of new trees are planned with PlanDepths
// within the budget left by the kept trees and opts.Reserve; a forest that
// cannot fit fails before anything is mapped, saying what it needs.
func Open(ctx context.Context, dir string, opts Options) (_ *Forest, err error) {
	if opts.Budget == nil || opts.Store == nil {
		return nil, fmt.Errorf("forest: Options.Budget and Options.Store are required")
	}
	if opts.Partitioner == nil {
		opts.Partitioner = token.Murmur3{}
	}
	if err := CheckRanges(opts.Partitioner, opts.Ranges); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("forest: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("forest: %w", err)
	}
	if err := flock.TryLock(lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("%w: %s (%v)", ErrInUse, dir, err)
	}
	f := &Forest{dir: dir, part: opts.Partitioner, opts: opts, policy: opts.Checkpoints.withDefaults(), lock: lock}
	f.lastCheckpoint.Store(time.Now().UnixNano())
	defer func() {
		if err != nil {
			f.closeTrees()
			lock.Close()
		}
	}()
	m, err := readManifest(dir, opts.Partitioner)
	if err != nil {
		return nil, err
	}
	have := map[token.Range]manifestEntry{}
	for _, e := range m.Trees {
		r, err := e.rangeOf()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadManifest, filepath.Join(dir, manifestName), err)
		}
		have[r] = e
	}
	want := map[token.Range]bool{}
	for _, r := range opts.Ranges {
		want[r] = true
	}

	// Plan before mapping: the kept trees' sizes are in the manifest, the
	// new ranges' row counts come from one counting pass each.
	var kept []manifestEntry
	var keptBytes int64
	var fresh []token.Range
	for _, r := range opts.Ranges {
		if e, ok := have[r]; ok && fileExists(filepath.Join(dir, e.File)) {
			kept = append(kept, e)
			keptBytes += engine.LiveBytes(opts.Plan.Layout, e.Depth, int64(opts.Budget.PageSize()))
		} else {
			fresh = append(fresh, r)
		}
	}
	reserve := opts.Reserve
	if reserve == 0 {
		reserve = opts.Budget.Limit() / 8
	}
	f.reserve = reserve
	free := opts.Budget.Available() - reserve - keptBytes
	counts := make([]int64, len(fresh))
	var toCount []int
	for i, r := range fresh {
		if opts.ExpectedRows != nil {
			counts[i] = max(0, opts.ExpectedRows(r))
			continue
		}
		if n, ok := estimateRows(r, m.Trees); ok {
			counts[i] = n
			continue
		}
		toCount = append(toCount, i)
	}
	// Each range is counted on its own goroutine, as many at once as
	// there are cores: the store's scans of different ranges are
	// independent.
	err = parallel(ctx, len(toCount), func(j int) error {
		n, err := countRows(ctx, opts.Store, fresh[toCount[j]])
		counts[toCount[j]] = n
		return err
	})
	for _, i := range toCount {
		f.stats.RowsScanned += counts[i]
	}
	if err != nil {
		return nil, err
	}
	plan := Plan{}
	if len(fresh) > 0 {
		po := opts.Plan
		if po.PageSize == 0 {
			po.PageSize = int64(opts.Budget.PageSize())
		}
		if plan, err = PlanDepths(counts, free, po); err != nil {
			return nil, fmt.Errorf("forest: %d new ranges beside %d kept trees (%s) and a reserve of %s: %w",
				len(fresh), len(kept), arena.FormatBytes(keptBytes), arena.FormatBytes(reserve), err)
		}
	}

	// The generation: past every checkpoint a tree or the manifest
	// records and every mark, so that new marks are newer than all.
	last := m.Checkpoint
	for _, mk := range opts.Marks {
		last = max(last, mk.Generation)
	}
	var damaged []manifestEntry
	for _, e := range kept {
		t, err := engine.OpenWritable(filepath.Join(dir, e.File), opts.Budget, engine.WithObserver(opts.Observer))
		if errors.Is(err, engine.ErrCorrupt) || errors.Is(err, engine.ErrIncompatible) {
			// The data is whole; only its summary is not. Rebuilt below
			// at the depth it had, whose bytes the plan already counted.
			damaged = append(damaged, e)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("forest: %w", err)
		}
		r, _ := e.rangeOf()
		kt := &Tree{Range: r, Live: t, file: e.File}
		kt.planned.Store(t.Rows())
		kt.peak.Store(t.Rows())
		if e.Planned != nil {
			kt.planned.Store(*e.Planned)
		}
		f.trees = append(f.trees, kt)
		last = max(last, t.CheckpointLabel())
	}
	// Trees rebuilt in part or whole now hold every mark's change up to
	// generation last: they are labelled so, even if their file is clean
	// (a new tree's, written whole, carries no label), so that marks not
	// yet deleted are never applied twice.
	relabel := map[*Tree]bool{}
	recovered := make([]bool, len(f.trees))
	read := make([]int64, len(f.trees))
	err = parallel(ctx, len(f.trees), func(i int) (err error) {
		recovered[i], read[i], err = recoverTree(ctx, f.trees[i], opts.Marks, opts.Store)
		return err
	})
	for i, t := range f.trees {
		f.stats.RowsScanned += read[i]
		if recovered[i] {
			f.stats.Recovered++
			relabel[t] = true
		} else {
			f.stats.Reused++
		}
	}
	if err != nil {
		return nil, err
	}
	depths := plan.Depths
	for _, e := range damaged {
		r, _ := e.rangeOf()
		fresh, depths = append(fresh, r), append(depths, e.Depth)
		var planned int64 = -1
		if e.Planned != nil {
			planned = *e.Planned
		}
		counts = append(counts, planned)
		f.stats.Damaged++
	}
	// New trees are built in parallel, the largest ranges first so that
	// no worker is left with a big one at the end.
	built := make([]*Tree, len(fresh))
	read = make([]int64, len(fresh))
	order := make([]int, len(fresh))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(counts[b], counts[a]) })
	// Each worker hands its tree's file to a goroutine of its own to
	// sync and open, and builds the next meanwhile: the wait for the disk
	// overlaps the next build's reading and hashing. At most one file per
	// worker waits so.
	var commits errgroup.Group
	commits.SetLimit(max(1, runtime.GOMAXPROCS(0)))
	err = parallel(ctx, len(fresh), func(j int) error {
		i := order[j]
		staged, n, err := f.build(ctx, opts, fresh[i], depths[i])
		read[i] = n
		if err != nil {
			return err
		}
		commits.Go(func() (err error) {
			built[i], err = f.commitBuilt(opts, fresh[i], staged)
			return err
		})
		return nil
	})
	err = errors.Join(err, commits.Wait())
	for i, t := range built {
		f.stats.RowsScanned += read[i]
		if t == nil {
			continue
		}
		if counts[i] < 0 {
			counts[i] = t.Live.Rows()
		}
		t.planned.Store(counts[i])
		t.peak.Store(t.Live.Rows())
		// Kept even if another build failed, so that the deferred
		// cleanup closes it.
		f.trees = append(f.trees, t)
		relabel[t] = true
		f.stats.Built++
	}
	if err != nil {
		return nil, err
	}
	slices.SortFunc(f.trees, func(a, b *Tree) int { return cmp.Compare(a.Range.Lo, b.Range.Lo) })
	f.countLeaves()

	// Every tree now matches the data up to generation last: say so in
	// each file and in the manifest, then drop what is no longer wanted.
	if err := f.checkpointAt(ctx, last, relabel); err != nil {
		return nil, err
	}
	if err := f.writeManifest(last); err != nil {
		return nil, err
	}
	for r, e := range have {
		if !want[r] {
			os.Remove(filepath.Join(dir, e.File))
			f.stats.Dropped++
		}
	}
	f.removeStrays()
	f.gen.Store(last + 1)
	return f, nil
}

// parallel calls fn(0) to fn(n-1) on up to GOMAXPROCS goroutines, taking
// them in order, and returns the first error; after one, or once ctx ends,
// no further call starts.
func parallel(ctx context.Context, n int, fn func(i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, runtime.GOMAXPROCS(0)))
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(i) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// Stopped by ctx, not by a call's failure: say so.
	return ctx.Err()
}

// recoverTree recomputes the leaves of t that marks newer than its file's
// last checkpoint name, and adds their row changes. It reports whether
// there were any, and how many rows it read.
func recoverTree(ctx context.Context, t *Tree, marks []Mark, store Store) (bool, int64, error) {
	label := t.Live.CheckpointLabel()
	var leaves []int
	var delta int64
	depth := t.Live.Depth()
	for _, mk := range marks {
		if mk.Generation <= label || !overlaps(mk.Leaf, t.Range) {
			continue
		}
		delta += mk.Rows
		// A mark names a leaf at the depth the tree had when it was
		// written; every leaf of today's tree it overlaps is redone.
		first := t.Range.LeafOf(max(mk.Leaf.Lo+1, t.Range.Lo+1), depth)
		lastLeaf := t.Range.LeafOf(min(mk.Leaf.Hi, t.Range.Hi), depth)
		for i := first; i <= lastLeaf; i++ {
			leaves = append(leaves, i)
		}
	}
	if len(leaves) == 0 && !t.Live.FileDirty() {
		return false, 0, nil
	}
	n, err := t.Live.RebuildLeaves(ctx, leaves, delta, store.Scan)
	if err != nil {
		return true, n, fmt.Errorf("forest: recovering %s: %w", t.Range, err)
	}
	return true, n, nil
}

// build makes the tree of a new range from the store, at depth, and writes
// it to a staged file in the forest's directory, for commitBuilt to sync
// and open.
func (f *Forest) build(ctx context.Context, opts Options, r token.Range, depth int) (*engine.StagedFile, int64, error) {
	t, err := engine.New(engine.Options{Partitioner: f.part, Range: r, Depth: depth, Layout: opts.Plan.Layout, Budget: opts.Budget, Observer: opts.Observer})
	if err != nil {
		return nil, 0, fmt.Errorf("forest: range %s: %w", r, err)
	}
	var n int64
	if ss, ok := opts.Store.(SourceStore); ok {
		var (
			src  engine.RowSource
			done func() error
		)
		if src, done, err = ss.Source(ctx, r); err == nil {
			n, err = t.AddFrom(ctx, src)
			err = errors.Join(err, done())
		}
	} else {
		err = opts.Store.Scan(ctx, r, func(row *engine.Row) error {
			n++
			return t.Add(row)
		})
	}
	if err == nil {
		err = t.Hash(ctx)
	}
	var staged *engine.StagedFile
	if err == nil {
		staged, err = t.SaveStaged(filepath.Join(f.dir, fileName(r)))
	}
	// The staged file holds the tree's bytes: its memory goes back to the
	// budget before the next build takes some.
	t.Close()
	if err != nil {
		return nil, n, fmt.Errorf("forest: building %s: %w", r, err)
	}
	return staged, n, nil
}

// commitBuilt makes a built tree's staged file the range's tree file and
// opens it as the range's live tree.
func (f *Forest) commitBuilt(opts Options, r token.Range, staged *engine.StagedFile) (*Tree, error) {
	if err := staged.Commit(); err != nil {
		return nil, fmt.Errorf("forest: building %s: %w", r, err)
	}
	name := fileName(r)
	live, err := engine.OpenWritable(filepath.Join(f.dir, name), opts.Budget, engine.WithObserver(opts.Observer))
	if err != nil {
		return nil, fmt.Errorf("forest: %w", err)
	}
	return &Tree{Range: r, Live: live, file: name}, nil
}

// Stats says what Open did.
func (f *Forest) Stats() Stats { return f.stats }

// Trees returns the forest's trees in token order. They stay the forest's:
// it closes them.
func (f *Forest) Trees() []*Tree { return slices.Clone(f.trees) }

// Generation is the generation marks are written in now: it moves on at
// each Checkpoint. After Open, as after Checkpoint, every mark of an older
// generation is covered by the trees and may be deleted.
func (f *Forest) Generation() uint64 { return f.gen.Load() }

// Tree returns the tree of range r, which must be one of the forest's
// ranges exactly.
func (f *Forest) Tree(r token.Range) (*Tree, bool) {
	i, found := slices.BinarySearchFunc(f.trees, r.Lo, func(t *Tree, lo token.Token) int { return cmp.Compare(t.Range.Lo, lo) })
	if !found || f.trees[i].Range != r {
		return nil, false
	}
	return f.trees[i], true
}

// TreeOf returns the tree of the range key's token is in.
func (f *Forest) TreeOf(key []byte) (*Tree, error) {
	t, _, err := f.treeOf(key)
	return t, err
}

// treeOf returns the tree of key's token, and the token.
func (f *Forest) treeOf(key []byte) (*Tree, token.Token, error) {
	tok := f.part.Token(key)
	t, err := f.treeAt(tok, key)
	return t, tok, err
}

// treeAt returns the tree of the range holding tok, key's token.
func (f *Forest) treeAt(tok token.Token, key []byte) (*Tree, error) {
	i, found := slices.BinarySearchFunc(f.trees, tok, func(t *Tree, tok token.Token) int { return t.Range.Compare(tok) })
	if !found {
		return nil, fmt.Errorf("%w: key %q has token %d", ErrNoRange, truncKey(key), tok)
	}
	return f.trees[i], nil
}

// Mark returns the mark a write batch records for a change of key's row
// that moves the row count by rows (+1 an insert, −1 a purge, 0 a
// replacement): the leaf it touches, in the current generation. The batch
// writes it with its rows; UpdateDigest (or Update) then applies the change
// to the tree.
func (f *Forest) Mark(key []byte, rows int64) (Mark, error) {
	t, tok, err := f.treeOf(key)
	if err != nil {
		return Mark{}, err
	}
	depth := t.Live.Depth()
	return Mark{Generation: f.gen.Load(), Leaf: t.Range.Leaf(t.Range.LeafOf(tok, depth), depth), Rows: rows}, nil
}

// RowDelta is how a change from old to new (either nil) moves a row
// count: what Mark takes.
func RowDelta[T any](old, new *T) int64 {
	switch {
	case old == nil && new != nil:
		return 1
	case old != nil && new == nil:
		return -1
	}
	return 0
}

// UpdateDigest applies a committed change of key's row, given by the
// digests of its old and new versions (either nil), to its range's tree:
// engine.Tree.UpdateDigest, for a write path that has the digests already.
func (f *Forest) UpdateDigest(key []byte, old, new *engine.Digest) error {
	// The token that finds the tree finds the leaf: hashed once a change.
	tok := f.part.Token(key)
	t, err := f.treeAt(tok, key)
	if err != nil {
		return err
	}
	if err := t.Live.UpdateDigestAt(tok, key, old, new); err != nil {
		return err
	}
	f.writes.Add(1)
	return nil
}

// UpdateDigests applies committed changes, each as UpdateDigest would
// (for a caller that has each key's token already, as a store whose keys
// begin with it), handing each tree its run of consecutive changes in one
// engine.Tree.UpdateDigests: changes in token order, as a store's sorted
// round gives them, make one call per tree they touch. If a change's token
// is in none of the forest's ranges, it fails there, the changes before
// its tree's run applied.
func (f *Forest) UpdateDigests(changes []engine.DigestChange) error {
	for i := 0; i < len(changes); {
		c := &changes[i]
		t, err := f.treeAt(c.Token, c.Key)
		if err != nil {
			return err
		}
		j := i + 1
		for j < len(changes) && t.Range.Contains(changes[j].Token) {
			j++
		}
		if err := t.Live.UpdateDigests(changes[i:j]); err != nil {
			return err
		}
		f.writes.Add(int64(j - i))
		i = j
	}
	return nil
}

// Update applies a committed change of one row to its range's tree:
// engine.Tree.Update on the tree of the row's key.
func (f *Forest) Update(old, new *engine.Row) error {
	key := old
	if key == nil {
		key = new
	}
	if key == nil {
		return nil
	}
	t, err := f.TreeOf(key.Key)
	if err != nil {
		return err
	}
	if err := t.Live.Update(old, new); err != nil {
		return err
	}
	f.writes.Add(1)
	return nil
}

// Checkpoint hashes every tree and makes its file clean, labelled with the
// current generation, then records that generation in the manifest and
// moves to the next. It returns the generation it covered: the node may now
// delete every mark of that generation or older. No write batch may be
// between its commit and its Update while Checkpoint runs.
func (f *Forest) Checkpoint(ctx context.Context) (uint64, error) {
	g := f.gen.Load()
	if err := f.checkpointAt(ctx, g, nil); err != nil {
		return 0, err
	}
	if err := f.writeManifest(g); err != nil {
		return 0, err
	}
	f.gen.Store(g + 1)
	f.writes.Store(0)
	f.committed.Store(0)
	f.lastCheckpoint.Store(time.Now().UnixNano())
	return g, nil
}

// Close checkpoints the forest, closes its trees and releases its
// directory. A forest closed cleanly opens again without reading a row.
// It returns the generation its checkpoint covered, as Checkpoint does.
func (f *Forest) Close(ctx context.Context) (uint64, error) {
	g, err := f.Checkpoint(ctx)
	if cerr := f.closeTrees(); err == nil {
		err = cerr
	}
	f.lock.Close()
	return g, err
}

// checkpointAt hashes and checkpoints, labelled g, every tree whose file
// changed since its last checkpoint, and those in relabel even if not. A
// tree that did not change keeps its older label: no mark newer than it
// can name it, because a batch's marks are written before its tree update
// and every committed batch is applied when a checkpoint runs.
func (f *Forest) checkpointAt(ctx context.Context, g uint64, relabel map[*Tree]bool) error {
	// The trees are independent files: one worker's fsync waits while
	// another hashes or writes.
	return parallel(ctx, len(f.trees), func(i int) error {
		t := f.trees[i]
		if !relabel[t] && !t.Live.FileDirty() {
			return nil
		}
		if err := t.Live.Hash(ctx); err != nil {
			return err
		}
		if err := t.Live.CheckpointAt(g); err != nil {
			return fmt.Errorf("forest: %w", err)
		}
		return nil
	})
}

func (f *Forest) closeTrees() error {
	var err error
	for _, t := range f.trees {
		err = errors.Join(err, t.Live.Close())
	}
	f.trees = nil
	return err
}

func (f *Forest) writeManifest(checkpoint uint64) error {
	m := manifest{Format: manifestFormat, Partitioner: f.part.Name(), Checkpoint: checkpoint}
	for _, t := range f.trees {
		rows, planned := t.Live.Rows(), t.planned.Load()
		m.Trees = append(m.Trees, manifestEntry{
			Lo: strconv.FormatInt(t.Range.Lo, 10), Hi: strconv.FormatInt(t.Range.Hi, 10),
			Depth: t.Live.Depth(), File: t.file, Rows: &rows, Planned: &planned,
		})
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(f.dir, manifestName), 0o644, func(w *os.File) error {
		_, err := w.Write(append(data, '\n'))
		return err
	})
}

// removeStrays deletes tree files the manifest does not name: trees built
// by an open that crashed before writing its manifest.
func (f *Forest) removeStrays() {
	named := map[string]bool{}
	for _, t := range f.trees {
		named[t.file] = true
	}
	matches, _ := filepath.Glob(filepath.Join(f.dir, "*.tree"))
	for _, p := range matches {
		if !named[filepath.Base(p)] {
			os.Remove(p)
		}
	}
	// Trees a Rebalance was writing when the process ended.
	partial, _ := filepath.Glob(filepath.Join(f.dir, "*.tree.redepth"))
	for _, p := range partial {
		os.Remove(p)
	}
	atomicfile.CleanStale(filepath.Join(f.dir, manifestName))
}

func readManifest(dir string, p token.Partitioner) (manifest, error) {
	path := filepath.Join(dir, manifestName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return manifest{Format: manifestFormat, Partitioner: p.Name()}, nil
	}
	if err != nil {
		return manifest{}, fmt.Errorf("forest: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return manifest{}, fmt.Errorf("%w: %s: %v", ErrBadManifest, path, err)
	}
	if m.Format != manifestFormat {
		return manifest{}, fmt.Errorf("%w: %s: format %d, this grove reads %d", ErrBadManifest, path, m.Format, manifestFormat)
	}
	if m.Partitioner != p.Name() {
		return manifest{}, fmt.Errorf("%w: %s holds %s trees, the node uses %s", ErrBadManifest, path, m.Partitioner, p.Name())
	}
	return m, nil
}

func (e manifestEntry) rangeOf() (token.Range, error) {
	lo, err1 := strconv.ParseInt(e.Lo, 10, 64)
	hi, err2 := strconv.ParseInt(e.Hi, 10, 64)
	r := token.Range{Lo: lo, Hi: hi}
	if err := errors.Join(err1, err2); err != nil {
		return r, err
	}
	if e.File != fileName(r) {
		return r, fmt.Errorf("tree of %s in file %q", r, e.File)
	}
	return r, r.Valid()
}

// fileName is the tree file of range r: its bounds in hex, so that the name
// sorts and reads as the range.
func fileName(r token.Range) string {
	return fmt.Sprintf("%016x-%016x.tree", uint64(r.Lo), uint64(r.Hi))
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// estimateRows estimates the rows of range r from the trees that covered
// it before — a range split by a new node's token, or merged by a node's
// departure — by their recorded counts in proportion to the tokens of each
// that r covers: tokens are hashes, so rows spread evenly over them. It
// reports false unless such trees, with recorded counts, cover r whole;
// the estimate only plans the depth, so a close one saves a counting pass
// over the range's rows.
func estimateRows(r token.Range, old []manifestEntry) (int64, bool) {
	var covered uint64
	var rows float64
	for _, e := range old {
		o, err := e.rangeOf()
		if err != nil || e.Rows == nil || !overlaps(o, r) {
			continue
		}
		lo, hi := max(o.Lo, r.Lo), min(o.Hi, r.Hi)
		part := uint64(hi - lo)
		covered += part
		rows += float64(*e.Rows) * float64(part) / float64(uint64(o.Hi-o.Lo))
	}
	if covered != uint64(r.Hi-r.Lo) {
		return 0, false
	}
	return int64(math.Round(rows)), true
}

func countRows(ctx context.Context, s Store, r token.Range) (int64, error) {
	var n int64
	err := s.Scan(ctx, r, func(*engine.Row) error { n++; return nil })
	if err != nil {
		return n, fmt.Errorf("forest: counting %s: %w", r, err)
	}
	return n, nil
}

// CheckRanges checks that rs are valid ranges of p's ring, in token order
// and disjoint, as Options.Ranges must be (ErrBadRanges otherwise): a node
// may check its ranges before it opens anything else.
func CheckRanges(p token.Partitioner, rs []token.Range) error {
	full := p.Range()
	for i, r := range rs {
		if err := r.Valid(); err != nil {
			return fmt.Errorf("%w: range %d: %v", ErrBadRanges, i+1, err)
		}
		if r.Lo < full.Lo || r.Hi > full.Hi {
			return fmt.Errorf("%w: range %s outside the %s ring %s", ErrBadRanges, r, p.Name(), full)
		}
		if i > 0 && r.Lo < rs[i-1].Hi {
			return fmt.Errorf("%w: range %s after %s: not in token order, or overlapping", ErrBadRanges, r, rs[i-1])
		}
	}
	return nil
}

func overlaps(a, b token.Range) bool { return a.Lo < b.Hi && b.Lo < a.Hi }

func truncKey(k []byte) []byte {
	if len(k) > 64 {
		return k[:64]
	}
	return k
}

// Exists reports whether dir holds a forest: a manifest that Open would
// trust.
func Exists(dir string) bool { return fileExists(filepath.Join(dir, manifestName)) }

// Retire makes the forest in dir untrusted, durably: its manifest is
// removed, so the next Open builds every tree from the store. A node calls
// it before its data changes in a way the forest's marks cannot record
// (written by something that does not keep the forest). The directory must
// not be open.
func Retire(dir string) error {
	if err := os.Remove(filepath.Join(dir, manifestName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("forest: retiring %s: %w", dir, err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("forest: retiring %s: %w", dir, err)
	}
	return nil
}
