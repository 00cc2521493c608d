package grovepebble

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/forest"
)

// DefaultBudget is the memory budget of a Node opened without one: enough
// for a depth-20 tree (64 MiB) and the snapshots of a few repair sessions.
const DefaultBudget = 1 << 30

// Options describe the Node to open. The zero value opens the whole Murmur3
// ring with an automatic depth and a private budget.
type Options struct {
	// Partitioner maps keys to tokens. Default token.Murmur3{}. A database
	// remembers the partitioner it was created with; opening it with another
	// fails with ErrIncompatible.
	Partitioner token.Partitioner
	// Range is the (lo, hi] token range the Node serves. Default: the
	// partitioner's whole ring. Every row in the database must fall in it.
	// Not with Ranges.
	Range token.Range
	// Ranges, when set, make the Node a node of many ranges — those a ring
	// gives it (ring.RangesOf), in token order and disjoint — instead of
	// one: it keeps one live tree per range in a forest (package forest)
	// under TreesDir, which a clean Close checkpoints so that the next
	// Open reads no rows, and which after a crash is repaired from the
	// marks each write batch records beside its rows. Every row in the
	// database must fall in one of them, or in a span of a range the node
	// held before its ring changed (Unowned, until Cleanup). Each range is a repair.Replica of
	// its own (Replicas, Replica); Depth, if set, caps the depths the
	// forest plans.
	Ranges []token.Range
	// NodeID, with Ranges, is the ring node the database is: recorded at
	// the first Open that gives one, and refused (ErrIncompatible) if
	// another is given later, since under the wrong id every row would
	// look like one of a range the node gave away (Unowned). Empty skips
	// the check.
	NodeID string
	// TreesDir is the forest's directory, with Ranges. Default: the
	// directory "grove-trees" inside the database directory.
	TreesDir string
	// Checkpoints say, with Ranges, how often the forest is checkpointed
	// after a write (forest.CheckpointPolicy): the rows a crash leaves to
	// reread are those of the leaves written since the last checkpoint.
	Checkpoints forest.CheckpointPolicy
	// RangeRows, with Ranges, gives the rows a range without a tree is
	// about to hold (forest.Options.ExpectedRows): a node opened to load a
	// file sizes its trees for the file's rows, so a crash mid-load rereads
	// only the leaves marked since the last checkpoint.
	RangeRows func(token.Range) int64
	// Depth is the tree depth, 1..engine.MaxDepth, or engine.AutoDepth.
	// Zero means AutoDepth too: a one-leaf tree makes every repair rescan
	// the whole range, so it is never what a caller wants by default.
	// AutoDepth picks min(20, ⌈log2 rows⌉, the deepest tree that fits a
	// quarter of the budget — the rest is left for the snapshots repair
	// sessions take), rows being ExpectedRows or else the count recorded at
	// the last Open or Close.
	Depth int
	// ExpectedRows, if positive, guides AutoDepth instead of the recorded
	// count.
	ExpectedRows int64
	// Budget is charged for the tree and every view of it. Default: a
	// budget of DefaultBudget bytes of the Node's own.
	Budget *arena.Budget
	// NoSync makes Put and Delete commit without waiting for the WAL to
	// reach the disk: faster, and a crash may lose the last writes (the
	// tree is rebuilt from the data at Open, so it never disagrees with
	// what survived). Apply always syncs: a repair is acknowledged to the
	// peer only once it is durable. With Ranges it is ignored: the trees
	// live in mapped files that outlive a crash, so a batch the WAL lost
	// would leave a tree holding a change no surviving mark names.
	NoSync bool
	// Create lets Open make a new, empty node when dir does not exist or is
	// an empty directory. Without it Open creates nothing: a mistyped path
	// is ErrNotExist, not a new empty replica that a repair would then fill
	// with a peer's whole range.
	Create bool
	// ScanRate, if positive, bounds in bytes per second (stored keys and
	// values) every scan of the Node's rows — the validation scan, a
	// forest's builds and recoveries, Rebalance, Scan for repair sessions —
	// all scans together: a token bucket, so that a scan on a busy node
	// leaves the disk to its reads. Zero is unlimited.
	ScanRate float64
	// Pebble, if set, are the options Pebble is opened with (block cache,
	// file system, logger...); the Node copies them and changes nothing in
	// the caller's. Without a logger, Pebble's informational messages (WAL
	// replays, on every Open) are dropped, its errors go to the standard
	// log, and a fatal error inside a call of the Node becomes that call's
	// ErrFatal instead of ending the process; a logger given here keeps its
	// own Fatalf. Unless the event listener sets them, DataCorruption and
	// BackgroundError are the Node's: a corrupt file becomes the failing
	// call's ErrCorrupt (and, once the Node is open, one logged line per
	// file), where Pebble's default would call Fatalf.
	Pebble *pebble.Options
	// BlockCache is the size in bytes of the block cache the Node makes
	// for Pebble when Pebble brings none. Default DefaultBlockCache.
	BlockCache int64
}

