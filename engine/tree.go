// Package engine keeps Merkle trees over token ranges in memory outside the
// Go heap, builds them from rows, and compares them.
//
// A Tree covers one range (lo, hi] of a partitioner's ring and splits it into
// 2^depth equal leaves. A leaf is the lane-wise sum of the digests of the rows
// whose tokens fall in it; an inner node is SHA-256 of its two children. Rows
// are added from any number of goroutines, then Hash computes the inner
// levels, and Diff walks two trees down only the paths where they differ.
// The definitions are in DESIGN.md and docs/FORMAT.md.
package engine

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/layout"
	"github.com/antientropy/grove/metrics"
)

// FormatVersion names the definitions a tree's digests follow: the row
// encoding, the leaf sum and the inner-node hash. Trees of different format
// versions are never compared.
const FormatVersion = 1

// NodeSize is the size of every node, leaf or inner, in bytes.
const NodeSize = 32

// DefaultMaxDepth is the deepest tree that depth "auto" picks: 2^20 leaves,
// 64 MiB. An explicit depth may go deeper, up to MaxDepth, when the budget
// allows it.
const DefaultMaxDepth = 20

// MaxDepth is the deepest tree the engine builds at all (2^32 leaves, 256 GiB
// of nodes); the budget decides whether a given one fits.
const MaxDepth = 32

// AutoDepth asks New to choose the depth: see Options.Depth.
const AutoDepth = -1

// Options describe a tree to create.
type Options struct {
	// Partitioner maps keys to tokens. Default: token.Murmur3{}.
	Partitioner token.Partitioner
	// Range is the (lo, hi] range the tree covers. Default: the partitioner's
	// whole ring.
	Range token.Range
	// Depth is the number of levels below the root, 0..MaxDepth, or AutoDepth
	// for min(DefaultMaxDepth, ⌈log2(ExpectedRows)⌉, the deepest tree that
	// fits the budget).
	Depth int
	// ExpectedRows guides AutoDepth; ignored otherwise.
	ExpectedRows int64
	// Layout places nodes in memory. Default: layout.BFS{}.
	Layout layout.Layout
	// Budget is charged for the tree's memory before it is mapped. Required.
	Budget *arena.Budget
	// NoHugePages leaves the tree on ordinary pages. By default a tree of
	// 2 MiB or more asks for transparent huge pages, which make random leaf
	// updates and diff walks miss the TLB far less (about 20% faster hashing
	// at depth 20 here); a node that cannot afford the kernel's occasional
	// compaction stall on first touch sets this.
	NoHugePages bool
	// Metrics, if set, counts the tree while it is open, its builds and
	// rehashes, the diffs it takes part in, and their errors. Snapshots and
	// folds of the tree count in the same Set.
	Metrics *metrics.Set
}

// Tree is a Merkle tree over a token range, stored outside the Go heap.
//
// A Tree is safe for concurrent use. Adding rows takes the read side of the
// tree's lock: adders only touch leaves, with atomic adds, so they run in
// parallel with each other but never with Hash or Close, which take the write
// side. Diff and node reads take the read side too.
type Tree struct {
	mu     sync.RWMutex
	budget *arena.Budget
	region *arena.Region // nil once closed
	nodes  []byte        // region's memory; never handed out
	closed bool

	part   token.Partitioner
	rng    token.Range
	depth  int
	layout layout.Layout
	// version is the FormatVersion the digests follow: FormatVersion for a
	// tree built here, the file's for one loaded from disk.
	version uint16

	// bands serialise writers per 1/leafBands of the leaves, which are then
	// updated with plain loads and stores; leaf i is in band i>>bandShift.
	bands     [leafBands]sync.Mutex
	bandShift int

	rows  atomic.Int64
	dirty atomic.Bool // leaves changed since the last Hash

	// file is set for a tree mapped from a tree file (Open, OpenWritable).
	file *treeFile

	// bulk says leaves changed in ways the dirty-leaf bitmap did not record
	// (a build, or a file left dirty), so the next Hash recomputes every
	// inner node rather than only the marked paths.
	bulk atomic.Bool
	live atomic.Pointer[liveState]

	metrics *metrics.Set // nil: not counted
	liveMu  sync.Mutex
	frozen  bool // a Snapshot: never written again
}

// TreeBytes is the memory a tree of the given depth takes in the default
// breadth-first layout: (2^(depth+1) − 1) × 32 bytes.
func TreeBytes(depth int) int64 { return LayoutBytes(layout.BFS{}, depth) }

// LayoutBytes is the memory a tree of the given depth takes in layout l,
// which may pad its nodes (the page-blocked layout adds 1/127).
func LayoutBytes(l layout.Layout, depth int) int64 {
	return int64(l.Slots(depth)) * NodeSize
}

