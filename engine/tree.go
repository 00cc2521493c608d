// Package engine keeps Merkle trees over token ranges in memory outside the
// Go heap, builds them from rows, and compares them.
//
// A Tree covers one range (lo, hi] of a partitioner's ring and splits it into
// 2^depth equal leaves. A leaf is the lane-wise sum of the digests of the rows
// whose tokens fall in it; an inner node is SHA-256 of its two children.
//
// Three types hold trees, one per role. A Tree is live: rows are added and
// updated from any number of goroutines, Hash computes the inner levels, and
// a tree from OpenWritable changes its file in place. A View is frozen and
// read-only: a Tree's Snapshot, a file from Open, or a Fold. A LeafView is a
// Tree's leaves alone, frozen for a repair session. Diff walks two trees,
// live or frozen, down only the paths where they differ.
//
// The definitions are in docs/FORMAT.md; docs/ARCHITECTURE.md says how the
// packages fit together.
package engine

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/layout"
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
	// updates and diff walks miss the TLB far less (BenchmarkHash20
	// measures it); a node that cannot afford the kernel's occasional
	// compaction stall on first touch sets this.
	NoHugePages bool
	// Observer, if set, is told when the tree is mapped and unmapped, of
	// its builds and rehashes, the diffs it takes part in, and their errors
	// (metrics.Set is one). Snapshots and folds of the tree report to it too.
	Observer Observer
}

// Tree is the Merkle tree a node keeps live over a token range, stored
// outside the Go heap: rows are added and updated as they are written, Hash
// brings the inner levels up to date, and Snapshot and LeafView freeze it
// for a reader. It lives in memory (New) or in a tree file it changes in
// place (OpenWritable).
//
// A Tree is safe for concurrent use. Adding rows takes the read side of the
// tree's lock: writers touch only leaves, under one of leafBands locks, so
// they run in parallel with each other but never with Hash or Close, which
// take the write side. Diff and node reads take the read side too.
type Tree struct {
	mu sync.RWMutex
	shape
	closed bool

	// bands serialise writers per 1/leafBands of the leaves, which are then
	// updated with plain loads and stores; leaf i is in band i>>bandShift.
	bands     [leafBands]sync.Mutex
	bandShift int

	rows  atomic.Int64
	dirty atomic.Bool // leaves changed since the last Hash
	// needsFullHash says leaves changed in ways the dirty-leaf bitmap did
	// not record (a build, or a file left dirty), so the next Hash
	// recomputes every inner node rather than only the marked paths.
	needsFullHash atomic.Bool
	live          atomic.Pointer[liveState]
	liveMu        sync.Mutex

	file *treeFile // the file a tree from OpenWritable changes; else nil
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

// LiveBytes is what a live tree of the given depth in layout l (nil:
// breadth-first) charges its budget on a system of page-byte pages: its
// nodes and, once it takes updates, its dirty-leaf bitmap, each rounded up
// to whole pages as arena charges them. A node planning many trees under
// one budget plans with it.
func LiveBytes(l layout.Layout, depth int, page int64) int64 {
	if l == nil {
		l = layout.BFS{}
	}
	words := (int64(1)<<depth + 63) / 64
	return pageRound(LayoutBytes(l, depth), page) + pageRound(words*8, page)
}

// pageRound rounds n up to a multiple of page, which is what arena charges.
func pageRound(n, page int64) int64 {
	return (n + page - 1) / page * page
}

// New creates an empty tree in memory. Its memory is reserved against
// opts.Budget before anything is mapped: a tree that does not fit fails with
// an error wrapping arena.ErrBudgetExceeded and nothing is mapped.
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
	s, err := mapShape(opts.Budget, opts.Partitioner, opts.Range, depth, opts.Layout, opts.Observer, !opts.NoHugePages)
	if err != nil {
		return nil, err
	}
	t := newTree(s)
	// A fresh mapping is all zeros: every leaf is the empty sum and, until
	// Hash runs, the inner nodes are not yet right.
	t.dirty.Store(true)
	t.needsFullHash.Store(true)
	return t, nil
}

// newTree returns a live tree over the nodes of s.
func newTree(s shape) *Tree {
	return &Tree{shape: s, bandShift: max(0, s.depth-6)} // 2^6 = leafBands
}

// Rows is the number of rows added (less those removed).
func (t *Tree) Rows() int64 { return t.rows.Load() }

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

// markUnrecorded records that leaves changed without being marked in the
// dirty-leaf bitmap, as the build paths do.
func (t *Tree) markUnrecorded() {
	t.markDirty()
	if !t.needsFullHash.Load() {
		t.needsFullHash.Store(true)
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
// After updates it recomputes only the paths above the changed leaves, level
// by level with the batched kernel. It blocks writers for its duration, so
// readers never see a half-hashed tree.
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
	if full {
		t.markUnrecorded()
	}
	if !t.dirty.Load() {
		// Nothing to write: a file tree stays clean on disk.
		return nil
	}
	if err := t.beginWrite(); err != nil {
		return err
	}
	l := t.live.Load()
	if t.needsFullHash.Load() || l == nil {
		if err := hashLevels(ctx, &t.shape, 0); err != nil {
			t.obs.HashFailed()
			return err
		}
		if l != nil {
			clear(l.bits)
		}
		t.obs.Built()
	} else if err := rehashMarked(ctx, &t.shape, l.bits, 0); err != nil {
		// Some marks may be cleared already: only a full rehash is sure.
		t.needsFullHash.Store(true)
		t.obs.HashFailed()
		return err
	} else {
		t.obs.Rehashed()
	}
	t.dirty.Store(false)
	t.needsFullHash.Store(false)
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
	if err := t.checkNode(level, index); err != nil {
		return Digest{}, err
	}
	if level < t.depth && t.dirty.Load() {
		return Digest{}, ErrNotHashed
	}
	return Digest(t.node(level, index)), nil
}

// Sums writes into dst the subtree sums of the len(dst) consecutive nodes
// at level starting at index first (see subtreeSums). Leaves are always
// current, so Sums needs no Hash.
func (t *Tree) Sums(ctx context.Context, level, first int, dst []Digest) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return ErrClosed
	}
	return subtreeSums(ctx, t.depth, level, first, dst, t.sumLeaves)
}

// Fold returns the hashed, frozen tree of the given shallower depth that a
// build from the same rows would give, byte for byte: each of its leaves is
// the sum of the 2^(Depth−depth) leaves below it. It reads only leaves, so
// t need not be hashed. The view is charged to t's budget; the caller closes
// it.
func (t *Tree) Fold(ctx context.Context, depth int) (*View, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return nil, ErrClosed
	}
	return t.fold(ctx, depth, t.rows.Load())
}

// Close unmaps the tree's memory and returns it to the budget. Every method
// called afterwards returns ErrClosed. Close is idempotent. A writable file
// tree closed without Checkpoint keeps its dirty flag on disk: that is how
// the next Open learns the file may be inconsistent.
func (t *Tree) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	err := t.unmap()
	if lerr := t.closeLive(); err == nil {
		err = lerr
	}
	if t.file != nil {
		if cerr := t.file.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