// Node is one replica of a token range stored in a Pebble database, with its
// live tree. It implements repair.Replica. A Node is safe for concurrent
// use.
type Node struct {
	dir    string
	db     *pebble.DB
	lock   *pebble.Lock // the directory lock, if the Node took it
	events *events
	tree   *engine.Tree // the one tree, without Ranges
	p      token.Partitioner
	rng    token.Range
	// With Ranges: the forest of per-range trees, the ranges in token
	// order, and what the forest's Open read.
	forest    *forest.Forest
	ranges    []token.Range
	openStats forest.Stats
	// unowned are the spans of rows the node keeps after its ring changed
	// but no longer replicates (under mu).
	unowned []token.Range
	// matches are when each range last matched each peer.
	matches matches
	// intent numbers the batches of the forest's current generation: each
	// writes its intent under the next (under mu).
	intent struct {
		gen, seq uint64
	}
	// maint keeps the trees following the committed batches.
	maint maintainer
	scan  ScanStats
	// cache is the block cache the Node made for Pebble, released after
	// Pebble closes; nil when the caller gave one.
	cache  *pebble.Cache
	putOpt *pebble.WriteOptions
	// recorded is the row count the database records (-1: none); written
	// under the life lock's write side, or before Open returns.
	recorded int64

	// life guards db and tree against Close: every method holds it for
	// reading while it uses them, Close for writing.
	life   sync.RWMutex
	closed bool
	// fatal is set when Pebble stopped on a fatal error in one of the
	// Node's calls (see catch); every call then returns it.
	fatal atomic.Pointer[fatalError]

	// mu orders writes against views and root reads: writers hold it for
	// writing from their read of the old rows to their tree update, so a
	// view never sees a batch that is in the data but not yet in the tree.
	mu sync.RWMutex
	// staleForest, for a node opened as one range, is the directory of a
	// forest in the default trees directory: the first write removes it,
	// since the forest's trees would no longer match the data and no mark
	// would say so (under mu).
	staleForest string
	// broken is set, under mu, when the tree could not follow a committed
	// batch; the Node then refuses writes and views.
	broken error
	limit  *rateLimiter // Options.ScanRate, nil for none
	// scrubber is the background scrub StartScrub started, if any.
	scrubber scrubber
	// rule is the merge operator's, which also says whether every row
	// carries a checksum (formatStrict).
	rule *mergeRule
	// suspects are the keys whose stored row failed to decode or its
	// checksum: never served, and checked first by the next scrub, which
	// moves them aside.
	suspects suspects

	// commit commits a write batch. Tests replace it to make a commit fail.
	commit func(*pebble.Batch, *pebble.WriteOptions) error
}