// ChooseDepth returns min(DefaultMaxDepth, ⌈log2(expectedRows)⌉, the deepest
// tree in layout l (nil: breadth-first) whose memory fits in available
// bytes), and an error wrapping arena.ErrBudgetExceeded if not even a
// depth-0 tree fits.
func ChooseDepth(expectedRows, available int64, l layout.Layout) (int, error) {
	return chooseDepth(expectedRows, available, l, int64(os.Getpagesize()))
}

// chooseDepth is ChooseDepth for mappings charged in pages of page bytes.
func chooseDepth(expectedRows, available int64, l layout.Layout, page int64) (int, error) {
	if l == nil {
		l = layout.BFS{}
	}
	d := 0
	for d < DefaultMaxDepth && int64(1)<<d < expectedRows {
		d++
	}
	for d >= 0 && pageRound(LayoutBytes(l, d), page) > available {
		d--
	}
	if d < 0 {
		return 0, fmt.Errorf("%w: even a depth-0 tree (%s) does not fit in %s",
			arena.ErrBudgetExceeded, arena.FormatBytes(pageRound(LayoutBytes(l, 0), page)), arena.FormatBytes(available))
	}
	return d, nil
}

// pageRound rounds n up to a multiple of page, which is what arena charges.
func pageRound(n, page int64) int64 {
	return (n + page - 1) / page * page
}

// New creates an empty tree. Its memory is reserved against opts.Budget
// before anything is mapped: a tree that does not fit fails with an error
// wrapping arena.ErrBudgetExceeded and nothing is mapped.
func New(opts Options) (*Tree, error) {
	if opts.Budget == nil {
		return nil, fmt.Errorf("engine: Options.Budget is required")
	}
	if opts.Partitioner == nil {
		opts.Partitioner = token.Murmur3{}
	}
	if opts.Range == (token.Range{}) {
		opts.Range = opts.Partitioner.Range()
	}
	if err := opts.Range.Valid(); err != nil {
		return nil, err
	}
	if opts.Layout == nil {
		opts.Layout = layout.BFS{}
	}
	depth := opts.Depth
	if depth == AutoDepth {
		d, err := chooseDepth(opts.ExpectedRows, opts.Budget.Available(), opts.Layout, int64(opts.Budget.PageSize()))
		if err != nil {
			return nil, err
		}
		depth = d
	}
	if depth < 0 || depth > MaxDepth {
		return nil, fmt.Errorf("%w: %d (want 0..%d, or auto)", ErrDepth, depth, MaxDepth)
	}
	size := LayoutBytes(opts.Layout, depth)
	if size > math.MaxInt {
		return nil, fmt.Errorf("%w: depth %d needs %d bytes, more than this platform can map", ErrDepth, depth, size)
	}
	region, err := arena.Map(opts.Budget, int(size))
	if err != nil {
		return nil, fmt.Errorf("engine: tree of depth %d: %w", depth, err)
	}
	if !opts.NoHugePages {
		// Advice only: on failure the tree is merely slower.
		_ = region.AdviseHugePages()
	}
	t := &Tree{
		budget:    opts.Budget,
		region:    region,
		nodes:     region.Bytes(),
		part:      opts.Partitioner,
		rng:       opts.Range,
		depth:     depth,
		layout:    opts.Layout,
		version:   FormatVersion,
		bandShift: max(0, depth-6), // 2^6 = leafBands
		metrics:   opts.Metrics,
	}
	t.metrics.TreeOpened()
	// A fresh mapping is all zeros: every leaf is the empty sum and, until
	// Hash runs, the inner nodes are not yet right.
	t.dirty.Store(true)
	t.bulk.Store(true)
	return t, nil
}

// Depth is the number of levels below the root.
func (t *Tree) Depth() int { return t.depth }

// Leaves is the number of leaves, 2^Depth.
func (t *Tree) Leaves() int { return 1 << t.depth }

// Range is the (lo, hi] range the tree covers.
func (t *Tree) Range() token.Range { return t.rng }

// Partitioner is the partitioner that maps keys to tokens for this tree.
func (t *Tree) Partitioner() token.Partitioner { return t.part }

// Layout is how the nodes are placed in memory.
func (t *Tree) Layout() layout.Layout { return t.layout }

// Bytes is the size of the tree's nodes outside the Go heap.
func (t *Tree) Bytes() int64 { return LayoutBytes(t.layout, t.depth) }

// Rows is the number of rows added (less those removed).
func (t *Tree) Rows() int64 { return t.rows.Load() }

// node returns the 32 bytes of node (level, index). Callers hold t.mu.
func (t *Tree) node(level, index int) []byte {
	s := t.layout.Slot(t.depth, level, index) * NodeSize
	return t.nodes[s : s+NodeSize : s+NodeSize]
}

// Add adds one row to the leaf its key's token falls in. It is safe to call
// from many goroutines at once; it allocates nothing for rows whose encoding
// fits 256 bytes. Loading many rows, AddFrom and Load are faster: they take
// the tree's locks once per batch rather than once per row.
func (t *Tree) Add(r *Row) error {
	d := RowDigest(r)
	return t.AddDigest(r.Key, &d)
}