// Open opens the node stored in the Pebble database in dir and builds its
// tree from every row in it with the validation scan, whose throughput
// ScanStats reports. A row that does not decode or falls outside
// opts.Range fails Open, naming the key; a damaged Pebble file fails it
// with ErrCorrupt, naming the file. ctx bounds the scan.
//
// Open creates a node only with opts.Create, and only where nothing is: a
// path that does not exist or an empty directory (ErrNotExist without
// Create). It refuses, writing nothing there, a file, a directory that is
// not a Pebble database, and a Pebble database that grove did not write
// (ErrNotNode); a database open elsewhere is ErrLocked.
func Open(ctx context.Context, dir string, opts Options) (*Node, error) {
	n, err := open(ctx, dir, opts)
	if err != nil {
		return nil, fmt.Errorf("grovepebble: open %s: %w", dir, asCorrupt(dir, err))
	}
	return n, nil
}

func open(ctx context.Context, dir string, opts Options) (_ *Node, err error) {
	p := opts.Partitioner
	if p == nil {
		p = token.Murmur3{}
	}
	rng := opts.Range
	if len(opts.Ranges) > 0 && rng != (token.Range{}) {
		return nil, fmt.Errorf("%w: Options.Range and Options.Ranges are both set; a node of many ranges takes Ranges alone", ErrOptions)
	}
	if rng == (token.Range{}) {
		rng = p.Range()
	}
	if err := rng.Valid(); err != nil {
		return nil, err
	}
	if opts.BlockCache < 0 {
		return nil, fmt.Errorf("%w: BlockCache %d bytes, want 0 (the default) or more", ErrOptions, opts.BlockCache)
	}
	if !(opts.ScanRate >= 0) {
		return nil, fmt.Errorf("%w: ScanRate %v bytes/s, want 0 (unlimited) or more", ErrOptions, opts.ScanRate)
	}
	if opts.Depth < engine.AutoDepth || opts.Depth > engine.MaxDepth {
		return nil, fmt.Errorf("%w: depth %d, want 1..%d or AutoDepth", engine.ErrDepth, opts.Depth, engine.MaxDepth)
	}
	budget := opts.Budget
	if budget == nil {
		budget = arena.NewBudget(DefaultBudget)
	}
	popts := &pebble.Options{}
	if opts.Pebble != nil {
		popts = opts.Pebble.Clone()
	}
	rule := &mergeRule{}
	switch {
	case popts.Merger == nil || popts.Merger == Merger:
		popts.Merger = rule.merger()
	case popts.Merger.Name != MergerName:
		return nil, fmt.Errorf("%w: Pebble.Merger %q: a node's versions are merged by grovepebble.Merger", ErrOptions, popts.Merger.Name)
	}
	if popts.Logger == nil && popts.LoggerAndTracer == nil {
		popts.Logger = quietLogger{}
	}
	ev := &events{log: popts.Logger}
	if ev.log == nil {
		ev.log = popts.LoggerAndTracer
	}
	ev.install(popts)
	fs := popts.FS
	if fs == nil {
		fs = vfs.Default
	}
	exists, err := checkDir(fs, dir, opts.Create)
	if err != nil {
		return nil, err
	}
	if !exists {
		// Only with Create. Pebble would make the directory itself, but the
		// lock file goes in first.
		if err := fs.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	n := &Node{dir: dir, p: p, rng: rng, putOpt: pebble.Sync, commit: (*pebble.Batch).Commit, events: ev, limit: newRateLimiter(opts.ScanRate), rule: rule}
	rule.report = n.suspect
	ev.table = n.tableDamaged
	if opts.NoSync && len(opts.Ranges) == 0 {
		n.putOpt = pebble.NoSync
	}
	if popts.Lock == nil {
		if n.lock, err = lockDir(fs, dir); err != nil {
			return nil, err
		}
		popts.Lock = n.lock
	}
	// A database checkDir saw must still be there when Pebble looks:
	// Pebble would otherwise create an empty one in its place.
	popts.ErrorIfNotExists = exists
	defer func() {
		if r := recover(); r != nil {
			err = asFatal(r)
		}
		if err == nil {
			ev.opened.Store(true)
			return
		}
		if n.tree != nil {
			n.tree.Close()
		}
		if n.forest != nil {
			n.forest.Close(context.Background())
		}
		// After a fatal error Pebble may have stopped holding its own
		// locks: closing it could block forever.
		if !errors.Is(err, ErrFatal) {
			if n.db != nil {
				n.db.Close()
			}
			if n.lock != nil {
				n.lock.Close()
			}
		}
		n.releaseCache()
	}()
	n.cache = lookupOptions(popts, cmp.Or(opts.BlockCache, DefaultBlockCache))
	if n.db, err = openPebble(dir, popts, opts.Create); err != nil {
		return nil, err
	}
	if err := n.checkFormat(opts.Create); err != nil {
		return nil, err
	}
	if n.recorded, err = n.readCount(); err != nil {
		return nil, err
	}
	if len(opts.Ranges) > 0 {
		treesDir := opts.TreesDir
		if treesDir == "" {
			treesDir = filepath.Join(dir, DefaultTreesDir)
		}
		if err := n.openForest(ctx, treesDir, opts, budget); err != nil {
			return nil, err
		}
		if err := n.recordCount(pebble.NoSync); err != nil {
			return nil, err
		}
		return n.started()
	}
	if trees := filepath.Join(dir, DefaultTreesDir); forest.Exists(trees) {
		n.staleForest = trees
	}
	depth := opts.Depth
	if depth == 0 || depth == engine.AutoDepth {
		if depth, err = n.autoDepth(opts.ExpectedRows, budget); err != nil {
			return nil, err
		}
	}
	treeOpts := engine.Options{Partitioner: p, Range: rng, Depth: depth, Budget: budget}
	if n.tree, err = engine.New(treeOpts); err != nil {
		return nil, err
	}
	if n.scan, err = n.validateRecovering(ctx, treeOpts); err != nil {
		return nil, err
	}
	// The count is a hint, so it need not be durable here.
	if err := n.recordCount(pebble.NoSync); err != nil {
		return nil, err
	}
	return n.started()
}

// started finishes an Open whose trees match the data: it loads the
// matches and starts the maintainer.
func (n *Node) started() (*Node, error) {
	if err := n.loadMatches(); err != nil {
		return nil, err
	}
	n.startMaintainer()
	return n, nil
}

// checkFormat refuses a database written with another layout or
// partitioner, or by another application, and marks a new one (with
// create) as the Node's.
func (n *Node) checkFormat(create bool) error {
	want := []byte{layoutVersion, n.p.ID(), formatStrict}
	v, closer, err := n.db.Get(metaFormat)
	if errors.Is(err, pebble.ErrNotFound) {
		// Every node has the record from its first Open on, so keys
		// without it are someone else's, and must not be served as rows
		// nor mixed with some.
		first, err := n.firstKey()
		switch {
		case err != nil:
			return err
		case first != nil:
			return fmt.Errorf("%w: the Pebble database at %s was not written by grove: it holds keys (such as %s) but no format record (key 0x00 \"format\")", ErrNotNode, n.dir, keyText(first))
		case !create:
			return fmt.Errorf("%w: %s holds an empty Pebble database, not yet a node", ErrNotExist, n.dir)
		}
		// A new node: every row it ever holds is written with its
		// checksum.
		n.setStrict(true)
		return n.db.Set(metaFormat, want, pebble.Sync)
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	if len(v) < 1 {
		return fmt.Errorf("%w: format record of 0 bytes", ErrCorrupt)
	}
	if v[0] > layoutVersion || v[0] < 1 {
		return fmt.Errorf("%w: layout version %d, this build reads versions 1 to %d", ErrIncompatible, v[0], layoutVersion)
	}
	// Layouts 1 and 2 record the layout and the partitioner, layout 3
	// whether every row has a checksum too.
	wantLen := 2
	if v[0] >= 3 {
		wantLen = 3
	}
	if len(v) != wantLen || (wantLen == 3 && v[2]&^formatStrict != 0) {
		return fmt.Errorf("%w: format record %x of layout %d, want %d bytes", ErrCorrupt, v, v[0], wantLen)
	}
	if v[1] != want[1] {
		name := fmt.Sprintf("id %d", v[1])
		if q, err := token.ByID(v[1]); err == nil {
			name = q.Name()
		}
		return fmt.Errorf("%w: database was written with partitioner %s, opened with %s", ErrIncompatible, name, n.p.Name())
	}
	if v[0] < layoutVersion {
		// Layout 1's values are layout 2's without a generation of
		// birth, layout 2's are layout 3's without a checksum: they stay
		// as they are, and are read as they were, while every value
		// written from now on has its checksum. An older build must
		// refuse the database from now on.
		n.setStrict(false)
		return n.db.Set(metaFormat, []byte{layoutVersion, n.p.ID(), 0}, pebble.Sync)
	}
	n.setStrict(v[2]&formatStrict != 0)
	return nil
}

// setStrict says whether every row of the database must carry a checksum.
func (n *Node) setStrict(strict bool) { n.rule.strict.Store(strict) }

// isStrict says whether every row of the database must carry a checksum.
func (n *Node) isStrict() bool { return n.rule.strict.Load() }

// readCount returns the row count recorded at the last Open or Close, or
// -1 if there is none.
func (n *Node) readCount() (int64, error) {
	v, closer, err := n.db.Get(metaRows)
	if errors.Is(err, pebble.ErrNotFound) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: row count record of %d bytes, want 8", ErrCorrupt, len(v))
	}
	return int64(min(binary.BigEndian.Uint64(v), engine.MaxRows)), nil
}

// recordCount records the row count for the next Open's AutoDepth, if it
// changed.
func (n *Node) recordCount(wo *pebble.WriteOptions) error {
	rows := n.rows()
	if rows == n.recorded {
		return nil
	}
	if err := n.db.Set(metaRows, binary.BigEndian.AppendUint64(nil, uint64(rows)), wo); err != nil {
		return err
	}
	n.recorded = rows
	return nil
}

// autoDepth picks the depth for AutoDepth from the expected row count, the
// recorded one, or — for a database that has rows but no record, written by
// a process that never finished an Open — the deepest the budget allows.
func (n *Node) autoDepth(expected int64, budget *arena.Budget) (int, error) {
	if expected <= 0 {
		expected = n.recorded
	}
	if expected < 0 {
		empty, err := n.empty()
		if err != nil {
			return 0, err
		}
		expected = 0
		if !empty {
			expected = 1 << engine.DefaultMaxDepth
		}
	}
	d, err := engine.ChooseDepth(expected, budget.Available()/4, nil)
	return max(d, 1), err
}

// firstKey returns a copy of the database's first key of any kind, or nil
// if it holds none.
func (n *Node) firstKey() ([]byte, error) {
	it, err := n.db.NewIter(nil)
	if err != nil {
		return nil, err
	}
	var k []byte
	if it.First() {
		k = append([]byte{}, it.Key()...)
	}
	return k, errors.Join(it.Error(), it.Close())
}

// empty reports whether the database holds no row.
func (n *Node) empty() (bool, error) {
	it, err := n.db.NewIter(&pebble.IterOptions{LowerBound: []byte{rowPrefix}, UpperBound: []byte{rowPrefix + 1}})
	if err != nil {
		return false, err
	}
	found := it.First()
	return !found, errors.Join(it.Error(), it.Close())
}

// Close records the row count, closes the tree and then the database. Every
// method called afterwards returns ErrClosed; views taken before stay valid
// until released. Close is idempotent. After ErrFatal it closes only the
// tree: Pebble stopped where closing it could block forever.
func (n *Node) Close() (err error) {
	// Before the life lock, which a scrub of a range holds for reading
	// for as long as its paced read takes.
	n.stopScrub()
	n.life.Lock()
	defer n.life.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	if n.fatal.Load() != nil {
		// Pebble may be stuck: the maintainer is told to stop, not waited
		// for.
		if n.maint.quit != nil {
			close(n.maint.quit)
		}
		if n.forest != nil {
			// Neither checkpointed nor closed: a checkpoint would claim
			// the trees match data Pebble may not have kept, and the
			// forest keeps its directory locked, as Pebble does, until the
			// process exits. The next Open recovers it from the marks.
			return nil
		}
		return n.tree.Close()
	}
	defer n.catch(&err)
	if serr := n.stopMaintainer(); serr != nil && n.broken == nil {
		n.broken = serr
	}
	if n.broken == nil {
		err = n.recordCount(pebble.Sync)
	}
	switch {
	case n.forest != nil && n.broken != nil:
		// A tree missed a committed batch: a checkpoint would claim
		// otherwise. The forest is left open (its directory stays locked
		// until the process exits) and the next Open redoes the leaves
		// the batch's marks name.
	case n.forest != nil:
		err = errors.Join(err, n.closeForest())
	default:
		err = errors.Join(err, n.tree.Close())
	}
	err = errors.Join(err, n.db.Close())
	n.releaseCache()
	if n.lock != nil {
		err = errors.Join(err, n.lock.Close())
	}
	return asCorrupt(n.dir, err)
}

// use takes the read side of the life lock and fails once the Node is
// closed or Pebble has failed fatally; the caller defers n.life.RUnlock()
// only when it returns nil.
func (n *Node) use() error {
	n.life.RLock()
	if n.closed {
		n.life.RUnlock()
		return ErrClosed
	}
	if f := n.fatal.Load(); f != nil {
		n.life.RUnlock()
		return f
	}
	return nil
}

// ScanStats returns what the validation scan at Open read and how fast.
func (n *Node) ScanStats() ScanStats { return n.scan }

// Rows returns how many rows the Node holds, tombstones included.
func (n *Node) Rows() int64 {
	n.mu.RLock()
	defer n.mu.RUnlock()
	// A failed maintainer leaves the count where it stopped: the error
	// reaches the caller through the next write or read of a tree.
	n.settle()
	return n.rows()
}

// Depth returns the depth of the Node's tree; for a node of many ranges,
// the deepest of its trees.
func (n *Node) Depth() int {
	if n.forest == nil {
		return n.tree.Depth()
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	d := 0
	for _, t := range n.forest.Trees() {
		d = max(d, t.Live.Depth())
	}
	return d
}

// Root returns the root hash of the live tree, first rehashing the paths
// above the leaves written since the last Root or View.
func (n *Node) Root(ctx context.Context) (engine.Digest, error) {
	if err := n.use(); err != nil {
		return engine.Digest{}, err
	}
	defer n.life.RUnlock()
	if n.forest != nil {
		return engine.Digest{}, fmt.Errorf("grovepebble: root: %w", ErrManyRanges)
	}
	return n.root(ctx, func() *engine.Tree { return n.tree })
}

// root hashes the tree tree returns and reads its root, with writers held
// off so that no update lands between the two; the caller holds the life
// lock. A range's tree may be replaced by Rebalance, so it is read under
// the lock too.
func (n *Node) root(ctx context.Context, tree func() *engine.Tree) (engine.Digest, error) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.broken != nil {
		return engine.Digest{}, n.broken
	}
	if err := n.settle(); err != nil {
		return engine.Digest{}, err
	}
	t := tree()
	if err := t.Hash(ctx); err != nil {
		return engine.Digest{}, err
	}
	return t.Root()
}

// sum reads the sum of the leaves of the tree tree returns, as root does.
func (n *Node) sum(ctx context.Context, tree func() *engine.Tree) (engine.Digest, error) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.broken != nil {
		return engine.Digest{}, n.broken
	}
	if err := n.settle(); err != nil {
		return engine.Digest{}, err
	}
	var d [1]engine.Digest
	err := tree().Sums(ctx, 0, 0, d[:])
	return d[0], err
}

// Get returns the stored version of key — a live row or a tombstone — and
// whether there is one. The row's slices are the caller's.
func (n *Node) Get(ctx context.Context, key []byte) (_ engine.Row, _ bool, err error) {
	defer n.catch(&err)
	if err := ctx.Err(); err != nil {
		return engine.Row{}, false, err
	}
	if err := n.use(); err != nil {
		return engine.Row{}, false, err
	}
	defer n.life.RUnlock()
	var r engine.Row
	found, err := n.get(appendRowKey(nil, n.p.Token(key), key), func(old *engine.Row) {
		r = engine.Row{Key: append([]byte{}, key...), Value: append([]byte{}, old.Value...), TS: old.TS, Deleted: old.Deleted}
	})
	return r, found, err
}

// get looks up the row stored under composite key ck and, if there is one,
// calls fn with it; the row is valid only during the call.
func (n *Node) get(ck []byte, fn func(*engine.Row)) (bool, error) {
	v, closer, err := n.db.Get(ck)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, asCorrupt(n.dir, err)
	}
	defer closer.Close()
	var r engine.Row
	r.Key = ck[keyHeader:]
	if err := decodeValue(ck, v, &r, n.isStrict()); err != nil {
		n.suspect(ck)
		return false, fmt.Errorf("key %s: %w", keyText(r.Key), err)
	}
	fn(&r)
	return true, nil
}