// AddDigest adds a row whose digest the caller has already computed (with a
// Hasher, on its own goroutine). It is UpdateDigest(key, nil, d).
func (t *Tree) AddDigest(key []byte, d *Digest) error {
	return t.UpdateDigest(key, nil, d)
}

// markDirty records that leaves changed, without writing the shared flag
// (and bouncing its cache line between cores) when it is already set.
func (t *Tree) markDirty() {
	if !t.dirty.Load() {
		t.dirty.Store(true)
	}
}

// markBulk records that leaves changed without being marked in the
// dirty-leaf bitmap, as the build paths do.
func (t *Tree) markBulk() {
	t.markDirty()
	if !t.bulk.Load() {
		t.bulk.Store(true)
	}
}

func outOfRange(key []byte, tok token.Token, rng token.Range) error {
	return fmt.Errorf("%w: key %q has token %d, tree covers %s", ErrOutOfRange, truncKey(key), tok, rng)
}

// truncKey keeps error messages short when a key is huge.
func truncKey(k []byte) []byte {
	if len(k) > 64 {
		return k[:64]
	}
	return k
}

// Hash brings the inner nodes up to date with the leaves. After a build it
// recomputes every inner node: workers, bounded by GOMAXPROCS, each take
// whole subtrees, and the few levels above them finish on one goroutine.
// After updates (Update and its wrappers) it recomputes only the paths above
// the changed leaves, level by level with the batched kernel. It blocks
// writers for its duration, so readers never see a half-hashed tree.
func (t *Tree) Hash(ctx context.Context) error { return t.hash(ctx, false) }

// Rehash recomputes every inner node from the leaves, as Hash does after a
// build, whether or not any leaf changed since the last Hash: it is what a
// benchmark of hashing must time (Hash of a clean tree returns at once), and
// a way to rebuild inner nodes that are no longer trusted.
func (t *Tree) Rehash(ctx context.Context) error { return t.hash(ctx, true) }

func (t *Tree) hash(ctx context.Context, full bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	if err := t.beginWrite(); err != nil {
		return err
	}
	if full {
		t.markBulk()
	}
	if !t.dirty.Load() {
		return nil
	}
	workers := runtime.GOMAXPROCS(0)
	l := t.live.Load()
	if t.bulk.Load() || l == nil {
		if err := hashLevels(ctx, t, workers); err != nil {
			t.metrics.Error("hash")
			return err
		}
		if l != nil {
			clear(l.bits)
		}
		t.metrics.Built()
	} else if err := rehashDirty(ctx, t, l.bits, workers); err != nil {
		// Some marks may be cleared already: only a full rehash is sure.
		t.bulk.Store(true)
		t.metrics.Error("hash")
		return err
	} else {
		t.metrics.Rehashed()
	}
	t.dirty.Store(false)
	t.bulk.Store(false)
	return nil
}

// Root returns the root hash. It fails with ErrNotHashed if rows were added
// since the last Hash.
func (t *Tree) Root() (Digest, error) { return t.Node(0, 0) }

// Node returns the node at (level, index), level 0 being the root and level
// Depth the leaves. Leaves are always current; inner nodes fail with
// ErrNotHashed while rows were added since the last Hash.
func (t *Tree) Node(level, index int) (Digest, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return Digest{}, ErrClosed
	}
	if level < 0 || level > t.depth || index < 0 || index >= 1<<level {
		return Digest{}, fmt.Errorf("%w: (%d, %d) in a tree of depth %d", ErrNodeIndex, level, index, t.depth)
	}
	if level < t.depth && t.dirty.Load() {
		return Digest{}, ErrNotHashed
	}
	return Digest(t.node(level, index)), nil
}

// Close unmaps the tree's memory and returns it to the budget. Every method
// called afterwards returns ErrClosed. Close is idempotent.
func (t *Tree) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	t.metrics.TreeClosed()
	t.nodes = nil
	err := t.region.Close()
	if lerr := t.closeLive(); err == nil {
		err = lerr
	}
	t.region = nil
	if t.file != nil && t.file.f != nil {
		// An unsynced writable tree keeps its dirty flag on disk: that is
		// how the next Open learns the file may be inconsistent.
		if cerr := t.file.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// compatible reports, as an error wrapping ErrIncompatible, why a and b
// cannot be compared.
func compatible(a, b *Tree) error {
	switch {
	case a.version != b.version:
		return fmt.Errorf("%w: format versions %d and %d", ErrIncompatible, a.version, b.version)
	case a.part.ID() != b.part.ID():
		return fmt.Errorf("%w: partitioners %s and %s", ErrIncompatible, a.part.Name(), b.part.Name())
	case a.rng != b.rng:
		return fmt.Errorf("%w: ranges %s and %s", ErrIncompatible, a.rng, b.rng)
	}
	return nil
}