// Shape implements repair.Replica. A node of many ranges has no one
// shape: it reports the whole ring at depth 0, which no session accepts,
// and each of its Replicas has its own.
func (n *Node) Shape() repair.Shape {
	if n.forest != nil {
		return repair.Shape{Partitioner: n.p, Range: n.rng}
	}
	return repair.Shape{Partitioner: n.p, Range: n.rng, Depth: n.tree.Depth()}
}

// Sum implements repair.Replica: the sum of the live tree's leaves, which
// needs no hashing.
func (n *Node) Sum(ctx context.Context) (engine.Digest, error) {
	if err := n.use(); err != nil {
		return engine.Digest{}, err
	}
	defer n.life.RUnlock()
	if n.forest != nil {
		return engine.Digest{}, fmt.Errorf("grovepebble: sum: %w", ErrManyRanges)
	}
	return n.sum(ctx, func() *engine.Tree { return n.tree })
}

// View implements repair.Replica with a snapshot of the live tree's
// leaves (Tree.LeafView: a session reads only subtree sums), taken while
// no write is in flight, so it matches the data at that instant. The
// snapshot is charged to the Node's budget until release.
func (n *Node) View(ctx context.Context) (*engine.LeafView, func(), error) {
	if err := n.use(); err != nil {
		return nil, nil, err
	}
	defer n.life.RUnlock()
	if n.forest != nil {
		return nil, nil, fmt.Errorf("grovepebble: view: %w", ErrManyRanges)
	}
	return n.leafView(ctx, func() *engine.Tree { return n.tree })
}

// leafView snapshots the leaves of the tree tree returns with no write in
// flight — a range's tree may be replaced by Rebalance, so it is read
// under the lock too; the caller holds the life lock.
func (n *Node) leafView(ctx context.Context, tree func() *engine.Tree) (*engine.LeafView, func(), error) {
	n.mu.RLock()
	if n.broken != nil {
		n.mu.RUnlock()
		return nil, nil, n.broken
	}
	if err := n.settle(); err != nil {
		n.mu.RUnlock()
		return nil, nil, err
	}
	// A session reads only subtree sums: the leaves are enough, and the
	// live tree's inner nodes can stay unhashed until someone asks for Root.
	v, err := tree().LeafView(ctx)
	n.mu.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	return v, func() { v.Close() }, nil
}

// releaseCache drops the Node's reference to the block cache it made.
func (n *Node) releaseCache() {
	if n.cache != nil {
		n.cache.Unref()
		n.cache = nil
	}
}
